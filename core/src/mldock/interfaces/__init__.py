"""The four interfaces every backend implements: build, storage, tracking, deploy.

Core code talks only to these classes; plugins subclass them. Each interface lists the capability
flags its records may declare, and :mod:`mldock.testing` holds one contract test class per
interface.
"""

from mldock.interfaces.builder import Builder, BuildRequest, BuildResult, PushResult
from mldock.interfaces.common import HealthCheck, ProgressSink, null_progress
from mldock.interfaces.deploy import (
    BatchRequest,
    BatchResult,
    Deployer,
    Deployment,
    DeployRequest,
    MetricsSink,
    Prediction,
    RegistryTarget,
    TrainingJob,
    TrainingResult,
    TrialResult,
    TrialSink,
    TuneRequest,
    TuneResult,
    TuningSupport,
)
from mldock.interfaces.storage import ArtifactRef, ArtifactStore
from mldock.interfaces.tracking import (
    Lineage,
    Metric,
    RunRecord,
    RunStatus,
    Tracker,
    terminal_status,
)

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "BatchRequest",
    "BatchResult",
    "BuildRequest",
    "BuildResult",
    "Builder",
    "DeployRequest",
    "Deployer",
    "Deployment",
    "HealthCheck",
    "Lineage",
    "Metric",
    "MetricsSink",
    "Prediction",
    "ProgressSink",
    "PushResult",
    "RegistryTarget",
    "RunRecord",
    "RunStatus",
    "Tracker",
    "TrainingJob",
    "TrainingResult",
    "TrialResult",
    "TrialSink",
    "TuneRequest",
    "TuneResult",
    "TuningSupport",
    "null_progress",
    "terminal_status",
]
