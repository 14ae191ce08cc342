"""Test certificates made by `trustme`, as PEM files servers and clients can be pointed at."""

from __future__ import annotations

from pathlib import Path

import attrs
import trustme


@attrs.frozen
class TlsFiles:
    """A server certificate chain, its key, and the CA that signed it (PEM files)."""

    cert: Path
    key: Path
    ca: Path


def tls_files(directory: Path) -> TlsFiles:
    """A fresh `trustme` CA and a certificate for 127.0.0.1 and localhost, as files."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(str(files.cert), append=True)
    leaf.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files
