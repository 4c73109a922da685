"""mldock's conformance kit against a real MLflow server: the tracker contract and registration."""

from __future__ import annotations

from typing import ClassVar

import pytest
from mldock.testing import RegistrationContract, TrackerContract
from mldock_mlflow.tracker import MlflowTracker


class TestMlflowTracker(TrackerContract):
    """Every promise of the Tracker interface, on ``mlflow server`` with a SQLite store."""

    backend_name = "mlflow"
    supports_artifacts = True
    supports_concurrency = True
    supports_typed_params = True
    supports_nan_metrics = True

    @pytest.fixture
    def tracker(self, mlflow_server):
        tracker = MlflowTracker(mlflow_server.uri)
        yield tracker
        tracker.close()

    def reopen(self, tracker: MlflowTracker) -> MlflowTracker:
        return MlflowTracker(tracker.uri, tracker.options)


class TestRegistration(RegistrationContract):
    entry_point_name = "mlflow"
    distribution = "mldock-mlflow"
    expected: ClassVar[dict[str, list[str]]] = {"tracker": ["mlflow"]}
