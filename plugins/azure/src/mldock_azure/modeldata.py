"""The run's model as Azure ML serves it: a registered ``custom_model``, one version per run.

An online deployment and a batch job take a *registered* model, which Azure ML mounts read-only
(``AZUREML_MODEL_DIR`` for a deployment, a job input for batch). Where the files come from:

* a run trained on Azure ML: its job's ``model`` output (``azureml://jobs/<job>/outputs/model``),
  registered where it is, nothing copied;
* a run trained anywhere else: its model folder (fetched by core into ``.mldock/models/<run>``, or
  a local path), uploaded by azure-ai-ml to the workspace's default datastore and registered;
* a model registered already (``azureml:<name>:<version>``): used as it is.

The model is named after the project (:func:`mldock_azure.names.model_name`) and versioned by the
run id, so deploying the same run twice registers (and uploads) nothing the second time, and the
studio shows which run each version came from. Registered models are never deleted by
``undeploy``: they are the lineage of what was served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ProgressSink, null_progress
from mldock.runtime.names import MANIFEST_NAME

from mldock_azure.errors import translated
from mldock_azure.names import TAG_RUN, clean, model_name, tags_for

CUSTOM_MODEL = "custom_model"


@dataclass(frozen=True)
class RegisteredModel:
    """A model version in the workspace's registry.

    Attributes:
        name, version: the asset's name and version.
        id: its ARM id, when Azure ML returned it.
        path: where its files live (datastore or job output URI).
    """

    name: str
    version: str
    id: str | None = None
    path: str | None = None

    @property
    def reference(self) -> str:
        """``azureml:<name>:<version>``: how deployments and job inputs name it."""
        return f"azureml:{self.name}:{self.version}"


def parse_reference(uri: str) -> RegisteredModel | None:
    """``azureml:<name>:<version>`` as a :class:`RegisteredModel`, else ``None``."""
    if not uri.startswith("azureml:") or uri.startswith("azureml://"):
        return None
    parts = uri.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise UsageError(f"model {uri!r}: a registered model is named azureml:<name>:<version>")
    return RegisteredModel(parts[1], parts[2])


def local_folder(model_uri: str, model_dir: str | None) -> Path | None:
    """The local model folder: ``model_dir`` if given, else ``model_uri`` when it is a path."""
    if model_dir:
        return Path(model_dir)
    if model_uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(model_uri).path))
    if model_uri and "://" not in model_uri and not model_uri.startswith("azureml:"):
        return Path(model_uri)
    return None


def version_for(run_id: str) -> str:
    """The model version of a run: its id in Azure ML's version alphabet."""
    return clean(run_id, dots=True)[:64] or "1"


def registered_model(clients: Any, *, model_uri: str, model_dir: str | None, run_id: str,
                     project: str = "", tags: dict[str, str] | None = None,
                     progress: ProgressSink = null_progress) -> RegisteredModel:
    """The registered model version serving ``run_id``'s model, registered now if needed.

    ``clients`` gives the workspace's ``MLClient`` (``clients.ml``). A local folder must
    hold a trained model (``mldock-model.json``); an ``az://`` store URI without a local copy is
    refused (the store keeps a content-addressed tree, not a folder Azure ML could mount).
    """
    known = parse_reference(model_uri)
    if known is not None:
        return known
    name, version = model_name(project or "mldock"), version_for(run_id)
    path: str
    if model_uri.startswith("azureml://"):
        path = model_uri  # a job's output: registered where it is
    else:
        folder = local_folder(model_uri, model_dir)
        if folder is None:
            raise UsageError(f"the model at {model_uri} is neither an Azure ML job output nor a"
                             " local folder", hint="deploy a run trained with --env azure, or"
                                                   " fetch the model first (mldock deploy does)")
        if not (folder / MANIFEST_NAME).is_file():
            raise MldockError(f"{folder} holds no trained model (no {MANIFEST_NAME})",
                              hint="train first: mldock train", exit_code=4)
        path = str(folder)
    ml = clients.ml
    existing = _existing(ml, name, version)
    if existing is not None:
        owner = (existing.tags or {}).get(TAG_RUN)
        if owner not in (None, run_id):
            raise MldockError(f"model {name}:{version} in the workspace belongs to run {owner},"
                              f" not {run_id}",
                              hint="delete that model version ('az ml model archive') or rename"
                                   " the project")
        progress(f"model {name}:{version} is registered already")
        return _as_registered(existing)
    from azure.ai.ml.entities import Model

    entity = Model(name=name, version=version, type=CUSTOM_MODEL, path=path,
                   description=f"mldock run {run_id} of {project or name}",
                   tags=tags_for(project or name, "model", run_id=run_id, extra=tags))
    where = "the job's output" if path.startswith("azureml://") else "the workspace datastore"
    progress(f"registering model {name}:{version} from {where}")
    with translated(f"register the model of run {run_id}", resource=f"model {name}:{version}"):
        created = ml.models.create_or_update(entity)
    return _as_registered(created)


def _existing(ml: Any, name: str, version: str) -> Any | None:
    try:
        with translated(f"look up model {name}:{version}", resource=f"model {name}:{version}"):
            return ml.models.get(name=name, version=version)
    except NotFoundError:
        return None


def _as_registered(model: Any) -> RegisteredModel:
    return RegisteredModel(str(model.name), str(model.version), getattr(model, "id", None),
                           getattr(model, "path", None))
