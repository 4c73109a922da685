"""Entry point ``mlflow`` of mldock-mlflow: registers the MLflow tracker. Imports no MLflow.

Selected by ``[tracking] uri = "mlflow+http://HOST:PORT"`` (or ``mlflow+https``), or by
``[tracking] backend = "mlflow"`` with a plain ``http(s)://`` URI; options in ``[tracking.mlflow]``
(see :mod:`mldock_mlflow.config`). MLflow's client is imported by the factory, when a command first
needs the tracker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mldock.markers import hookimpl
from mldock.records import FactoryContext, TrackerRecord

from mldock_mlflow.uris import SCHEMES

if TYPE_CHECKING:  # pragma: no cover - the tracker imports MLflow: only the factory loads it
    from mldock_mlflow.tracker import MlflowTracker

MLDOCK_PLUGIN_API = 1  # the mldock plugin API this module is built for


EXAMPLE = """\
# Runs, metrics and models in an MLflow tracking server. Needs: pip install mldock-mlflow
[tracking]
uri = "mlflow+http://<host>:5000"

[tracking.mlflow]
experiment = "{project}"
# username = "env:MLFLOW_TRACKING_USERNAME"   # basic auth, read from the environment
# password = "env:MLFLOW_TRACKING_PASSWORD"
"""
"""What ``mldock config example mlflow`` prints."""

def make_tracker(context: FactoryContext) -> MlflowTracker:
    """Build the tracker for ``context.uri``; a URI it cannot use is a config error."""
    from mldock.errors import ConfigError

    from mldock_mlflow.uris import URI_HINT, TrackingUriError, http_uri

    try:
        http_uri(context.uri or "")
    except TrackingUriError as exc:
        raise ConfigError(context.config_file, "tracking.uri", str(exc), hint=URI_HINT) from None
    from mldock_mlflow.tracker import MlflowTracker

    return MlflowTracker(context.uri or "", context.options, project=context.project,
                         open_store=context.open_store)


@hookimpl
def mldock_trackers() -> list[TrackerRecord]:
    return [TrackerRecord(
        name="mlflow", summary="MLflow tracking server: runs, metrics, lineage, model registry",
        schemes=SCHEMES, factory=make_tracker, config_model="mldock_mlflow.config:MlflowOptions",
        capabilities=frozenset({"live-metrics", "artifacts", "concurrent-writers"}),
        example=EXAMPLE)]
