"""Requests that stream files: a file (or a slice of one) sent as a resumable upload in a single
request, and a byte range of an object written into place.

google-cloud-storage's resumable uploads read each chunk into memory and send it as its own
request. For a file this is needless: the session takes the whole body in one ``PUT`` streamed from
disk (memory stays flat, one round trip), and Cloud Storage keeps what arrived if the connection
drops, so a failed request is resumed from the offset the session reports instead of restarting.
The bytes are CRC32C-summed as they are read, and the object the service reports must carry the
same CRC32C and size, or it is deleted and the upload fails.

Ranges are read from the JSON API's media URL in 1 MiB blocks (the library reads 8 KiB at a time,
which costs more CPU than the network on a fast link) and pinned to one generation; a range cut
short is requested again from where it stopped.
"""

from __future__ import annotations

import base64
import io
import urllib.parse
from typing import Any, BinaryIO

from mldock.cas import TransferProgress

ATTEMPTS = 4
RESUME_INCOMPLETE = 308
BLOCK = 1 << 20


class FileSlice(io.RawIOBase):
    """``length`` bytes of a file from ``offset``, CRC32C-summed as they are read and reported to
    a meter; :meth:`restart_at` rewinds to resend from a position (summing again from there)."""

    def __init__(self, handle: BinaryIO, offset: int, length: int, meter: TransferProgress):
        import google_crc32c

        self.handle, self.offset, self.length, self.meter = handle, offset, length, meter
        self.position = 0
        self._crc = google_crc32c.Checksum()
        self._summed = 0  # bytes the checksum has covered (a resend covers nothing new)
        handle.seek(offset)

    def readable(self) -> bool:
        return True

    def restart_at(self, position: int) -> None:
        self.meter.add(position - self.position)
        self.position = position
        self.handle.seek(self.offset + position)

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self.position
        data = self.handle.read(left if size is None or size < 0 else min(size, left))
        if self.position + len(data) > self._summed:  # only bytes never summed before
            self._crc.update(data[self._summed - self.position:])
            self._summed = self.position + len(data)
        self.position += len(data)
        self.meter.add(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.position

    def __len__(self) -> int:
        """The whole slice: ``requests`` sends ``len(body) - body.tell()`` bytes."""
        return self.length

    @property
    def crc32c(self) -> str:
        """The base64 CRC32C of the slice (once it has been read whole)."""
        return base64.b64encode(self._crc.digest()).decode("ascii")


def stream_upload(session: Any, blob: Any, source: FileSlice, *, content_type: str,
                  if_generation_match: int | None, timeout: Any, retry: Any) -> dict[str, Any]:
    """Upload ``source`` as ``blob`` in one streamed request (resumed on a dropped connection);
    return the object resource the service answered with."""
    import requests
    from google.api_core import exceptions as gax

    url = blob.create_resumable_upload_session(
        content_type=content_type, size=source.length, timeout=timeout, checksum=None,
        if_generation_match=if_generation_match, retry=retry)
    start, last_error = 0, None
    for _ in range(ATTEMPTS):
        source.restart_at(start)
        try:
            response = session.put(url, data=source, timeout=timeout, headers={
                "Content-Length": str(source.length - start),
                "Content-Range": _range(start, source.length)})
        except (requests.ConnectionError, requests.Timeout) as exc:
            last_error = exc
            start = _persisted(session, url, source.length, timeout)
            continue
        if response.status_code in (200, 201):
            resource: dict[str, Any] = response.json()
            _verify(blob, resource, source)
            return resource
        if response.status_code == RESUME_INCOMPLETE or response.status_code >= 500:
            last_error = gax.from_http_response(response)
            start = _persisted(session, url, source.length, timeout)
            continue
        raise gax.from_http_response(response)
    assert last_error is not None  # noqa: S101 - the loop only ends early by returning
    raise last_error


def _range(start: int, total: int) -> str:
    return f"bytes {start}-{total - 1}/{total}" if total > start else f"bytes */{total}"


def _persisted(session: Any, url: str, total: int, timeout: Any) -> int:
    """How many bytes the session holds (a status query), to resume from there."""
    response = session.put(url, data=b"", timeout=timeout,
                           headers={"Content-Length": "0", "Content-Range": f"bytes */{total}"})
    if response.status_code != RESUME_INCOMPLETE:
        return 0
    held = response.headers.get("Range", "")  # "bytes=0-N"
    return int(held.rsplit("-", 1)[-1]) + 1 if "-" in held else 0


def _verify(blob: Any, resource: dict[str, Any], source: FileSlice) -> None:
    """The stored object is the bytes read: same size, same CRC32C (else it is deleted)."""
    size, crc = int(resource.get("size", -1)), resource.get("crc32c")
    if size == source.length and (crc is None or crc == source.crc32c):
        return
    from mldock.errors import MldockError

    blob.delete(if_generation_match=int(resource["generation"]))
    raise MldockError(f"gs://{blob.bucket.name}/{blob.name}: the service stored {size} bytes"
                      f" with CRC32C {crc}, not the {source.length} bytes read (CRC32C"
                      f" {source.crc32c})", hint="store it again; the object was removed")


def media_url(endpoint: str, bucket: str, name: str, generation: int,
              user_project: str | None = None) -> str:
    """The JSON API's download URL of one generation of an object."""
    query = {"alt": "media", "generation": str(generation)}
    if user_project:
        query["userProject"] = user_project
    return (f"{endpoint}/download/storage/v1/b/{bucket}/o/"
            f"{urllib.parse.quote(name, safe='')}?{urllib.parse.urlencode(query)}")


def fetch_range(session: Any, url: str, start: int, end: int, path: Any,
                meter: TransferProgress, *, timeout: Any) -> None:
    """Bytes ``start``..``end`` (inclusive) of the object at ``url`` into the file ``path`` at
    the same offset; a response cut short is followed by a request for the rest."""
    import urllib3
    from google.api_core import exceptions as gax

    position, failures = start, 0
    with open(path, "r+b") as handle:
        while position <= end:
            handle.seek(position)
            try:
                with session.get(url, headers={"Range": f"bytes={position}-{end}",
                                               "Accept-Encoding": "identity"},
                                 stream=True, timeout=timeout) as response:
                    if response.status_code not in (200, 206):
                        raise gax.from_http_response(response)
                    for block in response.raw.stream(BLOCK, decode_content=False):
                        handle.write(block)
                        position += len(block)
                        meter.add(len(block))
            except (OSError, urllib3.exceptions.HTTPError):  # requests' errors are OSErrors
                failures += 1
                if failures >= ATTEMPTS:
                    raise
