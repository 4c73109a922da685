"""``mldock-runtime [train|serve] [--key=value ...]``: the image's ENTRYPOINT.

SageMaker runs ``IMAGE train`` / ``IMAGE serve``; Vertex AI and Azure ML may pass only ``--k=v``
arguments, so without a command word a training job is recognised by its environment
(``TRAINING_JOB_ARN``, ``CLOUD_ML_JOB_ID``, ``CLUSTER_SPEC``, ``AZUREML_RUN_ID``) and everything
else serves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

USAGE = """\
usage: mldock-runtime [train|serve] [--key=value ...]

  train   run MLDOCK_TRAIN (module:function) with a TrainingContext, then write
          mldock-model.json into the model directory. --k=v arguments are hyperparameters;
          --input-<channel>=PATH, --model-dir=, --output-dir=, --checkpoint-dir= name folders.
  serve   answer SageMaker, Vertex AI, Azure ML and Open Inference Protocol v2 routes on one
          port (default 8080) with the predictor named by MLDOCK_PREDICTOR.

Without a command: train inside a training job, serve otherwise.
Exit codes: 0 ok, 1 training failed, 2 bad usage or configuration, 143 stopped by SIGTERM.
"""

_TRAINING_MARKERS = ("TRAINING_JOB_ARN", "CLOUD_ML_JOB_ID", "CLUSTER_SPEC", "AZUREML_RUN_ID")
_SERVING_MARKERS = ("SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_BATCH", "AZUREML_MODEL_DIR")


def default_command(env: Mapping[str, str]) -> str:
    if (env.get("AIP_MODE") or "").upper() == "PREDICTION" \
            or any(env.get(name) for name in _SERVING_MARKERS):
        return "serve"
    return "train" if any(env.get(name) for name in _TRAINING_MARKERS) else "serve"


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
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
