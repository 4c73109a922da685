"""Serving: requests/s and p50/p99 latency at concurrency 10 for the sklearn template's model.

Side by side, same model, same one-row JSON request, same load generator (wrk, 10 connections,
keep-alive, on 127.0.0.1 only; bounded duration):

* mldock: the built image, ``IMAGE serve`` with the model at ``/opt/ml/model`` (host network, so no
  port-proxy overhead — the same footing as the host processes below);
* MLflow: ``mlflow models serve --env-manager local -w 1`` of the same model;
* bare: a minimal ASGI app on uvicorn (1 worker) calling the same ``Predictor.predict``.

Goals (issue #3): mldock ≥ 2× MLflow's requests/s and ≥ 0.8× the bare app's.

    uv run python bench/serve.py [--seconds 10] [--no-mlflow]   (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_venv
from _project import mldock, render, train_local

BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})

BARE_APP = '''
import json, os
from pathlib import Path
from {package}.predict import Predictor

predictor = Predictor()
predictor.load(Path(os.environ["MODEL_DIR"]))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = json.loads(body)
    result = json.dumps({"predictions": predictor.predict(payload["instances"])}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": result})
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, data=BODY.encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def run_wrk(url: str, seconds: int, workdir: Path) -> dict:
    script = workdir / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(["wrk", "-t2", "-c10", f"-d{seconds}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": ms("50"), "p99": ms("99"), "non2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve.py needs wrk: apt-get install -y wrk")
    root = Path(tempfile.mkdtemp(prefix="mldock-bench-serve-"))
    project = render(root)
    tag = json.loads(mldock("build", "--json", "--quiet", cwd=project))["tag"]
    model_dir = train_local(project)
    results: dict[str, dict] = {}
    processes: list[subprocess.Popen] = []
    container = None
    try:
        port = free_port()
        container = subprocess.run(
            ["docker", "run", "-d", "--rm", "--network", "host", "-e", f"MLDOCK_PORT={port}",
             "-e", "MLDOCK_HOST=127.0.0.1", "-v", f"{model_dir}:/opt/ml/model:ro", tag, "serve"],
            check=True, capture_output=True, text=True).stdout.strip()
        url = f"http://127.0.0.1:{port}/invocations"
        wait_ready(url)
        results["mldock (image)"] = run_wrk(url, args.seconds, root)

        bare_bin = peer_venv("uvicorn-sklearn", "uvicorn", "scikit-learn", "joblib", "numpy")
        package = project.name.replace("-", "_")  # the template's package_name rule
        (root / "bare_app.py").write_text(BARE_APP.replace("{package}", package))
        port = free_port()
        env = {**os.environ, "MODEL_DIR": str(model_dir),
               "PYTHONPATH": f"{root}{os.pathsep}{project / 'src'}"}
        processes.append(subprocess.Popen(
            [str(bare_bin / "uvicorn"), "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--no-access-log", "--log-level", "warning"], cwd=root, env=env))
        url = f"http://127.0.0.1:{port}/invocations"
        wait_ready(url)
        results["bare uvicorn app"] = run_wrk(url, args.seconds, root)

        if not args.no_mlflow:
            mlflow_bin = peer_venv("mlflow-sklearn", "mlflow", "scikit-learn", "joblib")
            saved = root / "mlflow-model"
            script = ("import joblib, mlflow.sklearn, sys; b = joblib.load(sys.argv[1]);"
                      " mlflow.sklearn.save_model(b['model'], sys.argv[2],"
              " skops_trusted_types=['sklearn.tree._tree.Tree'])")
            subprocess.run([str(mlflow_bin / "python"), "-c", script,
                            str(model_dir / "model.joblib"), str(saved)], check=True, cwd=root)
            port = free_port()
            processes.append(subprocess.Popen(
                [str(mlflow_bin / "mlflow"), "models", "serve", "-m", str(saved), "-h", "127.0.0.1",
                 "-p", str(port), "-w", "1", "--env-manager", "local"],
                stdout=subprocess.DEVNULL, stderr=(root / "mlflow-serve.log").open("w"), cwd=root,
                env={**os.environ, "PATH": f"{mlflow_bin}{os.pathsep}{os.environ['PATH']}"}))
            url = f"http://127.0.0.1:{port}/invocations"
            wait_ready(url, timeout=300)
            results["mlflow models serve"] = run_wrk(url, args.seconds, root)
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        for name in (tag, f"{tag.split(':')[0]}:latest"):
            subprocess.run(["docker", "rmi", name], capture_output=True, check=False)

    print(f"{'server':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}")
    for name, r in results.items():
        print(f"{name:<22}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['non2xx']:>9}")
    ours = results["mldock (image)"]["rps"]
    ratio = ours / results["bare uvicorn app"]["rps"]
    print(f"\nmldock / bare uvicorn app = {ratio:.2f} (goal >= 0.80)")
    if "mlflow models serve" in results:
        print(f"mldock / mlflow           = {ours / results['mlflow models serve']['rps']:.2f}"
              " (goal >= 2.00)")


if __name__ == "__main__":
    main()
