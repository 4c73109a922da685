"""Tracking URIs: which ones this plugin serves, and how a training container reaches the server.

Stdlib only: :mod:`mldock_mlflow.plugin` and core's deployers may call these without importing
MLflow.

``mlflow+http://host:port`` and ``mlflow+https://…`` select this tracker by scheme; the part after
``mlflow+`` is the URL MLflow's client talks to. With ``[tracking] backend = "mlflow"`` a plain
``http(s)://`` URL is accepted as well.

A container cannot reach the host's loopback address: ``127.0.0.1`` inside it is the container
itself. :func:`container_environment` therefore rewrites a loopback tracking URI to
``host.docker.internal``, and :func:`container_extra_hosts` gives the mapping that makes that name
resolve to the host on Linux (``host-gateway``, Docker 20.10+; Docker Desktop resolves it anyway).
The server must then listen on an address the Docker bridge reaches (``--host 0.0.0.0``) and accept
that Host header (``--allowed-hosts``); see the README.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("mlflow+http", "mlflow+https")
PLAIN_SCHEMES = ("http", "https")
HOST_ALIAS = "host.docker.internal"
HOST_GATEWAY = "host-gateway"
URI_HINT = ('use [tracking] uri = "mlflow+http://HOST:PORT" (or "mlflow+https://…"), or'
            ' [tracking] backend = "mlflow" with uri = "http(s)://HOST:PORT"')


class TrackingUriError(ValueError):
    """A URI this plugin cannot talk to; the message says why (converted to a ConfigError)."""


def http_uri(uri: str) -> str:
    """The ``http(s)://`` URL MLflow's client uses for ``uri`` (``mlflow+`` removed, no trailing /).

    Raises:
        TrackingUriError: another scheme, or no host.
    """
    text = (uri or "").strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in SCHEMES:
        scheme = scheme[len("mlflow+"):]
    if scheme not in PLAIN_SCHEMES:
        raise TrackingUriError(f"tracking URI {uri!r} is not an MLflow server URL")
    if not parts.hostname:
        raise TrackingUriError(f"tracking URI {uri!r} names no host")
    if parts.username or parts.password:
        raise TrackingUriError(f"tracking URI {uri!r} holds credentials; set them in"
                               " [tracking.mlflow] username/password = \"env:NAME\" instead")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), parts.query, ""))


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` means "this machine": ``localhost``, 127.0.0.0/8, ``::1`` or ``0.0.0.0``."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def container_tracking_uri(uri: str, *, host: str = HOST_ALIAS) -> str:
    """The URL a container uses for the server at ``uri``: loopback hosts become ``host``."""
    url = http_uri(uri)
    parts = urlsplit(url)
    if not is_loopback(parts.hostname):
        return url
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def container_environment(uri: str, *, experiment: str | None = None,
                          run_id: str | None = None, host: str = HOST_ALIAS) -> dict[str, str]:
    """Environment variables that point ``mlflow`` *inside a training container* at the server.

    Args:
        uri: the project's tracking URI (``mlflow+http://127.0.0.1:5000`` or a plain URL).
        experiment: sets ``MLFLOW_EXPERIMENT_NAME`` so ``mlflow.start_run()`` lands in the
            project's experiment.
        run_id: the MLflow run id of the mldock run; sets ``MLFLOW_RUN_ID`` so the user's own
            ``mlflow.log_*`` calls land in the same run as mldock's tracking.
        host: the name the container reaches the host by (default ``host.docker.internal``; give
            the Docker bridge's gateway address instead on engines older than 20.10).

    Credentials are never included: pass ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` to the
    container yourself if its code must authenticate.
    """
    env = {"MLFLOW_TRACKING_URI": container_tracking_uri(uri, host=host)}
    if experiment:
        env["MLFLOW_EXPERIMENT_NAME"] = experiment
    if run_id:
        env["MLFLOW_RUN_ID"] = run_id
    return env


def container_extra_hosts(uri: str, *, gateway: str = HOST_GATEWAY,
                          host: str = HOST_ALIAS) -> dict[str, str]:
    """``extra_hosts`` for ``docker run`` so ``host`` resolves to the host machine.

    Empty when the server is not on loopback (the container reaches it like any other host).
    ``gateway`` is ``host-gateway`` (Docker 20.10+) or an address such as the bridge's gateway.
    """
    if not is_loopback(urlsplit(http_uri(uri)).hostname):
        return {}
    return {host: gateway}
