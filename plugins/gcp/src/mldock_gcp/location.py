"""``gs://bucket/prefix`` URIs: parsed once, checked early, so a typo fails before any request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mldock.errors import UsageError

SCHEME = "gs://"
URI_HINT = "write it as gs://<bucket>/<prefix>, e.g. gs://my-models/iris"
# Cloud Storage's naming rules: 3-63 characters (up to 222 with dots, 63 between dots), lowercase
# letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
MAX_OBJECT_NAME = 1024  # bytes of UTF-8


@dataclass(frozen=True)
class GcsLocation:
    """A bucket and an object-name prefix (no leading or trailing ``/``; empty for the root)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> GcsLocation:
        """Split ``gs://bucket/some/prefix``; raise UsageError naming the URI if it is not one."""
        text = (uri or "").strip()
        if not text.lower().startswith(SCHEME):
            raise UsageError(f"invalid GCS URI {uri!r}: it must start with gs://", hint=URI_HINT)
        bucket, _, prefix = text[len(SCHEME):].partition("/")
        problem = bucket_problem(bucket)
        if problem:
            raise UsageError(f"invalid GCS URI {uri!r}: {problem}", hint=URI_HINT)
        if any(ord(c) < 32 or c == "\x7f" for c in prefix):
            raise UsageError(f"invalid GCS URI {uri!r}: the prefix has a control character",
                             hint=URI_HINT)
        if len(prefix.encode()) > MAX_OBJECT_NAME // 2:
            raise UsageError(f"invalid GCS URI {uri!r}: the prefix is too long (object names"
                             f" are at most {MAX_OBJECT_NAME} bytes)", hint=URI_HINT)
        return cls(bucket, prefix.strip("/"))

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    def key(self, *parts: str) -> str:
        """The object name of ``parts`` joined under this prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def child(self, *parts: str) -> GcsLocation:
        return GcsLocation(self.bucket, self.key(*parts))

    def object_uri(self, name: str) -> str:
        """``gs://bucket/name`` of an object name in this bucket."""
        return f"{SCHEME}{self.bucket}/{name}"

    def __str__(self) -> str:
        return self.uri


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` cannot be a Cloud Storage bucket name, or None when it can."""
    if not BUCKET_PATTERN.match(bucket):
        return (f"{bucket!r} is not a bucket name (3-63 lowercase letters, digits, '-', '_'"
                " or '.', starting and ending with a letter or digit)")
    if "." not in bucket and len(bucket) > 63:
        return f"bucket name {bucket!r} is longer than 63 characters"
    if any(len(part) > 63 or not part for part in bucket.split(".")):
        return f"bucket name {bucket!r} has an empty or over-long part between dots"
    if bucket.startswith("goog") or "google" in bucket:
        return f"bucket name {bucket!r} is reserved by Google (no 'goog' prefix, no 'google')"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        return f"bucket name {bucket!r} looks like an IP address"
    return None
