"""The training entry point: resolve ``MLDOCK_TRAIN``, build the context, run, write the manifest.

Exit codes: 0 success, 1 the training function (or its module) raised, 2 bad usage or a bad
``MLDOCK_TRAIN`` reference, 128+signal (143 for SIGTERM) when stopped. On SageMaker a failure is
also written to ``/opt/ml/output/failure``, whose first 1024 characters become the job's
FailureReason, so the error line comes first and the traceback after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mldock.runtime import finish, gcs, refs
from mldock.runtime.context import TrainingContext, build_context, every_host_writes_model
from mldock.runtime.logs import log
from mldock.runtime.manifest import write_manifest
from mldock.runtime.names import ENV_PREDICTOR, ENV_TRAIN
from mldock.runtime.platform import SAGEMAKER, detect_training_platform, opt_ml

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _failure_file(platform: str, env: Mapping[str, str]) -> Path | None:
    return opt_ml(env) / "output" / "failure" if platform == SAGEMAKER else None


def _write_failure(path: Path | None, text: str) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        log(f"could not write the failure file {path}: {exc}")


def _report_exception(exc: BaseException, failure: Path | None) -> None:
    """Traceback to stderr; on SageMaker, summary line then traceback to the failure file."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(text)
    sys.stderr.flush()
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    _write_failure(failure, f"{summary}\n\n{text}")


def _install_stop_handler(ctx: TrainingContext) -> None:
    """On SIGTERM/SIGINT run the ``on_stop`` callbacks, then exit 128+signum without unwinding.

    ``os._exit`` is deliberate: raising inside user code could be swallowed by a broad ``except``
    and would print a traceback; metrics are already flushed line by line.
    """
    stopping = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        name = signal.Signals(signum).name
        callbacks = ctx.stop_callbacks
        log(f"{name} received: running {len(callbacks)} stop callback(s), then exiting")
        for callback in callbacks:
            try:
                callback()
            except BaseException as exc:  # noqa: BLE001 - keep running the other callbacks
                log(f"stop callback {getattr(callback, '__name__', callback)!r} failed: "
                    f"{type(exc).__name__}: {exc}")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                stream.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _discard_secondary_model(ctx: TrainingContext, env: Mapping[str, str]) -> None:
    """A non-primary host publishes no model: only the primary (rank 0) writes it.

    Its ``ctx.model_dir`` was a scratch folder (see ``context._primary_only_model``), so code that
    saves through ``ctx`` publishes nothing from this host. What is already in the platform's model
    folder is never deleted: the SageMaker SDK's local mode mounts *one* host folder as every
    host's ``/opt/ml/model`` (as Vertex and Azure share theirs), so those files may be the
    primary's model — deleting them lost it (seen with SDK v2 ``instance_count=2``).
    """
    if every_host_writes_model(env):
        log(f"training finished on rank {ctx.rank}; MLDOCK_MODEL_ON_EVERY_HOST is set, so this"
            " host's model folder is kept (rank 0 writes the manifest)")
        return
    log(f"training finished on rank {ctx.rank} ({ctx.current_host}); only the primary host"
        f" (rank 0) publishes the model, this host's model folder {ctx.model_dir} is discarded")


def run_training(argv: Sequence[str] = (), env: Mapping[str, str] | None = None) -> int:
    """Run the user's training function; returns the process exit code."""
    env = os.environ if env is None else env
    try:
        platform = detect_training_platform(env)
    except ValueError as exc:
        log(str(exc))
        return EXIT_USAGE
    failure = _failure_file(platform, env)

    try:
        train_fn = refs.resolve(env.get(ENV_TRAIN), ENV_TRAIN)
        if not callable(train_fn):
            raise refs.BadReference(f"{ENV_TRAIN}={env.get(ENV_TRAIN)!r} is not callable")
    except refs.BadReference as exc:
        log(str(exc))
        _write_failure(failure, str(exc))
        return EXIT_USAGE
    except BaseException as exc:  # noqa: BLE001 - user module failed to import
        _report_exception(exc, failure)
        return EXIT_FAILED

    try:
        ctx = build_context(argv, env, platform)
    except (ValueError, OSError, KeyError, gcs.GcsError) as exc:
        message = f"cannot prepare the training context on {platform}: {exc}"
        log(message)
        _write_failure(failure, message)
        return EXIT_USAGE

    holder = finish.hold(ctx.rank, ctx.world_size, env) if platform == SAGEMAKER else None
    try:
        return _train_and_publish(train_fn, ctx, env, platform, failure)
    finally:
        if holder is not None:
            holder.release()  # done or failed: the other hosts may exit now


def _train_and_publish(train_fn: Any, ctx: TrainingContext, env: Mapping[str, str],
                       platform: str, failure: Path | None) -> int:
    """Run ``train(ctx)``; on the primary write the manifest and upload, on others wait."""
    _install_stop_handler(ctx)
    log(f"training {env.get(ENV_TRAIN)} on {platform} (job {ctx.job_id}, run {ctx.run_id},"
        f" rank {ctx.rank}/{ctx.world_size})")
    try:
        train_fn(ctx)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            _report_exception(exc, failure)
            return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    except BaseException as exc:  # noqa: BLE001 - any failure of user code ends the job
        _report_exception(exc, failure)
        return EXIT_FAILED
    finally:
        ctx.close()

    if not ctx.is_primary:
        _discard_secondary_model(ctx, env)
        if platform == SAGEMAKER:
            finish.wait_for_primary(ctx.rank, ctx.world_size, ctx.master_addr, env)
        return EXIT_OK
    try:
        write_manifest(ctx.model_dir, predictor=env.get(ENV_PREDICTOR) or None,
                       run_id=ctx.run_id, extra={"platform": platform, "job_id": ctx.job_id})
        for local, uri in ctx.uploads:
            gcs.upload(local, uri, env)
    except Exception as exc:  # noqa: BLE001 - the model is unusable without these
        _report_exception(exc, failure)
        return EXIT_FAILED
    log(f"training finished; model in {ctx.model_dir}")
    return EXIT_OK
