"""``[storage.s3]``: how to reach the store. Everything is optional; AWS's own chain fills the gaps.

The defaults talk to AWS S3 with the standard credential chain (environment, ``AWS_PROFILE``,
``~/.aws``, SSO, instance or container roles) and the region from the same place. S3-compatible
stores (MinIO, Ceph, Cloudflare R2, moto) need ``endpoint_url`` (or ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` in the environment, which boto3 reads itself) and often
``addressing_style = "path"``.

Credentials in this file are accepted only as the *names* of environment variables
(``access_key_id = "env:MINIO_USER"``): a store that needs keys other than the AWS ones can be given
them without putting a secret into ``mldock.toml``.
"""

from __future__ import annotations

from typing import Literal

from mldock.config.plugin_config import EndpointUrl, EnvSecret, PluginConfig
from pydantic import Field, model_validator

MB = 1 << 20


class S3Options(PluginConfig):
    """Options of the ``s3`` artifact store (``[storage.s3]`` in ``mldock.toml``).

    Attributes:
        endpoint_url: the store's endpoint, e.g. ``http://127.0.0.1:9000`` for MinIO or
            ``https://<account>.r2.cloudflarestorage.com``; unset means AWS S3 (or the endpoint
            from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``).
        region: the bucket's region; unset means the AWS chain's (``AWS_REGION``, the profile).
        profile: a named profile of ``~/.aws/config``; unset means ``AWS_PROFILE`` or ``default``.
        addressing_style: ``"path"`` (``endpoint/bucket/key``, what most self-hosted stores want),
            ``"virtual"`` (``bucket.endpoint/key``) or ``"auto"`` (boto3 decides).
        max_concurrency: parallel requests per transfer (parts of a big file, or small files).
        multipart_threshold_mb: files from this size up are sent and fetched in parts; smaller
            ones go in one PUT carrying their SHA-256, which AWS S3 checks against the bytes.
        multipart_chunk_mb: the size of one uploaded part (S3 needs at least 5 MiB). Downloads
            cut a file into ``max_concurrency`` ranges of at least this size (at most 256 MiB).
        anonymous: send unsigned requests (public buckets, e.g. open data sets); no credentials.
        access_key_id, secret_access_key, session_token: ``"env:NAME"`` of variables holding
            keys for this store only. Prefer the standard chain (``AWS_ACCESS_KEY_ID``, profiles).
    """

    endpoint_url: EndpointUrl | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    max_concurrency: int = Field(default=10, ge=1, le=64)
    multipart_threshold_mb: int = Field(default=16, ge=5, le=5 * 1024)
    multipart_chunk_mb: int = Field(default=8, ge=5, le=5 * 1024)
    anonymous: bool = False
    access_key_id: EnvSecret | None = None
    secret_access_key: EnvSecret | None = None
    session_token: EnvSecret | None = None


    @model_validator(mode="after")
    def _check_credentials(self) -> S3Options:
        has_id, has_secret = self.access_key_id is not None, self.secret_access_key is not None
        if has_id != has_secret:
            raise ValueError("access_key_id and secret_access_key go together: give both or"
                             " neither (neither uses the standard AWS credential chain)")
        if self.session_token is not None and not has_id:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if self.anonymous and (has_id or self.profile):
            raise ValueError("anonymous = true sends unsigned requests: drop the credentials and"
                             " profile, or set anonymous = false")
        return self

    @property
    def multipart_threshold(self) -> int:
        """Bytes from which transfers go in parts."""
        return self.multipart_threshold_mb * MB

    @property
    def multipart_chunksize(self) -> int:
        """Bytes per part."""
        return self.multipart_chunk_mb * MB
