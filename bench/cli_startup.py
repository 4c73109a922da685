"""CLI start-up: median wall time of ``mldock --help``, a bare typer app and ``mlflow --help``.

All three run side by side in one process, interleaved round by round so machine noise hits them
alike. mldock runs from the workspace environment (every package installed); the bare typer app runs
with the same interpreter; mlflow runs from its own environment (created on first use).

Goals (issue #2): mldock ≤ 1.5× the bare typer app, ≤ 0.15× mlflow.

    uv run python bench/cli_startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_venv

HELLO = '''
import typer

app = typer.Typer()

@app.command()
def hello(name: str = "world"):
    """Say hello."""
    print(f"hello {name}")

if __name__ == "__main__":
    app()
'''


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-mlflow", action="store_true", help="skip the mlflow peer")
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    hello = Path(tempfile.mkdtemp()) / "hello.py"
    hello.write_text(HELLO)
    commands = {
        "mldock --help": [str(bin_dir / "mldock"), "--help"],
        "mldock plugins list": [str(bin_dir / "mldock"), "plugins", "list", "--all"],
        "bare typer --help": [sys.executable, str(hello), "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    if not args.no_mlflow:
        commands["mlflow --help"] = [str(peer_venv("mlflow", "mlflow") / "mlflow"), "--help"]

    for argv in commands.values():  # warm the file cache once
        time_once(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(args.rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            samples[name].append(time_once(commands[name]))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{'command':<22} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for name, values in samples.items():
        print(f"{name:<22} {medians[name] * 1000:>10.0f} {min(values) * 1000:>8.0f}"
              f" {max(values) * 1000:>8.0f}")
    ratio_typer = medians["mldock --help"] / medians["bare typer --help"]
    print(f"\nmldock --help / bare typer --help = {ratio_typer:.2f}  (goal <= 1.50)")
    if "mlflow --help" in medians:
        ratio_mlflow = medians["mldock --help"] / medians["mlflow --help"]
        print(f"mldock --help / mlflow --help     = {ratio_mlflow:.3f} (goal <= 0.15)")


if __name__ == "__main__":
    main()
