"""``gs://`` locations with the standard library only: the Cloud Storage JSON API over ``urllib``.

Vertex AI training mounts buckets under ``/gcs/<bucket>/…`` (Cloud Storage FUSE) and that mount
is used when present; serving does not mount ``AIP_STORAGE_URI``, so the model is downloaded.

Why no google-cloud-storage, not even as an optional fast path: the image must serve a Vertex
model with what it already has (the template's requirements do not carry a cloud SDK), and a
second code path would be a second behaviour to test. Downloads here stream in 1 MiB blocks and
are I/O bound; what the SDK would add (parallel sliced downloads, resumable uploads) only pays
off for multi-gigabyte models, and those are better mounted.

Credentials: the access token of the VM's service account from the metadata server
(``GCE_METADATA_HOST`` overrides ``metadata.google.internal``), which is what Vertex AI gives a
container; ``GOOGLE_OAUTH_ACCESS_TOKEN`` may carry a token instead (e.g. from
``gcloud auth print-access-token`` on a workstation). With ``STORAGE_EMULATOR_HOST`` set, the
emulator is used without a token. Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

API_HOST = "https://storage.googleapis.com"
METADATA_HOST = "metadata.google.internal"
# a URL path, not a secret (S105 sees the word "token")
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105
BLOCK = 1 << 20
ATTEMPTS = 4
CRC32C_MAX_BYTES = 64 << 20
"""Larger objects without an md5 (composite) get a size check only: pure-Python crc32c runs at
a few MB/s, so a multi-gigabyte check would delay serving by minutes."""
TIMEOUT = 60.0


class GcsError(RuntimeError):
    """A gs:// location cannot be read or written; the message says what to do."""


def is_gs(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith("gs://")


def split(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    bucket, _, prefix = uri[len("gs://"):].partition("/")
    return bucket, prefix


def mounted_path(uri: str, root: Path) -> Path | None:
    """The FUSE path of ``uri`` under ``root`` (``/gcs``) if that bucket is mounted, else None."""
    bucket, prefix = split(uri)
    if not bucket or not (root / bucket).is_dir():
        return None
    return root / bucket / prefix


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ 0x82F63B78 if value & 1 else value >> 1
        table.append(value)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c_update(crc: int, data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum GCS keeps for every object; zlib only has CRC-32.

    Pure Python (a few MB/s), so downloads check it only when an object has no md5 (composite
    objects): md5 comes from hashlib at disk speed.
    """
    crc ^= 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --- the HTTP client -----------------------------------------------------------------------

class Client:
    """A minimal JSON API client: list, download, upload. One per process is enough."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        emulator = (env.get("STORAGE_EMULATOR_HOST") or "").strip().rstrip("/")
        if emulator and "://" not in emulator:
            emulator = f"http://{emulator}"
        self.endpoint = emulator or API_HOST
        self.emulated = bool(emulator)
        self.metadata_host = (env.get("GCE_METADATA_HOST") or "").strip() or METADATA_HOST
        self._static_token = (env.get("GOOGLE_OAUTH_ACCESS_TOKEN") or "").strip() or None
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    # credentials
    def _access_token(self) -> str | None:
        if self.emulated:
            return None
        if self._static_token:
            return self._static_token
        with self._lock:
            if self._token and self._token[1] > time.monotonic() + 60:
                return self._token[0]
            url = f"http://{self.metadata_host}{TOKEN_PATH}"
            request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})
            try:
                # S310 is fine here: http:// to the metadata server is how GCE hands out tokens
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    data = json.loads(response.read())
            except (OSError, ValueError) as exc:
                raise GcsError(
                    f"no Google access token: the metadata server {self.metadata_host} did not"
                    f" answer ({_reason(exc)}); run on Google Cloud, set GOOGLE_OAUTH_ACCESS_TOKEN,"
                    " or set STORAGE_EMULATOR_HOST for an emulator") from None
            token = str(data.get("access_token") or "")
            if not token:
                raise GcsError(f"the metadata server {self.metadata_host} returned no access token")
            self._token = (token, time.monotonic() + float(data.get("expires_in") or 300))
            return token

    def _open(self, method: str, url: str, *, data: Any = None,
              headers: Mapping[str, str] | None = None, what: str) -> Any:
        """An open response; retries 429/5xx and connection errors with backoff."""
        for attempt in range(ATTEMPTS):
            full = dict(headers or {})
            token = self._access_token()
            if token:
                full["Authorization"] = f"Bearer {token}"
            if hasattr(data, "seek"):
                data.seek(0)
            # S310 is fine here: url starts with API_HOST (https) or the emulator's http:// host
            request = urllib.request.Request(url, data=data, headers=full,  # noqa: S310
                                             method=method)
            try:
                return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code in (429, 500, 502, 503, 504) and attempt + 1 < ATTEMPTS:
                    time.sleep(0.5 * 2 ** attempt)
                    continue
                raise GcsError(f"{what}: HTTP {exc.code} {detail}".rstrip()) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt + 1 < ATTEMPTS:
                    time.sleep(0.5 * 2 ** attempt)
                    continue
                raise GcsError(f"{what}: cannot reach {self.endpoint} ({_reason(exc)})") from None
        raise AssertionError("unreachable")

    def _json(self, url: str, what: str) -> dict[str, Any] | None:
        """GET a JSON resource; None on 404."""
        try:
            with self._open("GET", url, what=what) as response:
                return json.loads(response.read())
        except GcsError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise

    def _object_url(self, bucket: str, name: str, *, download: bool = False) -> str:
        base = f"{self.endpoint}{'/download' if download else ''}/storage/v1/b/"
        return f"{base}{_q(bucket)}/o/{_q(name)}" + ("?alt=media" if download else "")

    # operations
    def list_objects(self, bucket: str, prefix: str, page_size: int = 1000) -> Iterator[dict]:
        """Every object whose name starts with ``prefix``, following ``nextPageToken``."""
        token = ""
        while True:
            query = {"prefix": prefix, "maxResults": str(page_size)}
            if token:
                query["pageToken"] = token
            url = f"{self.endpoint}/storage/v1/b/{_q(bucket)}/o?{urllib.parse.urlencode(query)}"
            page = self._json(url, f"cannot list gs://{bucket}/{prefix}")
            if page is None:
                raise GcsError(f"bucket gs://{bucket} does not exist (or is not visible to this"
                               " service account)")
            yield from page.get("items") or []
            token = page.get("nextPageToken") or ""
            if not token:
                return

    def stat(self, bucket: str, name: str) -> dict[str, Any] | None:
        return self._json(self._object_url(bucket, name), f"cannot read gs://{bucket}/{name}")

    def download_object(self, meta: Mapping[str, Any], target: Path) -> None:
        """Stream one object to ``target`` (via a temp file), checking size and md5/crc32c."""
        bucket, name = str(meta["bucket"]), str(meta["name"])
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        md5, crc, size = hashlib.md5(usedforsecurity=False), 0, 0
        check_crc = not meta.get("md5Hash") and bool(meta.get("crc32c")) \
            and int(meta.get("size") or 0) <= CRC32C_MAX_BYTES
        url = self._object_url(bucket, name, download=True)
        try:
            with self._open("GET", url, what=f"cannot download gs://{bucket}/{name}") as response, \
                    tmp.open("wb") as out:
                while block := response.read(BLOCK):
                    out.write(block)
                    size += len(block)
                    md5.update(block)
                    if check_crc:
                        crc = crc32c_update(crc, block)
            _verify(meta, size, md5.digest(), crc if check_crc else None)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def upload_file(self, path: Path, bucket: str, name: str) -> None:
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        url = f"{self.endpoint}/upload/storage/v1/b/{_q(bucket)}/o?{query}"
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Length": str(path.stat().st_size)}
        with path.open("rb") as handle, self._open(
                "POST", url, data=handle, headers=headers,
                what=f"cannot upload {path} to gs://{bucket}/{name}") as response:
            meta = json.loads(response.read() or b"{}")
        expected = base64.b64encode(_md5_file(path)).decode()
        if meta.get("md5Hash") and meta["md5Hash"] != expected:
            raise GcsError(f"gs://{bucket}/{name}: the stored md5 differs from {path}'s")


def _verify(meta: Mapping[str, Any], size: int, md5: bytes, crc: int | None) -> None:
    where = f"gs://{meta['bucket']}/{meta['name']}"
    if meta.get("size") not in (None, "") and int(meta["size"]) != size:
        raise GcsError(f"{where}: downloaded {size} bytes, the object has {meta['size']}")
    if meta.get("md5Hash") and base64.b64decode(meta["md5Hash"]) != md5:
        raise GcsError(f"{where}: md5 mismatch after download (corrupted transfer); retry")
    if crc is not None and base64.b64decode(meta["crc32c"]) != crc.to_bytes(4, "big"):
        raise GcsError(f"{where}: crc32c mismatch after download (corrupted transfer); retry")


def _md5_file(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.digest()


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason) or type(exc).__name__


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        return str(body.get("error", {}).get("message") or exc.reason or "")
    except (ValueError, AttributeError, OSError):
        return str(exc.reason or "")


# --- folder-level helpers the runtime calls --------------------------------------------------

def _inside(dest: Path, rel: str) -> Path:
    target = (dest / rel).resolve()
    if target != dest.resolve() and dest.resolve() not in target.parents:
        raise GcsError(f"object name {rel!r} would be written outside {dest}")
    return target


def download(uri: str, dest: Path, env: Mapping[str, str] | None = None,
             client: Client | None = None) -> Path:
    """Copy the objects under the ``uri`` folder (or the one object ``uri`` names) into ``dest``.

    ``gs://b/models/iris`` means the folder ``models/iris/`` (never ``models/iris2/``); when
    no object is below it, an object named exactly ``models/iris`` is fetched as one file.
    """
    bucket, prefix = split(uri)
    if not bucket:
        raise GcsError(f"{uri!r} names no bucket (expected gs://BUCKET/PATH)")
    client = client or Client(env)
    dest.mkdir(parents=True, exist_ok=True)
    folder = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    count = 0
    for meta in client.list_objects(bucket, folder):
        name = str(meta["name"])
        if name.endswith("/"):  # a "folder" placeholder object
            continue
        client.download_object(meta, _inside(dest, name[len(folder):]))
        count += 1
    if count == 0 and prefix and not prefix.endswith("/"):
        single = client.stat(bucket, prefix)
        if single is not None:
            client.download_object(single, _inside(dest, prefix.rsplit("/", 1)[-1]))
            count = 1
    if count == 0:
        raise GcsError(f"nothing to download at {uri}: no object there or below it")
    return dest


def upload(source: Path, uri: str, env: Mapping[str, str] | None = None,
           client: Client | None = None) -> int:
    """Copy every file under ``source`` below the ``uri`` prefix; returns how many."""
    bucket, prefix = split(uri)
    if not bucket:
        raise GcsError(f"{uri!r} names no bucket (expected gs://BUCKET/PATH)")
    client = client or Client(env)
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file():
            name = "/".join(filter(None, [prefix.strip("/"), path.relative_to(source).as_posix()]))
            client.upload_file(path, bucket, name)
            count += 1
    return count
