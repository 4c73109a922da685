"""``s3://bucket/prefix`` URIs: parsed once, checked early, so a typo fails before any request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mldock.errors import UsageError

SCHEME = "s3://"
URI_HINT = "write it as s3://<bucket>/<prefix>, e.g. s3://my-models/iris"
# S3's own rule is stricter (3-63 chars, lowercase); compatible stores accept a little more
# (underscores, upper case on old Ceph), so only what can never be a bucket is refused here.
BUCKET_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (no leading or trailing ``/``; empty for the bucket's root)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Split ``s3://bucket/some/prefix``; raise UsageError naming the URI if it is not one."""
        text = (uri or "").strip()
        if not text.lower().startswith(SCHEME):
            raise UsageError(f"invalid S3 URI {uri!r}: it must start with s3://", hint=URI_HINT)
        bucket, _, prefix = text[len(SCHEME):].partition("/")
        if not BUCKET_PATTERN.match(bucket):
            raise UsageError(f"invalid S3 URI {uri!r}: {bucket!r} is not a bucket name",
                             hint=URI_HINT)
        if "\\" in prefix or any(ord(c) < 32 for c in prefix):
            raise UsageError(
                f"invalid S3 URI {uri!r}: the key has a backslash or control character",
                hint=URI_HINT)
        return cls(bucket, prefix.strip("/"))

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` joined under this prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def child(self, *parts: str) -> S3Location:
        return S3Location(self.bucket, self.key(*parts))

    def __str__(self) -> str:
        return self.uri
