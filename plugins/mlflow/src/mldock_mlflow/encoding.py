"""How mldock's run data maps onto MLflow's strings: params, lineage tags, artifact references.

MLflow keeps params and tags as strings (params at most 6,000 characters and immutable, tags at most
8,000 and replaceable). mldock's lineage and artifact references therefore become ``mldock.*`` tags,
readable and searchable in the MLflow UI::

    mldock.project            the mldock project (an experiment may hold several)
    mldock.run_id             an id the caller chose (MLflow always makes its own run ids)
    mldock.git_commit, mldock.git_dirty, mldock.image, mldock.image_id, mldock.image_digest,
    mldock.platform, mldock.job_id
    mldock.input.<channel>.<field>      e.g. mldock.input.train.sha256
    mldock.config             the resolved config as JSON (if it fits; else mldock.config_artifact
                              names a JSON artifact holding it)
    mldock.artifact.<key>     {"key", "uri", "sha256", "size", "kind", "n", "path"} as JSON
    mldock.error              the failure text of a failed or killed run (its last 8,000 chars)
    mldock.string_params      params that are strings although they read like JSON (e.g. "3")

Params that are not strings are written as JSON (``0.01``, ``true``, ``[64, 32]``) and read back
typed. Nothing here imports MLflow.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from mldock.interfaces import ArtifactRef, Lineage

PREFIX = "mldock."
PROJECT_TAG = "mldock.project"
RUN_ID_TAG = "mldock.run_id"
ERROR_TAG = "mldock.error"
CONFIG_TAG = "mldock.config"
CONFIG_ARTIFACT_TAG = "mldock.config_artifact"
CONFIG_ARTIFACT = "mldock/config.json"
STRING_PARAMS_TAG = "mldock.string_params"
MODEL_PATH_TAG = "mldock.model_path"
REGISTERED_TAG = "mldock.registered_model"
ARTIFACT_PREFIX = "mldock.artifact."
INPUT_PREFIX = "mldock.input."
SCALAR_LINEAGE = ("git_commit", "git_dirty", "image", "image_id", "image_digest", "platform",
                  "job_id")
MAX_TAG_VALUE = 8000
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
_SAFE_NAME = re.compile(r"^[/\w.\- :]+$")

BOOKKEEPING = frozenset({PROJECT_TAG, RUN_ID_TAG, ERROR_TAG, CONFIG_TAG, CONFIG_ARTIFACT_TAG,
                         STRING_PARAMS_TAG, MODEL_PATH_TAG,
                         *(PREFIX + f for f in SCALAR_LINEAGE if f != "platform")})
"""Tags that hold mldock's own records and are not shown among a run's tags (platform is: core
sets it as a tag when it creates a run)."""


def visible_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """A run's tags as the user set them: without MLflow's ``mlflow.*`` and mldock's bookkeeping."""
    return {k: v for k, v in tags.items()
            if not k.startswith(("mlflow.", ARTIFACT_PREFIX, INPUT_PREFIX))
            and k not in BOOKKEEPING}


# --- params -----------------------------------------------------------------------------------


def _reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def encode_params(params: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(MLflow param strings, keys of strings that must not be JSON-decoded when read)."""
    out: dict[str, str] = {}
    literal: list[str] = []
    for key, value in params.items():
        if isinstance(value, str):
            out[str(key)] = value
            if _reads_as_json(value):
                literal.append(str(key))
        else:
            out[str(key)] = json.dumps(value, sort_keys=True, default=str)
    return out, literal


def decode_params(params: Mapping[str, str], tags: Mapping[str, str]) -> dict[str, Any]:
    literal = set(json.loads(tags.get(STRING_PARAMS_TAG) or "[]"))
    out: dict[str, Any] = {}
    for key, text in params.items():
        if key in literal:
            out[key] = text
            continue
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


# --- lineage ----------------------------------------------------------------------------------


def lineage_tags(lineage: Lineage) -> tuple[dict[str, str], str | None]:
    """(tags, config JSON too long for a tag or ``None``). Unset fields give no tag."""
    tags: dict[str, str] = {}
    for name in SCALAR_LINEAGE:
        value = getattr(lineage, name)
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        tags[PREFIX + name] = text
    for channel, fields in lineage.inputs.items():
        for field, value in fields.items():
            tags[f"{INPUT_PREFIX}{channel}.{field}"] = str(value)
    config = json.dumps(dict(lineage.config), sort_keys=True, default=str)
    if len(config) <= MAX_TAG_VALUE:
        tags[CONFIG_TAG] = config
        return tags, None
    tags[CONFIG_ARTIFACT_TAG] = CONFIG_ARTIFACT
    return tags, config


def lineage_keys(tags: Mapping[str, str]) -> set[str]:
    """The lineage tags a run has now (to delete the ones a new lineage no longer sets)."""
    return {k for k in tags if k.startswith(INPUT_PREFIX) or k in (CONFIG_TAG, CONFIG_ARTIFACT_TAG)
            or k in {PREFIX + f for f in SCALAR_LINEAGE}}


def decode_lineage(tags: Mapping[str, str], config: Mapping[str, Any] | None = None) -> Lineage:
    """The lineage recorded in ``tags``; ``config`` when it was stored as an artifact."""
    values: dict[str, Any] = {}
    for name in SCALAR_LINEAGE:
        text = tags.get(PREFIX + name)
        if text is not None:
            values[name] = (text == "true") if name == "git_dirty" else text
    inputs: dict[str, dict[str, str]] = {}
    for key, value in tags.items():
        if key.startswith(INPUT_PREFIX):
            channel, _, field = key[len(INPUT_PREFIX):].rpartition(".")
            if channel and field:
                inputs.setdefault(channel, {})[field] = value
    if config is None:
        config = json.loads(tags[CONFIG_TAG]) if tags.get(CONFIG_TAG) else {}
    return Lineage(**values, inputs=inputs, config=dict(config))


# --- artifacts --------------------------------------------------------------------------------


def valid_name(name: str) -> bool:
    """Whether MLflow accepts ``name`` as a metric, param or tag name (same rule as its server)."""
    if not name or len(name) > MAX_KEY or not _SAFE_NAME.match(name):
        return False
    norm = posixpath.normpath(name)
    return norm == name and norm != "." and not norm.startswith(("..", "/"))


def artifact_tag_key(key: str) -> str:
    """The tag naming an artifact: its key when MLflow accepts it as a tag name, else a hash."""
    candidate = ARTIFACT_PREFIX + key
    if valid_name(candidate):
        return candidate
    return ARTIFACT_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]


def artifact_tag_value(ref: ArtifactRef, n: int, path: str | None) -> str:
    body: dict[str, Any] = {"key": ref.key, "uri": ref.uri, "sha256": ref.sha256,
                            "size": ref.size, "kind": ref.kind, "n": n}
    if path is not None:
        body["path"] = path
    text = json.dumps(body, sort_keys=True)
    if len(text) > MAX_TAG_VALUE:
        raise ValueError(f"artifact reference {ref.key!r} is too long for an MLflow tag")
    return text


def decode_artifacts(tags: Mapping[str, str]) -> list[tuple[ArtifactRef, str | None]]:
    """(reference, MLflow artifact path or None) of each recorded artifact, in logging order."""
    found = []
    for key, value in tags.items():
        if not key.startswith(ARTIFACT_PREFIX):
            continue
        try:
            body = json.loads(value)
            ref = ArtifactRef(body["key"], body["uri"], body["sha256"], int(body["size"]),
                              body.get("kind", "file"))
        except (ValueError, KeyError, TypeError):
            continue
        found.append((body.get("n", 0), ref, body.get("path")))
    found.sort(key=lambda item: item[0])
    return [(ref, path) for _, ref, path in found]


def mlflow_artifact_path(key: str) -> str:
    """Where an mldock artifact goes among the run's MLflow artifacts.

    ``runs/<run id>/model`` (how core names a run's model) becomes ``model``: the run is implied.
    """
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "runs":
        return "/".join(parts[2:])
    return key


def tail(text: str, limit: int = MAX_TAG_VALUE) -> str:
    """The last ``limit`` characters: an error's last lines say the most."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
