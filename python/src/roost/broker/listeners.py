"""Per-listener security state: the TLS context, the CRL's revoked serials, the PROXY
policy and the authentication rules, built from config and rebuilt on SIGHUP.

Everything here is built completely before it replaces anything, so a bad certificate or
CRL on reload leaves the running listener as it was.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from roost.broker.config import Listener, TlsFiles
from roost.broker.policy import ListenerAuth
from roost.security.proxy import ProxyPolicy
from roost.security.tls import Identity, load_crl_serials, not_after, server_context


@dataclass(frozen=True, slots=True)
class TlsState:
    context: ssl.SSLContext
    revoked: frozenset[int]  # serials from the CRL, to drop clients connected before it
    identity: Identity
    expires: float  # the server certificate's notAfter, for the metrics


def load_tls(tls: TlsFiles) -> TlsState:
    """Raises TlsError naming the file that cannot be used."""
    context = server_context(tls.cert, tls.key, tls.ca, tls.crl, tls.require_client_cert)
    serials = load_crl_serials(tls.crl, tls.ca) if tls.crl is not None else set()
    from cryptography import x509  # noqa: PLC0415 - slow to import; TLS listeners only

    expires = not_after(x509.load_pem_x509_certificate(tls.cert.read_bytes()))
    return TlsState(context, frozenset(serials), tls.identity,  # type: ignore[arg-type]
                    expires)


class ListenerState:
    __slots__ = ("auth", "config", "proxy", "tls")

    def __init__(self, config: Listener, anonymous: bool) -> None:
        self.config = config
        self.auth = ListenerAuth(config.name, anonymous, config.client_id_is_identity,
                                 config.cluster)
        self.proxy = (None if config.proxy_protocol == "off"
                      else ProxyPolicy(config.trusted_proxies))
        self.tls = None if config.tls is None else load_tls(config.tls)

    def front_context(self) -> ssl.SSLContext | None:
        """The context the listening socket keeps for good; each handshake switches to
        the current `tls.context`, so SIGHUP can swap certificates and CRLs under it."""
        if self.tls is None:
            return None
        front = self.tls.context

        def switch(sslobj: ssl.SSLObject, server_name: str | None,
                   context: ssl.SSLContext) -> None:
            if self.tls is not None and self.tls.context is not front:
                sslobj.context = self.tls.context

        front.sni_callback = switch
        return front
