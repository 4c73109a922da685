"""The package's credential chain: lazy, shared, one-line errors, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from mldock.config.plugin_config import SecretRef
from mldock.errors import MldockError
from mldock_azure import clients

DEV_CONNECTION = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vd"
                  "M02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoG"
                  "MGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")


class CountingCredential:
    """An azure-core TokenCredential that hands out numbered tokens and records the scopes."""

    def __init__(self) -> None:
        self.scopes: list[str] = []
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: object):
        from azure.core.credentials import AccessToken

        with self._lock:
            self.scopes.extend(scopes)
            return AccessToken(f"token-{len(self.scopes)}", 4102444800)


def test_importing_the_package_modules_imports_no_azure_sdk():
    code = textwrap.dedent("""
        import sys
        import mldock_azure.plugin, mldock_azure.clients, mldock_azure.errors
        import mldock_azure.config
        loaded = sorted(m for m in sys.modules if m == "azure" or m.startswith("azure."))
        print(",".join(loaded))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""


def test_access_token_asks_for_the_scope():
    credential = CountingCredential()
    identity = clients.AzureIdentity(credential)
    assert identity.credential is credential
    assert identity.access_token() == "token-1"
    assert identity.access_token(clients.STORAGE_SCOPE) == "token-2"
    assert credential.scopes == [clients.MANAGEMENT_SCOPE, clients.STORAGE_SCOPE]
    assert identity.source() == "CountingCredential"


def test_missing_credentials_are_one_line(monkeypatch):
    """A real chain member that finds nothing raises CredentialUnavailableError."""
    from azure.identity import EnvironmentCredential

    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    identity = clients.AzureIdentity(EnvironmentCredential())
    with pytest.raises(MldockError) as caught:
        identity.access_token()
    assert caught.value.message == (f"cannot get an Azure access token for"
                                    f" {clients.MANAGEMENT_SCOPE}: no Azure credentials found")
    assert "az login" in caught.value.hint


def test_default_chain_is_built_lazily_and_once():
    identity = clients.AzureIdentity()
    assert identity._credential is None  # nothing resolved by building it
    first = identity.credential
    assert type(first).__name__ == "DefaultAzureCredential"
    assert identity.credential is first


def test_the_package_shares_one_identity():
    assert clients.shared_identity() is clients.shared_identity()


def test_connection_string_is_read_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("MLDOCK_TEST_BLOB", DEV_CONNECTION)
    assert clients.read_connection_string(SecretRef("MLDOCK_TEST_BLOB")) == DEV_CONNECTION


def test_unset_connection_variable_names_the_variable(monkeypatch):
    monkeypatch.delenv("MLDOCK_TEST_BLOB", raising=False)
    with pytest.raises(MldockError, match="MLDOCK_TEST_BLOB is not set"):
        clients.read_connection_string(SecretRef("MLDOCK_TEST_BLOB"))


@pytest.mark.parametrize("value", ["", "not a connection string",
                                   "AccountKey=c2VjcmV0LXZhbHVlLW5ldmVyLXByaW50ZWQ="])
def test_malformed_connection_string_is_not_printed(monkeypatch, value):
    monkeypatch.setenv("MLDOCK_TEST_BLOB", value)
    with pytest.raises(MldockError) as caught:
        clients.read_connection_string(SecretRef("MLDOCK_TEST_BLOB"))
    text = str(caught.value)
    assert "connection string in MLDOCK_TEST_BLOB is malformed" in text
    assert "c2VjcmV0" not in text and "not a connection" not in text
