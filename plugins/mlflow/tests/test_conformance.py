"""mldock's conformance kit against a real MLflow server: the tracker contract and registration.

The tracker is built through the ``mlflow`` record mldock registers (its factory, from
``[tracking] uri``), and the contract's capability flags come from that record's capabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from mldock.records import FactoryContext
from mldock.testing import RegistrationContract, TrackerContract, registered_record
from mldock_mlflow.tracker import MlflowTracker


class TestMlflowTracker(TrackerContract):
    """Every promise of the Tracker interface, on ``mlflow server`` with a SQLite store."""

    record = registered_record("tracker", "mlflow")

    def build(self, uri: str, project_dir: Path) -> MlflowTracker:
        """The tracker as ``mldock`` builds it for ``[tracking] uri = "mlflow+http://…"``."""
        tracker = self.record.build(FactoryContext(uri=uri, project_dir=project_dir))
        assert isinstance(tracker, MlflowTracker)
        return tracker

    @pytest.fixture
    def tracker(self, mlflow_server, tmp_path):
        tracker = self.build(mlflow_server.uri, tmp_path)
        yield tracker
        tracker.close()

    def reopen(self, tracker: MlflowTracker) -> MlflowTracker:
        """A second tracker built by the factory from the same ``[tracking] uri``."""
        return self.build(tracker.uri, Path.cwd())


class TestRegistration(RegistrationContract):
    entry_point_name = "mlflow"
    distribution = "mldock-mlflow"
    expected: ClassVar[dict[str, list[str]]] = {"tracker": ["mlflow"]}
