"""The blob side of jobs and models: Azurite stands in for the workspace's storage account.

Azure ML resolves a job's ``uri_folder`` input to a folder the container reads, and uploads an
output folder to a datastore when the job ends ("upload" mode). The fake does the same against
Azurite. URIs it understands:

* ``azureml://datastores/<datastore>/paths/<path>`` (and the long form with
  ``subscriptions/.../workspaces/<ws>/`` in front): the datastore's container in Azurite;
* ``https://<account>.blob.core.windows.net/<container>/<path>``: that container in Azurite;
* Azurite's own ``http://127.0.0.1:PORT/devstoreaccount1/<container>/<path>``.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from pathlib import Path
from typing import Any

from .routing import ArmError, bad_request

DATASTORE_URI = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resource[gG]roups/[^/]+/(?:providers/"
    r"Microsoft\.MachineLearningServices/)?workspaces/[^/]+/)?datastores/(?P<ds>[^/]+)/paths/"
    r"(?P<path>.*)$")


class BlobSide:
    """Azurite through azure-storage-blob (imported on first use)."""

    def __init__(self, azurite: Any) -> None:
        self.azurite = azurite
        self.account: str = azurite.account
        self.account_key: str = azurite.account_key

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.azurite.connection_string)

    def create_container(self, name: str) -> str:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):  # a second workspace of the same name
            self.service().create_container(name)
        return name

    def locate(self, uri: str, datastores: dict[str, str]) -> tuple[str, str]:
        """``(container, prefix)`` in Azurite for ``uri``; ``datastores`` maps datastore names
        to their containers. A URI the fake cannot place is a 400, as the service answers."""
        match = DATASTORE_URI.match(uri)
        if match:
            name = match["ds"]
            if name not in datastores:
                raise ArmError(404, "ResourceNotFound", f"Datastore '{name}' was not found.")
            return datastores[name], match["path"].strip("/")
        parts = urllib.parse.urlsplit(uri)
        segments = [s for s in parts.path.split("/") if s]
        if (parts.scheme == "https" and parts.netloc.startswith(f"{self.account}.blob.")
                and segments):
            return segments[0], "/".join(segments[1:])
        if parts.scheme == "http" and segments[:1] == [self.account] and len(segments) > 1:
            return segments[1], "/".join(segments[2:])
        raise bad_request(f"The fake cannot resolve the data URI {uri!r} (azureml://datastores/"
                          f"..., https://{self.account}.blob.core.windows.net/... or Azurite).",
                          target="uri")

    def download(self, container: str, prefix: str, folder: Path) -> int:
        """Copy every blob under ``prefix`` into ``folder`` (keeping the relative paths);
        returns how many. A single blob named exactly ``prefix`` lands as its own name."""
        client = self.service().get_container_client(container)
        count = 0
        base = prefix.rstrip("/")
        for blob in client.list_blobs(name_starts_with=base):
            if blob.name == base:
                relative = Path(base).name
            elif base and not blob.name.startswith(base + "/"):
                continue
            else:
                relative = blob.name[len(base):].lstrip("/")
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.download_blob(blob.name).readall())
            count += 1
        return count

    def upload(self, folder: Path, container: str, prefix: str) -> int:
        """Upload every file under ``folder`` to ``container/prefix/``; returns how many."""
        client = self.service().get_container_client(container)
        count = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = "/".join(filter(None, [prefix.strip("/"),
                                          path.relative_to(folder).as_posix()]))
            with path.open("rb") as data:
                client.upload_blob(name, data, overwrite=True)
            count += 1
        return count
