"""Names and labels of what mldock creates on Vertex AI, so it can find (and delete) them again.

Vertex assigns resource ids itself (``projects/P/locations/L/customJobs/123…``); what mldock
chooses is the *display name* (at most 128 characters, any text) and the *labels*: at most 64,
keys and values of at most 63 lowercase letters, digits, ``_`` and ``-``, keys starting with a
letter. Everything mldock creates carries :data:`LABEL_PROJECT`, :data:`LABEL_ROLE` and, when it
belongs to a run or an endpoint, :data:`LABEL_RUN` / :data:`LABEL_ENDPOINT`: ``undeploy`` deletes
only resources labelled with the endpoint's name.

Artifact Registry repositories follow ``^[a-z]([a-z0-9-]*[a-z0-9])?$`` (63 characters); an image
inside one may have path segments (``team/iris``) of lowercase letters, digits, ``.``, ``_``, ``-``.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping

LABEL_PROJECT = "mldock-project"
LABEL_RUN = "mldock-run"
LABEL_ROLE = "mldock-role"  # "training", "serving", "batch", "registry"
LABEL_ENDPOINT = "mldock-endpoint"
MAX_DISPLAY_NAME = 128
MAX_LABEL = 63
MAX_LABELS = 64
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
REGISTRY_HOST = re.compile(r"^([a-z0-9-]+-docker\.pkg\.dev|([a-z]+\.)?gcr\.io)$")


def label_value(text: str) -> str:
    """``text`` in the label alphabet: lowercased, anything else becomes ``-``, at most 63."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", str(text).lower())
    return re.sub(r"-{2,}", "-", cleaned).strip("-")[:MAX_LABEL].rstrip("-")


def labels(user: Mapping[str, str], *, project: str, role: str, run_id: str | None = None,
           endpoint: str | None = None) -> dict[str, str]:
    """The user's labels plus mldock's own (which win: the config refuses ``mldock*`` keys)."""
    found = dict(user)
    found[LABEL_PROJECT] = label_value(project)
    found[LABEL_ROLE] = label_value(role)
    if run_id:
        found[LABEL_RUN] = label_value(run_id)
    if endpoint:
        found[LABEL_ENDPOINT] = label_value(endpoint)
    check_labels(found)
    return dict(sorted(found.items()))


def check_labels(found: Mapping[str, str]) -> None:
    """Raise ValueError naming the first label Vertex would refuse (a programming error here:
    the config validates the user's, and :func:`label_value` cleans mldock's)."""
    if len(found) > MAX_LABELS:
        raise ValueError(f"{len(found)} labels: Vertex accepts at most {MAX_LABELS}")
    for key, value in found.items():
        if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
            raise ValueError(f"label {key}={value!r} breaks Vertex's label rules")


def stamp() -> str:
    """A sortable, practically unique suffix: UTC time to the second and 4 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def display_name(*parts: str) -> str:
    """``part-part-…`` cut to Vertex's 128 characters, the *first* part shortened (the last
    parts, a run id or a stamp, are what tell two resources apart)."""
    cleaned = [re.sub(r"\s+", "-", str(part).strip()) for part in parts if str(part).strip()]
    if not cleaned:
        return "mldock"
    tail = "-".join(cleaned[1:])
    room = MAX_DISPLAY_NAME - (len(tail) + 1 if tail else 0)
    if room < 1:
        return "-".join(cleaned)[-MAX_DISPLAY_NAME:]
    head = cleaned[0][:room]
    return f"{head}-{tail}" if tail else head


def training_job_name(project: str, run_id: str) -> str:
    """``<project>-<run id>``: one job per run, and the run is found from the job at a glance."""
    return display_name(project, run_id)


def image_host(image: str) -> str | None:
    """The registry host of an image reference, or None for a bare local name (``iris:abc``)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def image_name(image: str) -> str:
    """The last path segment of ``image`` without host, tag or digest: ``team/iris:1`` → ``iris``.

    Only the last segment: in Artifact Registry the path is ``PROJECT/REPOSITORY/IMAGE``, so a
    local ``team/iris`` goes to ``…/REPOSITORY/iris``.
    """
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    name = name.split(":", 1)[0].lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", name).strip("-._")
    return name or "image"


def is_pullable(image: str, extra_hosts: tuple[str, ...] = ()) -> bool:
    """Whether Vertex can pull ``image`` as it is: Artifact Registry, Container Registry, or a
    configured ``registry_host``."""
    host = image_host(image)
    return host is not None and (bool(REGISTRY_HOST.match(host)) or host in extra_hosts)
