"""TLS for the fake: azure-core sends bearer tokens over HTTPS only, so the fake must speak it.

One trustme certificate authority per fake signs a leaf certificate for ``IP:127.0.0.1`` (and
``localhost``). The CA bundle written next to it holds the fake's CA *and* the machine's own
bundle: pointing ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` at it must not break TLS to anything
else a test process reaches (a package index behind an intercepting proxy, for one).
"""

from __future__ import annotations

import ssl
from pathlib import Path

SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


class FakeTLS:
    """The fake's certificate authority, server context and CA bundle file."""

    def __init__(self, folder: Path) -> None:
        import trustme

        self.authority = trustme.CA(organization_name="mldock azureml fake")
        self.leaf = self.authority.issue_cert("127.0.0.1", "localhost")
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_bundle = folder / "ca-bundle.pem"
        self.ca_bundle.write_bytes(self.authority.cert_pem.bytes() + b"\n" + _system_bundle())

    def server_context(self) -> ssl.SSLContext:
        """What the listening socket is wrapped with."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.leaf.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting the fake (for tests calling it with the standard library)."""
        context = ssl.create_default_context()
        self.authority.configure_trust(context)
        return context

    def environment(self) -> dict[str, str]:
        """The variables that make requests, azure-core and the ``ssl`` module trust the fake."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca_bundle), "SSL_CERT_FILE": str(self.ca_bundle)}


def _system_bundle() -> bytes:
    for candidate in SYSTEM_BUNDLES:
        path = Path(candidate)
        if path.is_file():
            return path.read_bytes()
    return b""
