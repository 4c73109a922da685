"""One rank of a two-process job on this machine: ``python rank_worker.py RANK WORLD PORT DIR``.

What each host of ``mldock train --instances 2`` does, as plain processes joined over 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

from fake_context import FakeContext  # noqa: E402

from {{ cookiecutter.package_name }}.train import train  # noqa: E402

if __name__ == "__main__":
    rank, world, port = (int(value) for value in sys.argv[1:4])
    root = Path(sys.argv[4])
    params = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    ctx = FakeContext(root / f"rank{rank}", params, {"train": HERE.parent / "data"},
                      rank=rank, world_size=world, master_port=port)
    train(ctx)
    (root / f"rank{rank}" / "metrics.json").write_text(json.dumps(ctx.metrics))
