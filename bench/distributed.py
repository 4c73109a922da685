"""Distributed training locally: the pytorch template on 2 hosts against 1, and start-up cost.

* **wall time** of ``mldock train --instances 2`` against ``mldock train`` (one host), same image,
  data and hyperparameters, each run ``--repeat`` times (median). On this 2-core machine the
  ratio measures the overhead of a second host (a second container, the process group, gradient
  all-reduce over the bridge network), not a speed-up: both hosts share the same two cores.
* **time to the first training step** of every host: from the moment ``mldock train`` is
  started to the ``first training step on rank R at <time>`` line each host prints, against a
  plain ``docker run IMAGE train`` of the same image with a SageMaker ``/opt/ml`` tree (the floor:
  container start, Python, torch import, data load). The difference is what mldock adds (config,
  tracking, the run's tree and, with 2 hosts, the network and the rendezvous).
* the **cold build** time and **image size**, with torch from a CPU-only index (default: the one
  the tests serve from this machine, ``tests/e2e/cpu_torch.py``) or with ``--pypi`` from plain
  PyPI, as a user gets it (the CUDA build: minutes and gigabytes). "Cold": a fresh base image id,
  so no layer is reused (nobody's build cache is pruned).

Figures are printed, never asserted. Images and containers the bench made are removed.

    uv run python bench/distributed.py [--repeat 3] [--epochs 60] [--pypi]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))  # cpu_torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import MLDOCK, mldock

FIRST_STEP = re.compile(r"^(?:(?P<host>algo-\d+) \| )?first training step on rank (?P<rank>\d+)"
                        r" at (?P<at>[\d.]+)$", re.MULTILINE)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def fresh_base(tag: str) -> None:
    """A new image id on top of the local python:3.11-slim, so no later layer is cached."""
    dockerfile = f"FROM python:3.11-slim\nLABEL mldock.bench={uuid.uuid4().hex}\n"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True,
                   check=True, capture_output=True)


def prepare(root: Path, base: str, pypi: bool) -> tuple[Path, str | None]:
    """The pytorch template under a name of the bench's own, on ``base``; torch from the local
    CPU index unless ``pypi``. Returns (project, torch version pinned or None)."""
    import docker as docker_sdk

    name = f"benchtorch-{uuid.uuid4().hex[:8]}"
    mldock("init", name, "--template", "pytorch", "--no-input", cwd=root)
    project = root / name
    config = project / "mldock.toml"
    config.write_text(config.read_text() + f'\n[build]\nbase_image = "{base}"\n')
    if pypi:
        return project, None
    import cpu_torch

    client = docker_sdk.from_env()
    try:
        return project, cpu_torch.use_cpu_torch(project, client)
    finally:
        client.close()


def train_once(project: Path, instances: int, epochs: int) -> tuple[float, list[float]]:
    """(wall seconds, seconds from start to each host's first step) of one ``mldock train``."""
    args = [MLDOCK, "train", "-p", f"epochs={epochs}"]
    if instances > 1:
        args += ["--instances", str(instances)]
    started = time.time()
    done = subprocess.run(args, cwd=project, capture_output=True, text=True, check=False)
    wall = time.time() - started
    if done.returncode != 0:
        raise SystemExit(f"mldock train failed:\n{done.stderr[-3000:]}")
    steps = [float(m["at"]) - started for m in FIRST_STEP.finditer(done.stderr)]
    if len(steps) != instances:
        raise SystemExit(f"expected {instances} first-step lines:\n{done.stderr[-3000:]}")
    return wall, sorted(steps)


def plain_docker_run(project: Path, image: str, epochs: int, root: Path) -> tuple[float, float]:
    """(wall seconds, seconds to the first step) of ``docker run IMAGE train`` by hand."""
    from mldock.local import opt_ml

    tree = opt_ml.layout(root / f"plain-{uuid.uuid4().hex[:6]}", {"epochs": epochs},
                         {"train": str(project / "data")})
    name = f"{project.name}-plain-{uuid.uuid4().hex[:6]}"
    started = time.time()
    done = subprocess.run(
        ["docker", "run", "--rm", "--name", name, "-v", f"{tree}:/opt/ml",
         "-v", f"{project / 'data'}:/opt/ml/input/data/train:ro", image, "train"],
        capture_output=True, text=True, check=False)
    wall = time.time() - started
    if done.returncode != 0:
        raise SystemExit(f"docker run failed:\n{done.stderr[-3000:]}")
    (step,) = [float(m["at"]) - started for m in FIRST_STEP.finditer(done.stdout + done.stderr)]
    return wall, step


def remove_images(name: str) -> None:
    tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}", name).splitlines()
    for tag in tags:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (median)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per run")
    parser.add_argument("--pypi", action="store_true",
                        help="build torch from plain PyPI (CUDA build: slow, large)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mldock-bench-distributed-"))
    base = f"mldock-bench-base:{uuid.uuid4().hex[:8]}"
    fresh_base(base)
    project = None
    try:
        project, pinned = prepare(root, base, args.pypi)
        started = time.perf_counter()
        built = json.loads(mldock("build", "--json", "--quiet", cwd=project))
        cold = time.perf_counter() - started
        size = int(docker("image", "inspect", "--format", "{{.Size}}", built["tag"]))
        one = [train_once(project, 1, args.epochs) for _ in range(args.repeat)]
        two = [train_once(project, 2, args.epochs) for _ in range(args.repeat)]
        plain = [plain_docker_run(project, built["tag"], args.epochs, root)
                 for _ in range(args.repeat)]
    finally:
        if project is not None:
            remove_images(project.name)
        subprocess.run(["docker", "rmi", base], capture_output=True, check=False)

    med = statistics.median
    source = "plain PyPI (CUDA build)" if args.pypi else f"CPU-only index (torch {pinned})"
    print(f"pytorch template, torch from {source}; {args.epochs} epochs, median of {args.repeat}")
    print(f"{'cold build (s)':<44}{cold:>10.1f}")
    print(f"{'image size (MB)':<44}{size / 2**20:>10.0f}")
    print(f"{'wall time, 1 host (s)':<44}{med(w for w, _ in one):>10.2f}")
    print(f"{'wall time, 2 hosts (s)':<44}{med(w for w, _ in two):>10.2f}")
    ratio = med(w for w, _ in two) / med(w for w, _ in one)
    print(f"{'  ratio 2 hosts / 1 host':<44}{ratio:>10.2f}")
    print(f"{'first step, plain docker run (s)':<44}{med(s for _, s in plain):>10.2f}")
    print(f"{'first step, mldock train, 1 host (s)':<44}{med(s[0] for _, s in one):>10.2f}")
    print(f"{'first step, mldock train --instances 2 (s)':<44}"
          f"{med(s[0] for _, s in two):>10.2f} (first host)"
          f"{med(s[-1] for _, s in two):>8.2f} (last host)")
    print(f"{'wall time, plain docker run (s)':<44}{med(w for w, _ in plain):>10.2f}")


if __name__ == "__main__":
    main()
