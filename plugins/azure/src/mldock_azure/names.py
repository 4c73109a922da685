"""Names and tags of what mldock creates in Azure ML, so it can find (and delete) them again.

Azure ML's rules differ per resource, and a name it refuses fails only once the request is sent,
so they are checked (or made to fit) here:

* jobs, experiments, models and environments: letters, digits, ``-`` and ``_`` (models also
  ``.``), starting with a letter or digit, up to 255 characters;
* online and batch endpoints: 3 to 32 letters, digits and ``-``, starting with a letter and not
  ending with ``-``; the name is a DNS label, unique within the Azure region;
* deployments: 3 to 32 letters, digits and ``-``, starting with a letter (unique per endpoint);
* ACR repositories: lower-case ``[a-z0-9]`` words joined by ``.``, ``_``, ``__``, ``-`` and ``/``.

Everything mldock creates carries the tags below (Azure ML tags are plain ``str → str``);
``undeploy`` removes only what is tagged as mldock's.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable

from mldock.errors import UsageError

TAG_PROJECT = "mldock-project"
TAG_RUN = "mldock-run"
TAG_ENDPOINT = "mldock-endpoint"
TAG_ROLE = "mldock-role"  # "training", "serving", "batch", "model"
MAX_NAME = 255
MAX_ENDPOINT = 32
JOB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
MODEL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
DEPLOYMENT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{2,31}$")
ACR_SUFFIX = ".azurecr.io"
ACR_HOST = re.compile(r"^[a-z0-9]{5,50}\.azurecr\.(io|cn|us)$")
ACR_USER = "00000000-0000-0000-0000-000000000000"
"""The user name an ACR refresh token is presented with (Azure's documented null GUID)."""


def clean(text: str, *, dots: bool = False) -> str:
    """``text`` in Azure ML's name alphabet: runs of anything else become one hyphen."""
    allowed = r"[^A-Za-z0-9_.-]+" if dots else r"[^A-Za-z0-9_-]+"
    return re.sub(r"-{2,}", "-", re.sub(allowed, "-", text)).strip("-_.")


def stamp() -> str:
    """A sortable, practically unique suffix: UTC time to the second and 4 random hex digits."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(2)


def join(base: str, suffix: str, *, limit: int = MAX_NAME) -> str:
    """``base-suffix`` cut to ``limit`` characters (the base is shortened, never the suffix)."""
    base = clean(base) or "mldock"
    suffix = clean(suffix)
    room = limit - len(suffix) - 1
    return f"{base[:room].rstrip('-_')}-{suffix}" if suffix else base[:limit]


def job_name(project: str, run_id: str) -> str:
    """``<project>-<run id>``: one job per run, the run found from the job at a glance.

    Azure ML job names are unique in the workspace for ever (a cancelled job keeps its name), so
    a retried run gets a new run id and with it a new job.
    """
    return join(project, run_id)


def experiment_name(project: str) -> str:
    """The experiment every job of the project is grouped under in Azure ML studio."""
    return clean(project)[:MAX_NAME] or "mldock"


def model_name(project: str) -> str:
    """The registered model's name: the project's (each trained run is a new version)."""
    return clean(project, dots=True)[:MAX_NAME] or "mldock"


def check_endpoint_name(name: str) -> str:
    """``name`` if Azure ML accepts it as an endpoint name, else a one-line error with the rule.

    Never rewritten silently: the user calls the endpoint by this name afterwards.
    """
    if ENDPOINT_NAME.match(name) and "--" not in name:
        return name
    raise UsageError(f"endpoint name {name!r} is not valid on Azure ML: 3 to 32 letters, digits"
                     " and hyphens, starting with a letter, not ending with a hyphen",
                     hint=f"choose another name, e.g. {suggest_endpoint_name(name)!r}")


def suggest_endpoint_name(name: str) -> str:
    """A valid endpoint name close to ``name`` (for hints and defaults)."""
    text = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")
    text = re.sub(r"-{2,}", "-", text.lstrip("0123456789-"))
    text = text[:MAX_ENDPOINT].rstrip("-")
    if len(text) < 3:
        text = f"mldock-{text}".rstrip("-") if text else "mldock-endpoint"
    return text


def deployment_name() -> str:
    """A fresh deployment name (``d<UTC time><4 hex>``, 19 characters): a blue/green update
    creates a new deployment beside the live one, so names never repeat."""
    return "d" + stamp()


def repository_name(image: str) -> str:
    """The repository part of ``image`` without host, tag or digest, as ACR wants it
    (lower case): ``team/iris``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    if image_host(name):
        name = name.split("/", 1)[1]
    return name.lower()


def image_host(image: str) -> str | None:
    """The registry host of an image reference, or None for a bare local name (``iris:abc``)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def registry_host(registry: str) -> str:
    """``<registry>.azurecr.io`` for a registry name (a full host is kept as it is)."""
    registry = registry.strip().lower()
    return registry if "." in registry or ":" in registry else registry + ACR_SUFFIX


def is_acr(image: str, extra_hosts: Iterable[str] = ()) -> bool:
    """Whether Azure ML can pull ``image`` as it is: an ACR host, or a configured override."""
    host = image_host(image)
    return host is not None and (bool(ACR_HOST.match(host.lower())) or host in set(extra_hosts))


def tags_for(project: str, role: str, *, run_id: str | None = None,
             endpoint: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The user's tags plus mldock's own (which win: they are how mldock finds its resources)."""
    tags = dict(extra or {})
    tags.update({TAG_PROJECT: project, TAG_ROLE: role})
    if run_id:
        tags[TAG_RUN] = run_id
    if endpoint:
        tags[TAG_ENDPOINT] = endpoint
    return tags
