"""Image builds: cold, code-only and no-op build times and image size, against MLflow.

Same trained sklearn model, side by side:

* mldock: ``mldock build`` of the sklearn template (cold, then after a code-only edit, then again
  with nothing changed);
* MLflow: ``mlflow models build-docker --env-manager local`` of the same model (cold, then again).

"Cold" for both means no layer above the base image is cached: the bench derives a fresh base image
(the local ``python:3.11-slim`` plus a unique label) and gives it to both tools, so neither reuses
an earlier run's layers, and nobody's build cache is pruned. Images the bench made are removed by
tag.

Goals (issue #3): mldock cold ≤ 0.5× MLflow's time and ≤ 0.5× its size; code-only ≤ 0.05× our cold.

    uv run python bench/build.py [--no-mlflow]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_venv
from _project import mldock, render, train_local

MLFLOW_BASE = "python:3.11.7-slim"  # what `mlflow models build-docker --env-manager local` uses


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def fresh_base(tag: str) -> None:
    """A new image id on top of the local python:3.11-slim, so no later layer is cached."""
    dockerfile = f"FROM python:3.11-slim\nLABEL mldock.bench={uuid.uuid4().hex}\n"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True,
                   check=True, capture_output=True)


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_mldock(root: Path, base: str) -> dict:
    project = render(root)
    config = project / "mldock.toml"
    config.write_text(config.read_text() + f'\n[build]\nbase_image = "{base}"\n')
    tags: list[str] = []

    def build() -> None:
        tags.append(json.loads(mldock("build", "--json", "--quiet", cwd=project))["tag"])

    cold = timed(build)
    train = project / "src" / project.name / "train.py"
    train.write_text(train.read_text() + "\n# a code-only change\n")
    code_only = timed(build)
    no_op = timed(build)
    return {"project": project, "cold": cold, "code_only": code_only, "no_op": no_op,
            "size": image_size(tags[-1]), "tags": sorted(set(tags))}


def bench_mlflow(project: Path, model_dir: Path, root: Path) -> dict:
    bin_dir = peer_venv("mlflow-sklearn", "mlflow", "scikit-learn", "joblib")
    saved = root / "mlflow-model"
    script = ("import joblib, mlflow.sklearn, sys; b = joblib.load(sys.argv[1]);"
              " mlflow.sklearn.save_model(b['model'], sys.argv[2],"
              " skops_trusted_types=['sklearn.tree._tree.Tree'])")
    subprocess.run([str(bin_dir / "python"), "-c", script, str(model_dir / "model.joblib"),
                    str(saved)], check=True, cwd=root)
    tag = f"mldock-bench-mlflow:{uuid.uuid4().hex[:8]}"
    argv = [str(bin_dir / "mlflow"), "models", "build-docker", "-m", str(saved), "-n", tag,
            "--env-manager", "local"]
    cold = timed(lambda: subprocess.run(argv, check=True, capture_output=True, cwd=root))
    no_op = timed(lambda: subprocess.run(argv, check=True, capture_output=True, cwd=root))
    return {"cold": cold, "no_op": no_op, "size": image_size(tag), "tags": [tag]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow peer")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mldock-bench-build-"))
    base = f"mldock-bench-base:{uuid.uuid4().hex[:8]}"
    made = [base]
    try:
        fresh_base(base)
        ours = bench_mldock(root, base)
        made += ours["tags"] + [f"{ours['project'].name}:latest"]
        peer = None
        if not args.no_mlflow:
            model_dir = train_local(ours["project"])
            if subprocess.run(["docker", "image", "inspect", MLFLOW_BASE],
                              capture_output=True, check=False).returncode != 0:
                docker("tag", base, MLFLOW_BASE)  # an alias of ours, removed below
                made.append(MLFLOW_BASE)
            peer = bench_mlflow(ours["project"], model_dir, root)
            made += peer["tags"]
    finally:
        for tag in made:
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
        # the python:3.11.7-slim alias is removed only when we made it (a user's own stays)

    mb = 1024 * 1024
    print(f"{'':<28}{'mldock':>12}{'mlflow':>12}")
    theirs = peer or {}
    print(f"{'cold build (s)':<28}{ours['cold']:>12.1f}{theirs.get('cold', float('nan')):>12.1f}")
    print(f"{'code-only rebuild (s)':<28}{ours['code_only']:>12.2f}{'n/a':>12}")
    print(f"{'no-op build (s)':<28}{ours['no_op']:>12.2f}"
          f"{theirs.get('no_op', float('nan')):>12.2f}")
    print(f"{'image size (MB)':<28}{ours['size'] / mb:>12.0f}{theirs.get('size', 0) / mb:>12.0f}")
    print(f"\ncode-only / our cold       = {ours['code_only'] / ours['cold']:.3f} (goal <= 0.05)")
    if peer:
        print(f"cold time / mlflow cold    = {ours['cold'] / peer['cold']:.2f} (goal <= 0.50)")
        print(f"image size / mlflow size   = {ours['size'] / peer['size']:.2f} (goal <= 0.50)")


if __name__ == "__main__":
    main()
