"""Conformance tests for :class:`mldock.interfaces.Tracker` backends.

Subclass :class:`TrackerContract`, set ``record`` and give a ``tracker`` fixture built through the
record's factory (an empty tracker is best; tests use unique project names so a shared server also
works). Capability flags come from the record; narrow one with a reason if you must. Override
:meth:`TrackerContract.reopen` to enable the durability test::

    class TestMyTracker(TrackerContract):
        record = registered_record("tracker", "mytracker")

        @pytest.fixture
        def tracker(self, tmp_path):
            t = self.record.build(FactoryContext(uri=f"my://{tmp_path}/runs"))
            yield t
            t.close()

        def reopen(self, tracker):
            return MyTracker(tracker.root)
"""

from __future__ import annotations

import math
import threading
import time
import uuid

import pytest

from mldock.errors import NotFoundError
from mldock.interfaces import ArtifactRef, HealthCheck, Lineage, Metric, RunStatus, Tracker
from mldock.testing._common import Capability, ContractBase, backend_label, require_capability


def _project() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


class TrackerContract(ContractBase):
    """The behaviour every tracker promises (see :class:`~mldock.interfaces.Tracker`).

    Capability flags, from the record: ``supports_artifacts`` (``artifacts``),
    ``supports_concurrency`` (``concurrent-writers``: threads logging at once through one tracker).
    Expected of every tracker unless narrowed: ``supports_typed_params`` (``typed-params``: params
    read back as int/float/bool/list, not strings), ``supports_nan_metrics`` (``nan-metrics``).
    """

    concern = "tracker"
    supports_artifacts = Capability("artifacts")
    supports_concurrency = Capability("concurrent-writers")
    supports_typed_params = Capability("typed-params", baseline=True)
    supports_nan_metrics = Capability("nan-metrics", baseline=True)

    @pytest.fixture
    def tracker(self) -> Tracker:
        """A working tracker. Override this fixture in your subclass."""
        raise NotImplementedError(f"{type(self).__name__} must define a `tracker` fixture")

    def reopen(self, tracker: Tracker) -> Tracker:
        """A second, independent tracker on the same data (a new connection or client).

        Override to enable :meth:`test_flushed_data_survives_a_new_instance`.
        """
        raise NotImplementedError

    # --- runs -----------------------------------------------------------------------------------
    def test_created_run_is_running(self, tracker: Tracker) -> None:
        """A new run reads back as ``running`` with its project, a start time and no end.

        Usually fails when the backend stores status in another vocabulary (e.g. RUNNING, active).
        """
        before = time.time()
        project = _project()
        run_id = tracker.create_run(project)
        run = tracker.get_run(run_id)
        assert isinstance(run_id, str) and run.id == run_id
        assert (run.project, run.status, run.ended_at) == (project, RunStatus.RUNNING, None)
        assert before - 5 <= run.started_at <= time.time() + 5

    def test_explicit_run_id_and_tags(self, tracker: Tracker) -> None:
        """create_run(run_id=…) uses that id, and its tags read back.

        Usually fails when the backend always generates ids (the host passes its own for lineage).
        """
        wanted = f"r{uuid.uuid4().hex[:12]}"
        run_id = tracker.create_run(_project(), tags={"team": "ml"}, run_id=wanted)
        assert run_id == wanted
        assert tracker.get_run(wanted).tags["team"] == "ml"

    def test_params_roundtrip(self, tracker: Tracker) -> None:
        """Params of several types read back as logged (as strings without typed params).

        Usually fails when params are JSON-encoded twice, or bools come back as 0/1.
        """
        params = {"lr": 0.01, "epochs": 3, "name": "rf", "shuffle": True, "layers": [64, 32]}
        run_id = tracker.create_run(_project())
        tracker.log_params(run_id, params)
        got = tracker.get_run(run_id).params
        if self.supports_typed_params:
            assert got == params
        else:
            assert {k: str(v) for k, v in got.items()} == {k: str(v) for k, v in params.items()}

    def test_tags_set_and_replaced(self, tracker: Tracker) -> None:
        """set_tags adds tags and replaces the value of an existing one.

        Usually fails when tags are appended as duplicates instead of upserted.
        """
        run_id = tracker.create_run(_project(), tags={"a": "1"})
        tracker.set_tags(run_id, {"a": "2", "b": "x"})
        tags = tracker.get_run(run_id).tags
        assert (tags["a"], tags["b"]) == ("2", "x")

    def test_lineage_roundtrip(self, tracker: Tracker) -> None:
        """Lineage (git, image, config, input hashes, platform) reads back as written.

        Usually fails when nested mappings (config, inputs) are flattened or stringified.
        """
        lineage = Lineage(git_commit="0" * 40, git_dirty=True, image="iris:abc",
                          image_id="sha256:" + "1" * 64, config={"project": {"name": "iris"}},
                          inputs={"train": {"uri": "data/iris.csv", "sha256": "2" * 64}},
                          platform="local", job_id="job-1")
        run_id = tracker.create_run(_project())
        tracker.set_lineage(run_id, lineage)
        assert tracker.get_run(run_id).lineage.to_dict() == lineage.to_dict()

    def test_artifacts_roundtrip(self, tracker: Tracker) -> None:
        """Artifacts attached to a run read back with key, uri, hash, size and kind, in order.

        Usually fails when only the URI is stored.
        """
        require_capability(self, "supports_artifacts")
        refs = [ArtifactRef("runs/x/model", "file:///s/runs/x/model", "a" * 64, 10, "tree"),
                ArtifactRef("runs/x/report.html", "file:///s/runs/x/report.html", "b" * 64, 3)]
        run_id = tracker.create_run(_project())
        for ref in refs:
            tracker.log_artifact(run_id, ref)
        assert tracker.get_run(run_id).artifacts == refs

    # --- metrics --------------------------------------------------------------------------------
    def test_metric_history_in_step_order(self, tracker: Tracker) -> None:
        """Every logged value is kept and metric_history returns them in step order.

        Usually fails when values are upserted per key (losing history) or returned by insert order.
        """
        run_id = tracker.create_run(_project())
        tracker.log_metrics(run_id, [Metric("loss", 0.5, 2, 1000.0),
                                     Metric("loss", 0.9, 0, 1000.0)])
        tracker.log_metrics(run_id, [Metric("loss", 0.7, 1, 1000.0),
                                     Metric("acc", 0.1, 0, 1000.0)])
        tracker.flush()
        history = tracker.metric_history(run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.7), (2, 0.5)]
        assert all(m.key == "loss" and m.timestamp == pytest.approx(1000.0) for m in history)

    def test_record_holds_latest_metric(self, tracker: Tracker) -> None:
        """RunRecord.metrics holds each key's value at its highest step.

        Usually fails when the first logged value, or the last inserted row, is reported.
        """
        run_id = tracker.create_run(_project())
        tracker.log_metrics(run_id, [Metric("loss", 0.2, 5), Metric("loss", 0.9, 1),
                                     Metric("acc", 0.8, 3)])
        tracker.flush()
        assert tracker.get_run(run_id).metrics == {"loss": 0.2, "acc": 0.8}

    def test_many_metrics_none_lost(self, tracker: Tracker) -> None:
        """1,000 values logged one call at a time are all there after flush.

        Usually fails when a batching buffer drops its tail (no flush on size or on demand).
        """
        run_id = tracker.create_run(_project())
        for step in range(1000):
            tracker.log_metrics(run_id, [Metric("loss", 1.0 / (step + 1), step)])
        tracker.flush()
        history = tracker.metric_history(run_id, "loss")
        assert [m.step for m in history] == list(range(1000))

    def test_nan_metric_kept(self, tracker: Tracker) -> None:
        """A NaN loss (a diverged run) is recorded as NaN, not dropped or turned into 0.

        Usually fails because SQL databases store NaN as NULL, or JSON refuses it.
        """
        require_capability(self, "supports_nan_metrics")
        run_id = tracker.create_run(_project())
        tracker.log_metrics(run_id, [Metric("loss", 1.0, 0), Metric("loss", math.nan, 1)])
        tracker.flush()
        values = [m.value for m in tracker.metric_history(run_id, "loss")]
        assert values[0] == 1.0 and math.isnan(values[1]) and len(values) == 2

    def test_threads_logging_at_once(self, tracker: Tracker) -> None:
        """Four threads logging 250 values each through one tracker lose none.

        Usually fails when the buffer or connection is shared without a lock.
        """
        require_capability(self, "supports_concurrency")
        run_id = tracker.create_run(_project())

        def work(offset: int) -> None:
            for i in range(250):
                tracker.log_metrics(run_id, [Metric("m", float(i), offset + i)])

        threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        tracker.flush()
        assert len(tracker.metric_history(run_id, "m")) == 1000

    # --- finishing and listing ------------------------------------------------------------------
    @pytest.mark.parametrize("status", [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED])
    def test_finish_sets_terminal_status(self, tracker: Tracker, status: RunStatus) -> None:
        """finish_run records the status, an end time and the error text.

        Usually fails when ``killed`` is mapped to ``failed``, or the error is not stored.
        """
        run_id = tracker.create_run(_project())
        error = None if status is RunStatus.FINISHED else "it broke: step 3"
        tracker.finish_run(run_id, status, error=error)
        run = tracker.get_run(run_id)
        assert (run.status, run.error) == (status, error)
        assert run.ended_at is not None and run.ended_at >= run.started_at

    def test_first_terminal_status_is_kept(self, tracker: Tracker) -> None:
        """Finishing an already-finished run changes nothing (the first terminal status wins).

        Usually fails when the host's "finished" after a signal overwrites ``killed``.
        """
        run_id = tracker.create_run(_project())
        tracker.finish_run(run_id, RunStatus.KILLED, error="SIGTERM")
        first = tracker.get_run(run_id)
        tracker.finish_run(run_id, RunStatus.FINISHED)
        again = tracker.get_run(run_id)
        assert (again.status, again.error, again.ended_at) == (RunStatus.KILLED, "SIGTERM",
                                                               first.ended_at)

    def test_list_runs_newest_first(self, tracker: Tracker) -> None:
        """list_runs(project) returns that project's runs newest first and honours ``limit``.

        Usually fails when runs are sorted by id or by insertion order of the backend.
        """
        project = _project()
        ids = []
        for _ in range(3):
            ids.append(tracker.create_run(project))
            time.sleep(0.01)
        tracker.create_run(_project())  # another project: must not be listed
        assert [r.id for r in tracker.list_runs(project)] == ids[::-1]
        assert [r.id for r in tracker.list_runs(project, limit=2)] == ids[:0:-1]

    def test_unknown_run_raises_not_found(self, tracker: Tracker) -> None:
        """get_run, log_params and finish_run of an unknown id raise NotFoundError naming it.

        Usually fails when the backend returns None, or creates the run implicitly.
        """
        missing = "zz" + uuid.uuid4().hex
        with pytest.raises(NotFoundError, match=missing):
            tracker.get_run(missing)
        with pytest.raises(NotFoundError):
            tracker.log_params(missing, {"a": 1})
        with pytest.raises(NotFoundError):
            tracker.finish_run(missing, RunStatus.FINISHED)

    def test_flushed_data_survives_a_new_instance(self, tracker: Tracker) -> None:
        """After flush() and close(), a second tracker on the same data sees the run and metrics.

        Usually fails when close() does not flush, or the buffer only lives in one object.
        """
        run_id = tracker.create_run(_project())
        tracker.log_params(run_id, {"lr": 0.1})
        tracker.log_metrics(run_id, [Metric("loss", 0.5, 0)])
        tracker.flush()
        try:
            other = self.reopen(tracker)
        except NotImplementedError:
            pytest.skip(f"{backend_label(self)} gives no reopen(tracker): override it to test"
                        " durability across instances")
        try:
            assert [m.value for m in other.metric_history(run_id, "loss")] == [0.5]
            tracker.log_metrics(run_id, [Metric("loss", 0.25, 1)])
            tracker.close()
            assert [m.value for m in other.metric_history(run_id, "loss")] == [0.5, 0.25]
            assert other.get_run(run_id).metrics == {"loss": 0.25}
        finally:
            other.close()

    def test_check_is_healthy(self, tracker: Tracker) -> None:
        """check() of a working tracker returns HealthChecks that all pass.

        Usually fails when the check needs a run or a project to exist.
        """
        checks = tracker.check()
        assert all(isinstance(c, HealthCheck) for c in checks)
        assert all(c.ok for c in checks), [c for c in checks if not c.ok]
