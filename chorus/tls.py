"""TLS for the node's own listeners: one server context, reloaded in place on SIGHUP.

Both listeners (the HTTP API and the gateway) wrap every accepted socket
with the same `ssl.SSLContext`. Reloading loads the files again into that
very context: connections accepted afterwards get the new certificate,
connections already open keep their session and are not dropped.
"""

from __future__ import annotations

import ssl

import structlog

_log = structlog.get_logger("chorus.tls")

HSTS = b"max-age=31536000"
"""`Strict-Transport-Security` of every HTTP answer on TLS: one year, this host only."""


class ServerTls:
    """The server-side TLS context of `cert_file` and `key_file` (PEM)."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self.context.load_cert_chain(cert_file, key_file)  # errors here stop the start-up

    def reload(self) -> bool:
        """Read the files again (SIGHUP); on an error the old certificate stays in use."""
        try:
            self.context.load_cert_chain(self._cert_file, self._key_file)
        except (OSError, ssl.SSLError) as exc:
            _log.error("tls.reload_failed", cert=self._cert_file, error=str(exc))
            return False
        _log.info("tls.reloaded", cert=self._cert_file)
        return True


def server_tls(cert_file: str, key_file: str) -> ServerTls | None:
    """The listeners' TLS when both files are set, else None (plain HTTP and WebSocket)."""
    return ServerTls(cert_file, key_file) if cert_file and key_file else None
