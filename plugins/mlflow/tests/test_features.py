"""What the MLflow tracker adds beyond the contract, checked through MLflow's own client:
lineage as mldock.* tags, artifact upload, model registration, id prefixes, shared experiments,
and the config path from mldock.toml to a working tracker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from mldock.errors import ConfigError, UsageError
from mldock.interfaces import ArtifactRef, Lineage, Metric, RunStatus
from mldock.local.storage import LocalArtifactStore
from mldock_mlflow.config import MlflowOptions
from mldock_mlflow.tracker import MlflowTracker
from mlflow.tracking import MlflowClient


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tracker(mlflow_server):
    tracker = MlflowTracker(mlflow_server.uri, open_store=LocalArtifactStore.from_uri)
    yield tracker
    tracker.close()


@pytest.fixture
def client(mlflow_server) -> MlflowClient:
    return MlflowClient(mlflow_server.url)


def _model_tree(root: Path) -> Path:
    model = root / "model"
    (model / "sub").mkdir(parents=True, exist_ok=True)
    (model / "model.joblib").write_bytes(b"\x00model bytes\xff" * 100)
    (model / "mldock-model.json").write_text('{"format": 1}')
    (model / "sub" / "vocab.txt").write_text("a\nb\n")
    return model


def test_lineage_is_mldock_tags_in_mlflow(tracker, client):
    project = _name("lineage")
    run_id = tracker.create_run(project, tags={"mldock.platform": "local"})
    lineage = Lineage(git_commit="a" * 40, git_dirty=False, image="iris:0123", image_id="sha256:"
                      + "b" * 64, image_digest="reg/iris@sha256:" + "c" * 64,
                      config={"project": {"name": project}},
                      inputs={"train": {"uri": "data/iris.csv", "sha256": "d" * 64}},
                      platform="local", job_id="mldock-train-x")
    tracker.set_lineage(run_id, lineage)
    tags = client.get_run(run_id).data.tags
    assert tags["mldock.project"] == project
    assert tags["mldock.git_commit"] == "a" * 40 and tags["mldock.git_dirty"] == "false"
    assert tags["mldock.image"] == "iris:0123" and tags["mldock.image_id"].startswith("sha256:b")
    assert tags["mldock.image_digest"].startswith("reg/iris@sha256:c")
    assert tags["mldock.input.train.uri"] == "data/iris.csv"
    assert tags["mldock.input.train.sha256"] == "d" * 64
    assert tags["mldock.platform"] == "local" and tags["mldock.job_id"] == "mldock-train-x"
    assert json.loads(tags["mldock.config"]) == {"project": {"name": project}}
    # replacing the lineage removes what the new one no longer has
    tracker.set_lineage(run_id, Lineage(platform="local"))
    tags = client.get_run(run_id).data.tags
    assert "mldock.git_commit" not in tags and "mldock.input.train.uri" not in tags
    record = tracker.get_run(run_id)
    assert record.lineage.to_dict() == Lineage(platform="local").to_dict()
    assert record.tags == {"mldock.platform": "local"}  # bookkeeping tags are not shown


def test_config_too_big_for_a_tag_is_a_json_artifact(tracker, client):
    config = {"hyperparameters": {f"p{i}": "x" * 50 for i in range(400)}}  # ~24 KB of JSON
    run_id = tracker.create_run(_name("bigconfig"))
    tracker.set_lineage(run_id, Lineage(config=config, platform="local"))
    tags = client.get_run(run_id).data.tags
    assert "mldock.config" not in tags and tags["mldock.config_artifact"] == "mldock/config.json"
    assert [f.path for f in client.list_artifacts(run_id, "mldock")] == ["mldock/config.json"]
    assert tracker.get_run(run_id).lineage.config == config


def test_model_tree_in_mldocks_store_is_uploaded(tracker, client, tmp_path):
    """The ArtifactRef core logs points into its content-addressed store: the files still arrive."""
    store = LocalArtifactStore(tmp_path / "store")
    run_id = tracker.create_run(_name("upload"))
    ref = store.put_tree(_model_tree(tmp_path), f"runs/{run_id}/model")
    assert not Path(ref.uri[len("file://"):]).is_dir()  # only a reference lives at that URI
    tracker.log_artifact(run_id, ref)
    listed = {f.path for f in client.list_artifacts(run_id, "model")}
    assert listed == {"model/model.joblib", "model/mldock-model.json", "model/sub"}
    assert [f.path for f in client.list_artifacts(run_id, "model/sub")] == ["model/sub/vocab.txt"]
    downloaded = Path(client.download_artifacts(run_id, "model/model.joblib", str(tmp_path)))
    assert downloaded.read_bytes() == b"\x00model bytes\xff" * 100
    assert tracker.get_run(run_id).artifacts == [ref]
    assert client.get_run(run_id).data.tags["mldock.model_path"] == "model"


def test_plain_folder_and_single_file_are_uploaded(tracker, client, tmp_path):
    run_id = tracker.create_run(_name("upload"))
    report = tmp_path / "report-v1.html"
    report.write_text("<p>ok</p>")
    tracker.log_artifact(run_id, ArtifactRef("reports/summary.html", report.as_uri(), "0" * 64, 9))
    folder = _model_tree(tmp_path / "plain")
    tracker.log_artifact(run_id, ArtifactRef("exports/model", folder.as_uri(), "1" * 64, 10,
                                             "tree"))
    tracker.log_artifact(run_id, ArtifactRef("elsewhere", "s3://bucket/key", "2" * 64, 1))
    assert [f.path for f in client.list_artifacts(run_id, "reports")] == ["reports/summary.html"]
    assert "exports/model/model.joblib" in {f.path for f in client.list_artifacts(
        run_id, "exports/model")}
    assert [a.key for a in tracker.get_run(run_id).artifacts] == [
        "reports/summary.html", "exports/model", "elsewhere"]


def test_artifact_keys_mlflow_cannot_name_still_round_trip(tracker, client, tmp_path):
    """A key with characters MLflow refuses in tag names is recorded under a hashed tag name."""
    source = tmp_path / "notes.txt"
    source.write_text("n")
    ref = ArtifactRef("runs/x/notes+v2 (final).txt", source.as_uri(), "3" * 64, 1)
    run_id = tracker.create_run(_name("keys"))
    tracker.log_artifact(run_id, ref)
    names = [k for k in client.get_run(run_id).data.tags if k.startswith("mldock.artifact.")]
    assert len(names) == 1 and len(names[0]) == len("mldock.artifact.") + 32
    assert tracker.get_run(run_id).artifacts == [ref]
    assert [f.path for f in client.list_artifacts(run_id)] == ["notes+v2 (final).txt"]


def test_finished_run_registers_its_model(mlflow_server, client, tmp_path):
    name = _name("iris-model")
    tracker = MlflowTracker(mlflow_server.uri, MlflowOptions(register_model=name),
                            open_store=LocalArtifactStore.from_uri)
    store = LocalArtifactStore(tmp_path / "store")
    versions = []
    for _ in range(2):
        run_id = tracker.create_run(_name("registry"))
        tracker.log_artifact(run_id, store.put_tree(_model_tree(tmp_path), f"runs/{run_id}/model"))
        tracker.finish_run(run_id, RunStatus.FINISHED)
        versions.append(run_id)
    failed = tracker.create_run(_name("registry"))
    tracker.log_artifact(failed, store.put_tree(_model_tree(tmp_path), f"runs/{failed}/model"))
    tracker.finish_run(failed, RunStatus.FAILED, error="boom")
    tracker.close()
    found = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    assert [(v.version, v.run_id, v.source) for v in found] == [
        ("1", versions[0], f"runs:/{versions[0]}/model"),
        ("2", versions[1], f"runs:/{versions[1]}/model")]
    assert client.get_run(versions[1]).data.tags["mldock.registered_model"] == f"{name}/2"


def test_run_ids_resolve_by_prefix(tracker):
    run_id = tracker.create_run(_name("prefix"))
    chosen = tracker.create_run(_name("prefix"), run_id=f"r{uuid.uuid4().hex[:12]}")
    other = MlflowTracker(tracker.uri)  # no cache: resolved through the server
    try:
        assert other.get_run(run_id[:10]).id == run_id
        assert other.get_run(chosen[:9]).id == chosen
        assert other.mlflow_run_id(chosen) != chosen
        with pytest.raises(UsageError, match="already exists"):
            other.create_run(_name("prefix"), run_id=chosen)
    finally:
        other.close()


def test_shared_experiment_lists_only_its_projects_runs(mlflow_server, client):
    experiment = _name("shared")
    tracker = MlflowTracker(mlflow_server.uri, MlflowOptions(experiment=experiment))
    a = tracker.create_run("proj-a")
    b = tracker.create_run("proj-b")
    assert [r.id for r in tracker.list_runs("proj-a")] == [a]
    assert [r.id for r in tracker.list_runs("proj-b")] == [b]
    assert client.get_run(a).info.experiment_id == client.get_run(b).info.experiment_id
    assert {r.id for r in tracker.list_runs(None, limit=500)} >= {a, b}
    tracker.close()


def test_runs_logged_by_plain_mlflow_are_listed(tracker, client):
    """A run someone logged with mlflow itself, in the project's experiment, reads back."""
    project = _name("plain")
    experiment_id = client.create_experiment(project)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.log_metric(run.info.run_id, "rmse", 0.25, step=3)
    client.set_terminated(run.info.run_id)
    [record] = tracker.list_runs(project)
    assert (record.id, record.project, record.status) == (run.info.run_id, project,
                                                         RunStatus.FINISHED)
    assert record.params == {"alpha": 0.5} and record.metrics == {"rmse": 0.25}


def test_string_params_that_look_like_json_stay_strings(tracker):
    run_id = tracker.create_run(_name("params"))
    tracker.log_params(run_id, {"version": "3", "flag": "true", "n": 3, "name": "rf"})
    tracker.log_params(run_id, {"quoted": '"x"'})
    assert tracker.get_run(run_id).params == {"version": "3", "flag": "true", "n": 3,
                                              "name": "rf", "quoted": '"x"'}


def test_error_text_keeps_its_tail(tracker, client):
    run_id = tracker.create_run(_name("error"))
    error = "Traceback\n" + "x" * 10_000 + "\nValueError: the last line"
    tracker.finish_run(run_id, RunStatus.FAILED, error=error)
    assert client.get_run(run_id).info.status == "FAILED"
    stored = tracker.get_run(run_id).error
    assert stored.endswith("ValueError: the last line") and len(stored) <= 8000


def test_container_environment_points_at_the_same_run(tracker, mlflow_server):
    run_id = tracker.create_run("iris")
    env = tracker.container_environment(run_id, project="iris")
    assert env == {"MLFLOW_TRACKING_URI": f"http://host.docker.internal:{mlflow_server.port}",
                   "MLFLOW_EXPERIMENT_NAME": "iris", "MLFLOW_RUN_ID": run_id}
    assert tracker.container_extra_hosts() == {"host.docker.internal": "host-gateway"}


def test_doctor_checks(mlflow_server):
    experiment = _name("doctor")
    tracker = MlflowTracker(mlflow_server.uri, MlflowOptions(experiment=experiment))
    checks = tracker.check()
    assert [(c.name, c.ok) for c in checks] == [("mlflow server", True),
                                                ("mlflow credentials", True),
                                                ("mlflow experiment", True)]
    assert "will be created" in checks[2].detail
    tracker.close()


# --- from mldock.toml to a tracker ----------------------------------------------------------


def _project(tmp_path: Path, tracking: str) -> Path:
    (tmp_path / "mldock.toml").write_text(
        '[project]\nname = "iris"\ntrain = "iris.train:train"\npredictor = "iris.predict:P"\n'
        + tracking)
    return tmp_path


@pytest.mark.parametrize("tracking", [
    '[tracking]\nuri = "{uri}"\n[tracking.mlflow]\nexperiment = "{exp}"\nrequest_timeout = 10\n',
    '[tracking]\nbackend = "mlflow"\nuri = "{url}"\n[tracking.mlflow]\nexperiment = "{exp}"\n',
])
def test_session_builds_the_tracker_from_the_config(tmp_path, mlflow_server, tracking):
    from mldock.config import load_config
    from mldock.host import get_host
    from mldock.session import Session

    experiment = _name("session")
    path = _project(tmp_path, tracking.format(uri=mlflow_server.uri, url=mlflow_server.url,
                                              exp=experiment)) / "mldock.toml"
    session = Session(load_config(path=path, registry=get_host().registry), get_host().registry)
    tracker = session.tracker
    assert isinstance(tracker, MlflowTracker) and tracker.url == mlflow_server.url
    run_id = tracker.create_run(session.project)
    tracker.log_metrics(run_id, [Metric("loss", 0.1, 0)])
    session.close()
    assert MlflowClient(mlflow_server.url).get_experiment_by_name(experiment) is not None
    assert MlflowClient(mlflow_server.url).get_run(run_id).data.metrics == {"loss": 0.1}


def test_unknown_option_and_literal_password_are_config_errors(tmp_path):
    from mldock.config import load_config
    from mldock.host import get_host

    path = _project(tmp_path, '[tracking]\nuri = "mlflow+http://127.0.0.1:5000"\n'
                              '[tracking.mlflow]\nexperimnt = "x"\n') / "mldock.toml"
    with pytest.raises(ConfigError, match=r"tracking\.mlflow\.experimnt: unknown key"):
        load_config(path=path, registry=get_host().registry)
    path.write_text(path.read_text().replace('experimnt = "x"', 'password = "hunter2"'))
    with pytest.raises(ConfigError, match=r'tracking\.mlflow\.password: .*"env:NAME"'):
        load_config(path=path, registry=get_host().registry)
