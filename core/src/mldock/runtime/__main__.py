"""``mldock-runtime [train|serve] [--key=value ...]``: the image's ENTRYPOINT.

SageMaker runs ``IMAGE train`` / ``IMAGE serve``; Vertex AI and Azure ML may pass only ``--k=v``
arguments and SageMaker SDK 3.x local mode passes nothing at all, so the image has no ``CMD``
and, without a command word, the environment decides
(:func:`mldock.runtime.platform.is_training_environment`): a training job trains, everything
else (including a bare ``docker run IMAGE``) serves.

``serve`` given explicitly inside a SageMaker *training* environment (``resourceconfig.json``
present) with an empty ``/opt/ml/model`` is refused with exit code 2: it would serve a model
that does not exist, while SageMaker waits for a training job to finish.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence

from mldock.runtime.platform import is_training_environment, opt_ml, sagemaker_training_evidence

USAGE = """\
usage: mldock-runtime [train|serve] [--key=value ...]

  train   run MLDOCK_TRAIN (module:function) with a TrainingContext, then write
          mldock-model.json into the model directory. --k=v arguments are hyperparameters;
          --input-<channel>=PATH, --model-dir=, --output-dir=, --checkpoint-dir= name folders.
  serve   answer SageMaker, Vertex AI, Azure ML and Open Inference Protocol v2 routes on one
          port (default 8080) with the predictor named by MLDOCK_PREDICTOR.

Without a command: train inside a training job (SageMaker /opt/ml/input/config,
TRAINING_JOB_NAME; Vertex CLOUD_ML_JOB_ID, CLUSTER_SPEC, AIP_MODEL_DIR; Azure AZUREML_RUN_ID),
serve otherwise.
Exit codes: 0 ok, 1 training failed, 2 bad usage or configuration, 3 the model failed to load
(after MLDOCK_LOAD_FAILURE_GRACE seconds), 143 stopped by SIGTERM.
"""


def default_command(env: Mapping[str, str]) -> str:
    """``train`` in a training environment, else ``serve``."""
    return "train" if is_training_environment(env) else "serve"


def _serve_refused(env: Mapping[str, str]) -> str | None:
    """Why an explicit ``serve`` must not run here, or None."""
    evidence = sagemaker_training_evidence(env)
    if evidence is None or not is_training_environment(env):
        return None
    model_dir = opt_ml(env) / "model"
    if model_dir.is_dir() and any(model_dir.iterdir()):
        return None  # a model to serve is there: not worth refusing on a stray config file
    return (f"'serve' was requested inside a SageMaker training job ({evidence} is present):"
            " a training job must train. Start the container with 'train' or with no command"
            " (an image built by mldock has no CMD, so the environment decides)")


def run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = list(argv)
    if args and args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    explicit = bool(args) and not args[0].startswith("-")
    command = args.pop(0) if explicit else default_command(env)
    if command == "train":
        from mldock.runtime.train import run_training

        return run_training(args, env)
    if command == "serve":
        refused = _serve_refused(env) if explicit else None
        if refused:
            sys.stderr.write(f"mldock-runtime: {refused}\n")
            return 2
        from mldock.runtime.server import serve

        return serve(args, env, serve_argument=explicit)
    sys.stderr.write(f"mldock-runtime: unknown command {command!r}\n{USAGE}")
    return 2


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``mldock-runtime``); exits with :func:`run`'s code.

    After serving, the process ends with ``os._exit``: the model-loading thread may still be
    inside an import when SIGTERM arrives, and interpreter shutdown around a busy daemon thread
    can abort noisily. Training exits normally so user ``atexit`` hooks (trackers) still flush.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    code = run(args)
    if (args[0] if args and not args[0].startswith("-") else default_command(os.environ)) \
            == "serve":
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
