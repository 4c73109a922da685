"""The ``/opt/ml`` trees of a local multi-host run (``mldock train --instances N``), without Docker.

Each host's tree is read back by the runtime's own SageMaker reader (``cluster.from_sagemaker``,
``context.build_context``), so a layout the runtime would misread fails here. The containers,
network, failure and Ctrl-C handling run on a real engine in ``tests/e2e/test_multihost.py``.
"""

from __future__ import annotations

import json

import pytest
from mldock.local.multihost import container_name, host_names, layout_hosts, train_hosts
from mldock.runtime.cluster import from_sagemaker
from mldock.runtime.context import build_context
from mldock.runtime.platform import SAGEMAKER


def test_host_names_are_sagemakers():
    assert host_names(3) == ["algo-1", "algo-2", "algo-3"]


def test_every_host_has_its_own_tree_naming_all_hosts_and_itself(tmp_path):
    hosts = host_names(3)
    trees = layout_hosts(tmp_path, {"epochs": 5, "name": "x"}, {"train": "/data"}, hosts)
    assert {host: tree.relative_to(tmp_path).as_posix() for host, tree in trees.items()} == {
        "algo-1": "algo-1", "algo-2": "algo-2", "algo-3": "algo-3"}
    for rank, host in enumerate(hosts):
        config = trees[host] / "input" / "config"
        cluster = from_sagemaker(config / "resourceconfig.json")
        assert (cluster.hosts, cluster.current_host, cluster.rank, cluster.world_size,
                cluster.master_addr) == (hosts, host, rank, 3, "algo-1")
        assert json.loads((config / "hyperparameters.json").read_text()) == {
            "epochs": "5", "name": "x"}
        assert json.loads((config / "inputdataconfig.json").read_text())["train"][
            "S3DistributionType"] == "FullyReplicated"
        for folder in ("model", "output/data", "checkpoints", "input/data/train"):
            assert (trees[host] / folder).is_dir(), (host, folder)


def test_the_runtime_reads_a_secondary_tree_as_rank_1(tmp_path):
    """Only the primary publishes: on algo-2 the model folder ctx sees is a scratch one."""
    trees = layout_hosts(tmp_path / "run", {"epochs": 2}, {"train": "/data"}, host_names(2))
    env = {"MLDOCK_OPT_ML": str(trees["algo-2"]), "TRAINING_JOB_NAME": "job",
           "MLDOCK_STAGING_DIR": str(tmp_path / "staging")}
    ctx = build_context((), env, SAGEMAKER)
    assert (ctx.rank, ctx.world_size, ctx.is_primary, ctx.current_host) == (1, 2, False, "algo-2")
    assert ctx.hyperparameters == {"epochs": 2}
    assert ctx.published_model_dir == trees["algo-2"] / "model"
    assert ctx.model_dir != ctx.published_model_dir
    primary = build_context((), {**env, "MLDOCK_OPT_ML": str(trees["algo-1"])}, SAGEMAKER)
    assert primary.is_primary and primary.model_dir == trees["algo-1"] / "model"


def test_the_primary_keeps_the_runs_container_name():
    """So a run whose mldock process died is judged by its primary (training.reconcile)."""
    hosts = host_names(2)
    assert [container_name("mldock-train-r1", h, hosts) for h in hosts] == [
        "mldock-train-r1", "mldock-train-r1-algo-2"]


def test_one_host_is_not_a_multi_host_run(tmp_path):
    from mldock.errors import MldockError
    from mldock.interfaces import TrainingJob

    with pytest.raises(MldockError, match="at least 2 hosts"):
        train_hosts(None, TrainingJob(run_id="r", image="i"), 1, root=tmp_path, base_name="b",
                    progress=print)
