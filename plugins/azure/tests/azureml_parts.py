"""What the deployer tests share: a deployer on the fake, a real mldock image that trains, and
the ACR push of that image into a registry guarded by the ACR user and refresh token.

The training image is built by the real ``mldock`` CLI from a ``minimal`` project whose
``train(ctx)`` reports what the runtime gave it (platform, rank, world size, master, the decoded
hyperparameters, the channel's files) on one ``facts`` line, logs metrics, writes the model on the
primary (a line ``y = 2x + 1`` the template's predictor serves, and the rank that wrote it),
fails when asked to (``--fail=true``) and can sleep (``--sleep=S``) so a test can interrupt or
cancel it while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from azureml_fake import AzureMLFake
from mldock_azure.clients import AzureIdentity
from mldock_azure.config import AzureMLOptions
from mldock_azure.deployer import AzureMLDeployer
from mldock_azure.workspace import AzureMLClients

TRAIN = '''\
import json, os, time
from pathlib import Path


def train(ctx):
    facts = {"platform": ctx.platform, "rank": ctx.rank, "world": ctx.world_size,
             "master": ctx.master_addr, "primary": ctx.is_primary, "job": ctx.job_id,
             "run": ctx.run_id, "hp": ctx.hyperparameters,
             "files": sorted(p.name for p in Path(ctx.input_dir("train")).iterdir())
             if "train" in ctx.channels else [],
             "env": os.environ.get("MLDOCK_TEST_MARK", "")}
    print("facts " + json.dumps(facts, sort_keys=True), flush=True)
    for step in range(1, 3):
        ctx.log_metric("loss", 1.0 / step, step=step)
    time.sleep(float(ctx.param("sleep", 0)))
    if ctx.param("fail", False):
        raise ValueError("failing on purpose: column 'species' is missing")
    if ctx.is_primary:
        model = {"feature": "x", "target": "y", "slope": 2.0, "intercept": 1.0,
                 "rank": ctx.rank}
        (Path(ctx.model_dir) / "model.json").write_text(json.dumps(model))
    print("trained", flush=True)
'''


def options_for(fake: AzureMLFake, **changes: Any) -> AzureMLOptions:
    """``[deploy.azureml]`` on the fake's workspace, with ``changes``."""
    values: dict[str, Any] = {"subscription_id": fake.subscription_id,
                              "resource_group": fake.resource_group,
                              "workspace": fake.workspace, "compute": fake.compute,
                              "cloud": fake.cloud, **changes}
    return AzureMLOptions.model_validate(values)


def build_deployer(fake: AzureMLFake, *, project: str = "proj", open_store: Any = None,
                   poll_s: float = 0.2, **changes: Any) -> AzureMLDeployer:
    """A deployer on the fake, signed in with the fake's tokens, polling every ``poll_s``."""
    options = options_for(fake, **changes)
    clients = AzureMLClients(options, identity=AzureIdentity(fake.credential()))
    return AzureMLDeployer(options, project=project, clients=clients, open_store=open_store,
                           poll_s=poll_s)


def mldock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess; a failure shows its output."""
    done = subprocess.run([sys.executable, "-m", "mldock", *args], cwd=cwd, text=True, check=False,
                          capture_output=True, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, f"mldock {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def build_training_image(root: Path) -> str:
    """``mldock init`` a minimal project, give it :data:`TRAIN`, ``mldock build``: the tag."""
    name = f"aztrain{uuid.uuid4().hex[:8]}"
    mldock("init", name, "--template", "minimal", "--no-input", cwd=root)
    project = root / name
    package = next(p for p in (project / "src").iterdir() if p.is_dir())
    (package / "train.py").write_text(TRAIN)
    built = mldock("build", "--json", "--quiet", cwd=project)
    return str(json.loads(built.stdout)["tag"])


def facts(lines: list[str]) -> list[dict[str, Any]]:
    """The ``facts`` lines the training printed (any rank prefix removed), in order."""
    found = []
    for line in lines:
        _, marker, rest = line.partition("facts {")
        if marker:
            found.append(json.loads("{" + rest))
    return found
