"""Register a finished run's model in MLflow's registry (``[tracking.mlflow] register_model``).

A new version of the registered model (created if missing) points at ``runs:/<run>/model``, so the
MLflow UI links the version to the run that trained it. A registration failure does not undo the
run: training succeeded and the model is stored, so it is reported as a warning (and a tag) instead
of failing the command.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from mldock.errors import MldockError
from mlflow.exceptions import MlflowException

from mldock_mlflow import encoding as enc
from mldock_mlflow.errors import translate

if TYPE_CHECKING:  # pragma: no cover
    from mldock_mlflow.tracker import MlflowTracker


def register(client: Any, name: str, run_id: str, model_path: str) -> Any:
    """Create ``name`` if needed and a version of it from ``runs:/run_id/model_path``."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            client.create_registered_model(
                name, description="Registered by mldock from the runs that trained it.")
        except MlflowException as again:
            if again.error_code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile
                raise
    return client.create_model_version(name, f"runs:/{run_id}/{model_path}", run_id=run_id,
                                       tags={"mldock.source": "mldock"}, await_creation_for=0)


def register_quietly(tracker: MlflowTracker, run_id: str, model_path: str) -> str | None:
    """Register the run's model; on failure warn on stderr and tag the run. ``name/version``."""
    name = tracker.options.register_model
    if not name:
        return None
    try:
        try:
            version = register(tracker.client, name, run_id, model_path)
        except (MlflowException, OSError) as exc:
            raise translate(exc, url=tracker.url, user=tracker.user,
                            action=f"registering the model of run {run_id} as {name!r}") from None
    except MldockError as exc:
        print(f"warning: {exc}", file=sys.stderr)
        with contextlib.suppress(MlflowException, OSError):
            tracker.client.set_tag(run_id, enc.REGISTERED_TAG,
                                   f"failed: {enc.tail(exc.message, 500)}")
        return None
    label = f"{name}/{version.version}"
    tracker.client.set_tag(run_id, enc.REGISTERED_TAG, label)
    return label
