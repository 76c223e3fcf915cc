"""Security building blocks for the broker, each pure and testable without a server:

- `acl`: Mosquitto-syntax ACL files and the decision (with its rule) for one access
- `acl_cli`: `roost broker acl-test`
- `passwd`: `mosquitto_passwd` password files
- `proxy`: sans-IO PROXY protocol v1/v2 and the trusted load-balancer policy
- `tls`: listener SSL contexts, client certificate identity, CRL revocation
- `errors`: `LineError`, raised with `source:line: reason` by every file parser here
"""
