"""``az://container/prefix`` URIs: parsed once, checked early, so a typo fails before any request.

The storage account is not part of the usual form: it comes from ``[storage.azblob] account`` (or
the connection string). With ``account_in_uri = true`` the URI names it first,
``az://<account>/<container>/<prefix>``, the form other Azure tools write as
``abfs://container@account`` or ``https://account.blob.core.windows.net/container``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mldock.errors import UsageError

SCHEME = "az://"
URI_HINT = "write it as az://<container>/<prefix>, e.g. az://models/iris"
ACCOUNT_URI_HINT = "write it as az://<account>/<container>/<prefix> (account_in_uri = true)"
# Azure's rule: 3-63 characters, lowercase letters, digits and single hyphens, starting and ending
# with a letter or digit; "$root" is the account's root container.
CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$|^\$root$")
ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
MAX_BLOB_NAME = 1024


@dataclass(frozen=True)
class BlobLocation:
    """A container, a blob-name prefix (no leading or trailing ``/``; empty for the container's
    root) and, when the URI named it, the storage account."""

    container: str
    prefix: str = ""
    account: str | None = None

    @classmethod
    def parse(cls, uri: str, *, account_in_uri: bool = False) -> BlobLocation:
        """Split an ``az://`` URI; raise UsageError naming the URI if it is not one."""
        text = (uri or "").strip()
        hint = ACCOUNT_URI_HINT if account_in_uri else URI_HINT
        if not text.lower().startswith(SCHEME):
            raise UsageError(f"invalid Azure Blob URI {uri!r}: it must start with az://",
                             hint=hint)
        rest = text[len(SCHEME):]
        account = None
        if account_in_uri:
            account, _, rest = rest.partition("/")
            if not ACCOUNT.match(account):
                raise UsageError(f"invalid Azure Blob URI {uri!r}: {account!r} is not a storage"
                                 " account name (3-24 lowercase letters and digits)", hint=hint)
        container, _, prefix = rest.partition("/")
        if not CONTAINER.match(container):
            raise UsageError(f"invalid Azure Blob URI {uri!r}: {container!r} is not a container"
                             " name (3-63 lowercase letters, digits and single hyphens)",
                             hint=hint)
        if "\\" in prefix or any(ord(c) < 32 for c in prefix) or "//" in prefix.strip("/"):
            raise UsageError(f"invalid Azure Blob URI {uri!r}: the path has a backslash, a"
                             " control character or an empty part", hint=hint)
        if len(prefix) > MAX_BLOB_NAME // 2:
            raise UsageError(f"invalid Azure Blob URI {uri!r}: the path is too long (blob names"
                             f" stop at {MAX_BLOB_NAME} characters)", hint=hint)
        return cls(container, prefix.strip("/"), account)

    @property
    def uri(self) -> str:
        """The URI in the form it was given (with the account when the URI named it)."""
        head = f"{SCHEME}{self.account}/{self.container}" if self.account else \
            f"{SCHEME}{self.container}"
        return f"{head}/{self.prefix}" if self.prefix else head

    def key(self, *parts: str) -> str:
        """The blob name of ``parts`` joined under this prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def child(self, *parts: str) -> BlobLocation:
        return BlobLocation(self.container, self.key(*parts), self.account)

    def __str__(self) -> str:
        return self.uri
