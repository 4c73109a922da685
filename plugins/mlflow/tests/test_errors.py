"""Each failure a user can meet is one clear line naming the server and what to do, for real."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid

import pytest
from mldock.errors import BackendUnavailableError, ConfigError, MldockError, NotFoundError
from mldock.interfaces import Metric, RunStatus
from mldock.records import FactoryContext
from mldock_mlflow.config import MlflowOptions
from mldock_mlflow.errors import ExperimentDeletedError, MlflowAuthError
from mldock_mlflow.plugin import make_tracker
from mldock_mlflow.tracker import MlflowTracker
from mlflow.tracking import MlflowClient


def _create_user(server, username: str, password: str) -> None:
    """Create a user through the basic-auth app's REST API, as the admin."""
    token = base64.b64encode(f"{server.admin_user}:{server.admin_password}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/api/2.0/mlflow/users/create", method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- unreachable --------------------------------------------------------------------------------


def test_closed_port_is_backend_unavailable_quickly(unused_port):
    url = f"mlflow+http://127.0.0.1:{unused_port}"  # nothing listens there
    tracker = MlflowTracker(url)
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        tracker.create_run("iris")
    assert time.monotonic() - start < 5
    error = info.value
    assert error.exit_code == 3 and "\n" not in str(error)
    assert error.message.startswith(f"MLflow server http://127.0.0.1:{url.rsplit(':', 1)[1]}"
                                    " is not reachable")
    assert "mlflow server" in error.hint and "[tracking] uri" in error.hint
    [check] = tracker.check()
    assert not check.ok and "not reachable" in check.detail
    tracker.close()


def test_server_gone_while_metrics_wait_is_reported_by_flush(mlflow_server, unused_port):
    """Metrics queued for a server that went away: flush raises the unreachable error."""
    tracker = MlflowTracker(mlflow_server.uri, MlflowOptions(request_timeout=2, max_retries=0))
    run_id = tracker.create_run(_name("gone"))
    tracker.url = f"http://127.0.0.1:{unused_port}"  # what the sender sees if the server dies
    from mlflow.tracking import MlflowClient as Client

    tracker.client = Client(tracker.url)
    tracker.log_metrics(run_id, [Metric("loss", 1.0, 0)])
    with pytest.raises(BackendUnavailableError, match="is not reachable"):
        tracker.flush()
    tracker.client = Client(mlflow_server.url)  # the server is back: the kept values go through
    tracker.flush()
    assert [m.value for m in tracker.metric_history(run_id, "loss")] == [1.0]
    tracker.close()


# --- experiments and runs -----------------------------------------------------------------------


def test_deleted_experiment_is_a_clear_error(mlflow_server):
    project = _name("deleted")
    client = MlflowClient(mlflow_server.url)
    client.delete_experiment(client.create_experiment(project))
    tracker = MlflowTracker(mlflow_server.uri)
    with pytest.raises(ExperimentDeletedError) as info:
        tracker.create_run(project)
    assert info.value.message == (f"MLflow experiment {project!r} on {mlflow_server.url} is"
                                  " deleted")
    assert "restore it in the MLflow UI or choose another experiment name" in info.value.hint
    with pytest.raises(ExperimentDeletedError):
        tracker.list_runs(project)
    tracker.close()


def test_experiment_deleted_under_a_running_tracker(mlflow_server):
    """The experiment is deleted after the tracker cached its id: the next run says so."""
    project = _name("deleted-later")
    tracker = MlflowTracker(mlflow_server.uri)
    first = tracker.create_run(project)
    client = MlflowClient(mlflow_server.url)
    client.delete_experiment(client.get_experiment_by_name(project).experiment_id)
    with pytest.raises(ExperimentDeletedError, match=f"experiment {project!r} .* is deleted"):
        tracker.create_run(project)
    assert first
    tracker.close()


def test_unknown_run_names_the_server(mlflow_server):
    tracker = MlflowTracker(mlflow_server.uri)
    with pytest.raises(NotFoundError, match=f"no run 'nope' on MLflow server {mlflow_server.url}"):
        tracker.get_run("nope")
    tracker.close()


def test_invalid_metric_name_is_refused_at_once(mlflow_server):
    tracker = MlflowTracker(mlflow_server.uri)
    run_id = tracker.create_run(_name("names"))
    with pytest.raises(MldockError, match="invalid metric name 'acc@1'"):
        tracker.log_metrics(run_id, [Metric("acc@1", 0.5, 0)])
    tracker.finish_run(run_id, RunStatus.FINISHED)
    tracker.close()


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["sqlite:///.mldock/runs.db", "mlflow+http://", "ftp://host"])
def test_unusable_uri_is_a_config_error(uri):
    with pytest.raises(ConfigError) as info:
        make_tracker(FactoryContext(uri=uri, options=MlflowOptions()))
    assert info.value.key == "tracking.uri" and "mlflow+http" in info.value.hint


def test_password_variable_not_set_is_named(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLDOCK_TEST_USER", "someone")
    monkeypatch.delenv("MLDOCK_TEST_NO_SUCH_PW", raising=False)
    with pytest.raises(MldockError, match="environment variable MLDOCK_TEST_NO_SUCH_PW is not set"):
        MlflowTracker(mlflow_server.uri, MlflowOptions.model_validate(
            {"username": "env:MLDOCK_TEST_USER", "password": "env:MLDOCK_TEST_NO_SUCH_PW"}))


def test_secret_written_into_the_config_is_refused():
    with pytest.raises(ValueError, match="never the value itself"):
        MlflowOptions.model_validate({"password": "hunter2"})


# --- authentication (MLflow's basic-auth app) ---------------------------------------------------


def test_auth_required_without_credentials(mlflow_auth_server):
    tracker = MlflowTracker(mlflow_auth_server.uri)
    with pytest.raises(MlflowAuthError) as info:
        tracker.create_run(_name("auth"))
    error = info.value
    assert error.message.startswith(f"MLflow server {mlflow_auth_server.url} requires"
                                    " authentication (HTTP 401)")
    assert "MLFLOW_TRACKING_USERNAME" in error.hint and "MLFLOW_TRACKING_PASSWORD" in error.hint
    assert '[tracking.mlflow] username = "env:NAME"' in error.hint
    checks = tracker.check()
    assert checks[0].ok and not checks[1].ok and "HTTP 401" in checks[1].detail
    tracker.close()


def test_wrong_password_names_the_user_never_the_password(mlflow_auth_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_auth_server.admin_user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    tracker = MlflowTracker(mlflow_auth_server.uri)
    with pytest.raises(MlflowAuthError) as info:
        tracker.list_runs(_name("auth"))
    user = mlflow_auth_server.admin_user
    assert f"rejected the credentials of user {user!r} (HTTP 401)" in info.value.message
    assert "not-the-password" not in str(info.value)
    tracker.close()


def test_credentials_from_the_environment_work(mlflow_auth_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_auth_server.admin_user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_auth_server.admin_password)
    tracker = MlflowTracker(mlflow_auth_server.uri)
    run_id = tracker.create_run(_name("auth"))
    tracker.log_metrics(run_id, [Metric("loss", 0.5, 0)])
    tracker.finish_run(run_id, RunStatus.FINISHED)
    assert tracker.get_run(run_id).metrics == {"loss": 0.5}
    assert all(check.ok for check in tracker.check())
    tracker.close()


def test_credentials_named_in_the_config_work(mlflow_auth_server, monkeypatch):
    monkeypatch.setenv("MLDOCK_TEST_MLFLOW_USER", mlflow_auth_server.admin_user)
    monkeypatch.setenv("MLDOCK_TEST_MLFLOW_PW", mlflow_auth_server.admin_password)
    options = MlflowOptions.model_validate({"username": "env:MLDOCK_TEST_MLFLOW_USER",
                                            "password": "env:MLDOCK_TEST_MLFLOW_PW"})
    tracker = MlflowTracker(mlflow_auth_server.uri, options)
    run_id = tracker.create_run(_name("auth"))
    tracker.finish_run(run_id, RunStatus.FINISHED)
    assert tracker.get_run(run_id).status is RunStatus.FINISHED
    tracker.close()


def test_permission_denied_names_the_user(mlflow_auth_server, monkeypatch):
    """A user with the default READ permission may not create runs: HTTP 403, one line."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_auth_server.admin_user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_auth_server.admin_password)
    project = _name("readonly")
    MlflowClient(mlflow_auth_server.url).create_experiment(project)
    reader = _name("reader")
    _create_user(mlflow_auth_server, reader, "reader-pw-123456")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", reader)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "reader-pw-123456")
    tracker = MlflowTracker(mlflow_auth_server.uri)
    with pytest.raises(MlflowAuthError) as info:
        tracker.create_run(project)
    assert f"denied creating a run in experiment {project!r} to user {reader!r} (HTTP 403)" in (
        info.value.message)
    assert "EDIT permission" in info.value.hint
    tracker.close()
