"""One boto3 session per deployer and its service clients, each created on first use.

Only what the user set is passed to boto3: an unset region or profile lets boto3 read the
environment and ``~/.aws``; an unset ``endpoint_url`` lets it read ``AWS_ENDPOINT_URL`` and the
per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables itself. Retries use botocore's "standard" mode
(throttling and transient errors, jittered backoff) unless the user chose a mode.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from mldock_aws import __version__
from mldock_aws.config import SageMakerOptions
from mldock_aws.errors import translated

SERVICES = ("sagemaker", "sagemaker-runtime", "ecr", "logs", "sts", "iam", "s3")
READ_TIMEOUT = 70  # invoke_endpoint may take SageMaker's full 60 s per request


class AwsClients:
    """Lazily created clients sharing one session. Thread-safe creation; boto3 clients are
    thread-safe themselves (the log streamer and the status poller share them)."""

    def __init__(self, options: SageMakerOptions):
        self.options = options
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            kwargs: dict[str, Any] = {}
            if self.options.profile:
                kwargs["profile_name"] = self.options.profile
            if self.options.region:
                kwargs["region_name"] = self.options.region
            with translated("open an AWS session"):
                self._session = boto3.session.Session(**kwargs)
        return self._session

    def client(self, service: str) -> Any:
        """The client for ``service`` (one of :data:`SERVICES`), created once."""
        with self._lock:
            found = self._clients.get(service)
            if found is None:
                from botocore.config import Config

                config: dict[str, Any] = {"user_agent_extra": f"mldock-aws/{__version__}",
                                          "connect_timeout": 10, "read_timeout": READ_TIMEOUT}
                if not os.environ.get("AWS_RETRY_MODE"):
                    config["retries"] = {"mode": "standard"}
                with translated(f"create the {service} client"):
                    found = self.session.client(service, endpoint_url=self.options.endpoint_url,
                                                config=Config(**config))
                self._clients[service] = found
            return found

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime")

    @property
    def ecr(self) -> Any:
        return self.client("ecr")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def region(self) -> str:
        """The region requests go to (raises the no-region error if there is none)."""
        return str(self.sagemaker.meta.region_name)

    def endpoint_of(self, service: str) -> str:
        return str(self.client(service).meta.endpoint_url)

    def credential_source(self) -> str | None:
        """How boto3 found credentials (``env``, ``shared-credentials-file``, ``sso``…), or None.

        Never the keys themselves.
        """
        with translated("look up AWS credentials"):
            credentials = self.session.get_credentials()
        return None if credentials is None else str(getattr(credentials, "method", "unknown"))
