"""Names and tags of what mldock creates on SageMaker, so it can find (and delete) them again.

SageMaker names (jobs, models, endpoint configs) match ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``:
letters, digits and single hyphens, 63 characters at most. Everything mldock creates carries the
tags below; ``undeploy`` deletes only models and configs tagged with the endpoint's name.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping

TAG_RUN = "mldock.run_id"
TAG_PROJECT = "mldock.project"
TAG_ENDPOINT = "mldock.endpoint"
TAG_ROLE = "mldock.role"  # "training", "serving", "batch"
MAX_NAME = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def clean(text: str) -> str:
    """``text`` reduced to SageMaker's name alphabet: runs of anything else become one hyphen."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]+", "-", text)).strip("-")


def stamp() -> str:
    """A sortable, practically unique suffix: UTC time to the second and 4 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def join(base: str, suffix: str) -> str:
    """``base-suffix`` cut to 63 characters (the base is shortened, never the suffix)."""
    base = clean(base) or "mldock"
    suffix = clean(suffix)
    room = MAX_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}" if suffix else base[:MAX_NAME]


def training_job_name(project: str, run_id: str) -> str:
    """``<project>-<run id>``: one job per run, and the run is found from the job at a glance."""
    return join(project, run_id)


def resource_name(endpoint: str) -> str:
    """A fresh name for a model or endpoint config of ``endpoint`` (updates need new names)."""
    return join(endpoint, stamp())


def resource_prefix(endpoint: str) -> str:
    """What every :func:`resource_name` of ``endpoint`` starts with (``<shortened name>-``)."""
    width = len(stamp())
    return join(endpoint, "x" * width)[:-width]


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """SageMaker's ``[{"Key": …, "Value": …}]`` form, sorted for stable requests."""
    return [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]


def tag_dict(tags: Iterable[Mapping[str, str]]) -> dict[str, str]:
    return {item["Key"]: item.get("Value", "") for item in tags}


def image_host(image: str) -> str | None:
    """The registry host of an image reference, or None for a bare local name (``iris:abc``)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def repository_name(image: str) -> str:
    """The repository part of ``image`` without host, tag or digest: ``team/iris``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    if image_host(name):
        name = name.split("/", 1)[1]
    return name


def is_ecr(image: str, extra_hosts: Iterable[str] = ()) -> bool:
    """Whether SageMaker can pull ``image`` as it is: an ECR host (or a configured override)."""
    host = image_host(image)
    return host is not None and (bool(ECR_HOST.match(host)) or host in set(extra_hosts))
