"""One boto3 client per store, built from ``[storage.s3]`` on top of AWS's standard chain.

Only what the user set is passed to boto3: an unset endpoint lets boto3 read
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` itself, an unset region or profile lets it read the
environment and ``~/.aws``. Secrets named in the config (``env:NAME``) are read here, at the last
moment, and handed to boto3 only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from mldock.errors import MldockError

from mldock_s3 import __version__
from mldock_s3.config import MB, S3Options
from mldock_s3.errors import describe

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 120
MAX_RANGE = 256 * MB


@dataclass
class S3Connection:
    """A boto3 session and its S3 client, with the options they were built from.

    The client is thread-safe and keeps a connection pool large enough for ``max_concurrency``
    parallel requests of two transfers at once (blob checks and uploads overlap in a tree).
    """

    options: S3Options
    session: Any
    client: Any

    @property
    def endpoint(self) -> str:
        """The URL requests go to (from the options, the environment, or AWS's default)."""
        return str(self.client.meta.endpoint_url)

    @property
    def sends_checksums(self) -> bool:
        """Whether request checksums are wanted: off when the user turned botocore's off
        (``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``, for stores that reject them)."""
        wanted = getattr(self.client.meta.config, "request_checksum_calculation", None)
        return wanted != "when_required" and not self.options.anonymous

    def transfer_config(self, chunksize: int | None = None) -> TransferConfig:
        """s3transfer settings: parts of ``multipart_chunk_mb`` sent ``max_concurrency`` at a time.

        Larger parts than boto3's 8 MiB default mean fewer requests per gigabyte (each one costs a
        round trip and, on self-hosted stores, a server-side copy when the parts are joined).
        """
        return TransferConfig(
            multipart_threshold=self.options.multipart_threshold,
            multipart_chunksize=chunksize or self.options.multipart_chunksize,
            max_concurrency=self.options.max_concurrency,
            io_chunksize=1 * MB,
            max_io_queue=64,
            num_download_attempts=5,
            preferred_transfer_client="classic",
        )

    def range_size(self, size: int) -> int:
        """Bytes per ranged GET when downloading ``size`` bytes in parallel.

        The object is cut into ``max_concurrency`` ranges, so every connection is busy with one
        request and no more requests are made than that (each costs a round trip, and on servers
        that read the whole object to answer a range, a full read); never smaller than
        ``multipart_chunk_mb``, never above 256 MiB so that a retried range stays cheap.
        """
        share = -(-size // self.options.max_concurrency)
        share = -(-share // MB) * MB  # whole MiB
        return max(self.options.multipart_chunksize, min(share, MAX_RANGE))

    def credential_source(self) -> str | None:
        """How boto3 found credentials (``env``, ``shared-credentials-file``, ``sso``, …), or None.

        Never the keys themselves.
        """
        if self.options.anonymous:
            return "anonymous"
        credentials = self.session.get_credentials()
        return None if credentials is None else str(getattr(credentials, "method", "unknown"))


def connect(options: S3Options | None, *, bucket: str) -> S3Connection:
    """Build the session and client; configuration mistakes become one-line MldockErrors."""
    options = options or S3Options()
    session_args: dict[str, Any] = {}
    if options.profile:
        session_args["profile_name"] = options.profile
    if options.region:
        session_args["region_name"] = options.region
    if options.access_key_id is not None and options.secret_access_key is not None:
        session_args["aws_access_key_id"] = options.access_key_id.value()
        session_args["aws_secret_access_key"] = options.secret_access_key.value()
        if options.session_token is not None:
            session_args["aws_session_token"] = options.session_token.value()
    config_args: dict[str, Any] = {
        "s3": {"addressing_style": options.addressing_style},
        "max_pool_connections": max(10, 2 * options.max_concurrency + 2),
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "user_agent_extra": f"mldock-s3/{__version__}",
    }
    if not os.environ.get("AWS_RETRY_MODE"):
        # "standard" retries throttling and transient errors with jittered backoff (3 attempts);
        # the "legacy" default of older botocore makes an unreachable endpoint take much longer.
        config_args["retries"] = {"mode": "standard"}
    if options.anonymous:
        config_args["signature_version"] = UNSIGNED
    try:
        session = boto3.session.Session(**session_args)
        client = session.client("s3", endpoint_url=options.endpoint_url,
                                config=Config(**config_args))
    except MldockError:
        raise
    except (BotoCoreError, ValueError) as exc:
        raise describe(exc, action="connect to S3", bucket=bucket,
                       endpoint=options.endpoint_url) from exc
    return S3Connection(options=options, session=session, client=client)
