"""TrainingContext built from each platform's environment (fake /opt/ml and /gcs in tmp_path)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from mldock.runtime import gcs
from mldock.runtime.context import build_context


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def sagemaker_tree(tmp_path):
    root = tmp_path / "opt_ml"
    config = root / "input" / "config"
    _write(config / "hyperparameters.json",
           json.dumps({"lr": "0.1", "epochs": "10", "sagemaker_program": "x.py"}))
    _write(config / "resourceconfig.json",
           json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2", "algo-3"]}))
    _write(config / "inputdataconfig.json", json.dumps({"train": {}, "validation": {}}))
    _write(root / "input" / "data" / "train" / "data.csv", "1,2\n")
    return root


def test_sagemaker(sagemaker_tree, tmp_path):
    env = {"MLDOCK_OPT_ML": str(sagemaker_tree), "TRAINING_JOB_NAME": "job-42",
           "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    ctx = build_context([], env)
    assert ctx.platform == "sagemaker"
    assert ctx.hyperparameters == {"lr": 0.1, "epochs": 10}
    assert ctx.param("lr") == 0.1 and ctx.param("missing", 7) == 7
    assert ctx.input_dir("train") == sagemaker_tree / "input" / "data" / "train"
    assert ctx.channels["validation"] == sagemaker_tree / "input" / "data" / "validation"
    # algo-2 is not the primary: its model goes to a scratch folder nobody uploads
    assert ctx.model_dir == tmp_path / "staging" / "model-rank1" and ctx.model_dir.is_dir()
    assert ctx.published_model_dir == sagemaker_tree / "model"
    assert ctx.output_dir == sagemaker_tree / "output" / "data" and ctx.output_dir.is_dir()
    assert ctx.checkpoint_dir == sagemaker_tree / "checkpoints" and ctx.checkpoint_dir.is_dir()
    assert ctx.job_id == "job-42" and ctx.run_id == "job-42"
    assert ctx.hosts == ["algo-1", "algo-2", "algo-3"]
    assert (ctx.current_host, ctx.rank, ctx.world_size) == ("algo-2", 1, 3)
    assert ctx.master_addr == "algo-1" and not ctx.is_primary and not ctx.is_master


def test_sagemaker_primary_writes_the_real_model_dir(sagemaker_tree):
    config = sagemaker_tree / "input" / "config" / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    ctx = build_context([], {"MLDOCK_OPT_ML": str(sagemaker_tree)})
    assert ctx.is_primary and ctx.rank == 0
    assert ctx.model_dir == ctx.published_model_dir == sagemaker_tree / "model"


def test_every_host_may_write_when_asked(sagemaker_tree):
    env = {"MLDOCK_OPT_ML": str(sagemaker_tree), "MLDOCK_MODEL_ON_EVERY_HOST": "1"}
    ctx = build_context([], env)
    assert not ctx.is_primary and ctx.model_dir == sagemaker_tree / "model"


def test_sagemaker_job_id_from_arn_and_run_id_override(sagemaker_tree):
    env = {"MLDOCK_OPT_ML": str(sagemaker_tree),
           "TRAINING_JOB_ARN": "arn:aws:sagemaker:eu-west-1:1:training-job/my-job",
           "MLDOCK_RUN_ID": "run-7"}
    ctx = build_context([], env)
    assert ctx.job_id == "my-job" and ctx.run_id == "run-7"


def test_vertex_with_gcs_mount_and_cluster_spec(tmp_path):
    mount = tmp_path / "gcs"
    _write(mount / "bkt" / "data" / "train" / "part-0.csv", "1\n")
    spec = {"cluster": {"workerpool0": ["cmle-0:2222"], "workerpool1": ["w-0:2222", "w-1:2222"]},
            "task": {"type": "workerpool1", "index": 1}}
    env = {"MLDOCK_GCS_ROOT": str(mount), "CLOUD_ML_JOB_ID": "123",
           "AIP_MODEL_DIR": "gs://bkt/base/model/", "AIP_CHECKPOINT_DIR": "gs://bkt/base/ckpt/",
           "AIP_TRAINING_DATA_URI": "gs://bkt/data/train/part-*.csv",
           "CLUSTER_SPEC": json.dumps(spec), "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    ctx = build_context(["--lr=0.5", "--input-extra=gs://bkt/data/train"], env)
    assert ctx.platform == "vertex" and ctx.job_id == "123"
    assert ctx.hyperparameters == {"lr": 0.5}
    # the mounted model folder is shared by every host: rank 2 writes to a scratch folder instead
    assert ctx.published_model_dir == mount / "bkt" / "base" / "model"
    assert ctx.model_dir == tmp_path / "staging" / "model-rank2"
    assert ctx.output_dir == mount / "bkt" / "base" / "output"
    assert ctx.checkpoint_dir == mount / "bkt" / "base" / "ckpt"
    assert ctx.input_dir("train") == mount / "bkt" / "data" / "train"
    assert ctx.input_dir("extra") == mount / "bkt" / "data" / "train"
    assert ctx.hosts == ["cmle-0", "w-0", "w-1"]
    assert (ctx.current_host, ctx.rank, ctx.world_size) == ("w-1", 2, 3)
    assert (ctx.master_addr, ctx.master_port) == ("cmle-0", 2222)
    assert ctx.uploads == []


def test_vertex_tf_config_chief_first(tmp_path):
    tf = {"cluster": {"worker": ["w0:1", "w1:1"], "chief": ["c0:1"]},
          "task": {"type": "chief", "index": 0}}
    env = {"TF_CONFIG": json.dumps(tf), "CLOUD_ML_JOB_ID": "9",
           "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    ctx = build_context([], env)
    assert ctx.hosts == ["c0", "w0", "w1"] and ctx.rank == 0 and ctx.is_master
    assert ctx.model_dir == tmp_path / "staging" / "model"


def test_vertex_unmounted_gcs_output_is_staged_for_upload(tmp_path):
    env = {"MLDOCK_GCS_ROOT": str(tmp_path / "nothing"), "AIP_MODEL_DIR": "gs://bkt/base/m/",
           "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    ctx = build_context([], env)
    assert ctx.model_dir == tmp_path / "staging" / "outputs" / "model"
    assert (ctx.model_dir, "gs://bkt/base/m/") in ctx.uploads


def test_vertex_non_primary_uploads_no_model(tmp_path):
    spec = {"cluster": {"workerpool0": ["c:1"], "workerpool1": ["w:1"]},
            "task": {"type": "workerpool1", "index": 0}}
    env = {"MLDOCK_GCS_ROOT": str(tmp_path / "nothing"), "AIP_MODEL_DIR": "gs://bkt/base/m/",
           "CLUSTER_SPEC": json.dumps(spec), "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    ctx = build_context([], env)
    assert not ctx.is_primary and ctx.model_dir == tmp_path / "staging" / "model-rank1"
    assert all(uri != "gs://bkt/base/m/" for _, uri in ctx.uploads)
    assert [uri for _, uri in ctx.uploads] == ["gs://bkt/base/output"]


def test_unmounted_gcs_input_without_credentials_says_what_to_do(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the metadata server is unreachable
    env = {"MLDOCK_GCS_ROOT": str(tmp_path / "nothing"), "GCE_METADATA_HOST": f"127.0.0.1:{port}",
           "CLOUD_ML_JOB_ID": "1", "AIP_TRAINING_DATA_URI": "gs://bkt/data/train.csv",
           "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    with pytest.raises(gcs.GcsError, match=r"metadata server .*STORAGE_EMULATOR_HOST"):
        build_context([], env)


def test_azureml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"AZUREML_RUN_ID": "azr-1", "MASTER_ADDR": "10.0.0.4", "MASTER_PORT": "6105",
           "WORLD_SIZE": "4", "NODE_RANK": "1", "RANK": "2", "LOCAL_RANK": "0",
           "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    data = _write(tmp_path / "mnt" / "train" / "d.csv", "1\n").parent
    ctx = build_context([f"--input-train={data}", "--model-dir", str(tmp_path / "out" / "m"),
                         "--epochs=3"], env)
    assert ctx.platform == "azureml" and ctx.job_id == "azr-1"
    assert ctx.hyperparameters == {"epochs": 3}
    assert ctx.input_dir("train") == data
    # rank 2 is not the primary: --model-dir is where rank 0 writes; this host gets a scratch dir
    assert ctx.published_model_dir == tmp_path / "out" / "m"
    assert ctx.model_dir == tmp_path / "staging" / "model-rank2" and ctx.model_dir.is_dir()
    assert ctx.output_dir == tmp_path / "outputs"
    assert (ctx.rank, ctx.world_size, ctx.master_addr, ctx.master_port) == (2, 4, "10.0.0.4",
                                                                            6105)
    assert not ctx.is_master


@pytest.mark.parametrize(("variables", "rank"), [
    ({"NODE_RANK": "1"}, 1), ({"RANK": "0", "NODE_RANK": "1"}, 0),
    ({"OMPI_COMM_WORLD_RANK": "3"}, 3), ({}, 0)])
def test_azureml_rank_without_master_addr(tmp_path, monkeypatch, variables, rank):
    monkeypatch.chdir(tmp_path)
    env = {"AZUREML_RUN_ID": "azr-2", "MLDOCK_STAGING_DIR": str(tmp_path / "s"), **variables}
    ctx = build_context([], env)
    assert ctx.rank == rank and ctx.is_primary == (rank == 0)
    assert (ctx.model_dir == tmp_path / "outputs" / "model") == (rank == 0)


def test_local(tmp_path):
    data = _write(tmp_path / "data" / "iris.csv", "1\n")
    env = {"MLDOCK_PLATFORM": "local", "MLDOCK_MODEL_DIR": str(tmp_path / "m"),
           "MLDOCK_OUTPUT_DIR": str(tmp_path / "o"), "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "c"),
           "MLDOCK_INPUT_TRAIN": str(data), "MLDOCK_HYPERPARAMETERS": '{"lr": 0.1, "n": 2}',
           "MLDOCK_RUN_ID": "r1"}
    ctx = build_context(["--n=5"], env)
    assert ctx.platform == "local" and ctx.run_id == "r1" and ctx.job_id.startswith("local-")
    assert ctx.hyperparameters == {"lr": 0.1, "n": 5}  # arguments override the JSON
    assert ctx.channels == {"train": data}
    assert ctx.input_dir("train") == data.parent  # a file channel: its folder
    assert all(p.is_dir() for p in (ctx.model_dir, ctx.output_dir, ctx.checkpoint_dir))
    assert ctx.hosts == [ctx.current_host] and ctx.world_size == 1 and ctx.is_master
    with pytest.raises(KeyError, match="channels: train"):
        ctx.input_dir("test")


def test_param_accepts_dash_or_underscore(tmp_path):
    ctx = build_context(["--learning-rate=0.2"], {"MLDOCK_PLATFORM": "local",
                                                 "MLDOCK_MODEL_DIR": str(tmp_path / "m"),
                                                 "MLDOCK_OUTPUT_DIR": str(tmp_path / "o"),
                                                 "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "c")})
    assert ctx.param("learning_rate") == 0.2 and ctx.param("learning-rate") == 0.2


def test_metrics_file_and_stdout(tmp_path, capsys):
    metrics = tmp_path / "metrics.jsonl"
    ctx = build_context([], {"MLDOCK_PLATFORM": "local", "MLDOCK_MODEL_DIR": str(tmp_path / "m"),
                             "MLDOCK_OUTPUT_DIR": str(tmp_path / "o"),
                             "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "c"),
                             "MLDOCK_METRICS_FILE": str(metrics)})
    ctx.log_metric("loss", 0.25, step=3)
    ctx.log_metrics({"acc": 1, "f1": 0.5})
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [(m["key"], m["value"], m["step"]) for m in lines] == \
        [("loss", 0.25, 3), ("acc", 1, None), ("f1", 0.5, None)]
    assert all(isinstance(m["timestamp"], float) for m in lines)
    out = capsys.readouterr().out.splitlines()
    assert out == ["mldock-metric loss=0.25 step=3", "mldock-metric acc=1", "mldock-metric f1=0.5"]
    with pytest.raises(ValueError, match="metric key must be"):
        ctx.log_metric("bad key", 1)
    ctx.close()
