"""Security building blocks for the broker, each testable without a running broker:

- `acl`: Mosquitto-syntax ACL files and the decision (with its rule) for one access
- `acl_cli`: `roost broker acl-test`
- `passwd`, `passwd_cli`: `mosquitto_passwd` password files and `roost broker passwd`
- `proxy`: sans-IO PROXY protocol v1/v2 and the trusted load-balancer policy
- `tls`: listener SSL contexts, client certificate identity, CRL revocation
- `errors`: `LineError`, raised with `source:line: reason` by every file parser here
"""
