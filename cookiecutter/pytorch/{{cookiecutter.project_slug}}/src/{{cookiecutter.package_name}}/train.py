"""Training: mldock calls ``train(ctx)`` inside the image on every host of the job.

``ctx`` gives the hyperparameters (``ctx.param``), the input channels (``ctx.input_dir``), where
to write the model (``ctx.model_dir``) and checkpoints (``ctx.checkpoint_dir``),
``ctx.log_metric``, and the cluster facts (``ctx.rank``, ``ctx.world_size``, ``ctx.master_addr``).

On one host this is plain PyTorch. On several (``mldock train --instances 2`` locally,
``instance_count`` on SageMaker, replicas on Vertex AI, nodes on Azure ML) every host runs it:
the hosts join one process group (:mod:`.distributed`), each trains on its own shard of the rows,
and DistributedDataParallel averages the gradients, so every rank ends every step with the same
weights (each logs a checksum of them to show it). Only the primary host (``ctx.is_primary``,
rank 0) logs metrics, writes checkpoints and saves the model.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from {{ cookiecutter.package_name }} import MODEL_FILE, WEIGHTS_FILE
from {{ cookiecutter.package_name }}.distributed import (
    Group,
    broadcast_object,
    process_group,
    sum_across_ranks,
)
from {{ cookiecutter.package_name }}.net import build_net

CHECKPOINT_FILE = "checkpoint.pt"


def load_table(folder: Path, target: str) -> tuple[list[str], torch.Tensor, list[str]]:
    """Read every ``*.csv`` in ``folder``: (feature names, feature matrix, labels)."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv file in the training channel {folder}")
    header: list[str] | None = None
    rows: list[list[float]] = []
    labels: list[str] = []
    for path in files:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            file_header = next(reader)
            if header is None:
                header = file_header
                if target not in header:
                    raise ValueError(f"{path.name}: no target column {target!r} in {header}")
            elif file_header != header:
                raise ValueError(f"{path.name}: columns {file_header} differ from {header}")
            at = header.index(target)
            for row in reader:
                if row:
                    labels.append(row[at])
                    rows.append([float(v) for i, v in enumerate(row) if i != at])
    assert header is not None
    names = [name for name in header if name != target]
    return names, torch.tensor(rows, dtype=torch.float32), labels


def weights_checksum(net: torch.nn.Module) -> str:
    """A short hash of every weight's bytes: equal on two ranks means equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _settings(ctx) -> dict[str, Any]:
    return {"epochs": int(ctx.param("epochs", 60)), "lr": float(ctx.param("lr", 0.05)),
            "batch_size": int(ctx.param("batch_size", 16)), "hidden": int(ctx.param("hidden", 16)),
            "seed": int(ctx.param("seed", 0)), "test_size": float(ctx.param("test_size", 0.2)),
            "target": str(ctx.param("target", "species"))}


def train(ctx) -> None:
    """Fit the network, log loss per epoch and held-out accuracy, save it on the primary."""
    settings = _settings(ctx)
    names, X, labels = load_table(ctx.input_dir("train"), settings["target"])
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(settings["seed"]))
    n_test = max(1, int(len(y) * settings["test_size"]))
    test, fit = order[:n_test], order[n_test:]
    mean, std = X[fit].mean(dim=0), X[fit].std(dim=0).clamp_min(1e-6)
    X = (X - mean) / std

    port = int(ctx.param("master_port", 29500))
    with process_group(ctx, port=port, timeout_s=float(ctx.param("timeout_s", 300))) as group:
        torch.manual_seed(settings["seed"])
        net = build_net(len(names), settings["hidden"], len(classes)).to(group.device)
        optimizer = torch.optim.SGD(net.parameters(), lr=settings["lr"], momentum=0.9)
        start = _resume(ctx, net, optimizer, settings, group)
        model = DistributedDataParallel(net) if group.distributed else net
        _fit(ctx, model, net, optimizer, TensorDataset(X[fit], y[fit]), settings, start, group)

        with torch.no_grad():
            predicted = net(X[test].to(group.device)).argmax(dim=1).cpu()
        accuracy = float((predicted == y[test]).float().mean())
        checksum = weights_checksum(net)
        print(f"rank {group.rank} of {group.world_size}: weights checksum {checksum}", flush=True)
    if ctx.is_primary:  # several hosts: only the primary's model is published
        ctx.log_metric("accuracy", accuracy)
        torch.save(net.state_dict(), Path(ctx.model_dir) / WEIGHTS_FILE)
        (Path(ctx.model_dir) / MODEL_FILE).write_text(json.dumps({
            "features": names, "classes": classes, "hidden": settings["hidden"],
            "mean": mean.tolist(), "std": std.tolist(), "weights_checksum": checksum,
            "saved_by_rank": group.rank, "world_size": group.world_size}, indent=2))
    print(f"trained on {len(fit)} rows ({group.world_size} rank(s)); held-out accuracy"
          f" {accuracy:.3f}", flush=True)


def _fit(ctx, model: torch.nn.Module, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
         data: TensorDataset, settings: dict[str, Any], start: int, group: Group) -> None:
    """The epochs from ``start``: each rank sees its shard, DDP averages the gradients."""
    sampler = (DistributedSampler(data, num_replicas=group.world_size, rank=group.rank,
                                  shuffle=True, seed=settings["seed"])
               if group.distributed else None)
    loader = DataLoader(data, batch_size=settings["batch_size"], sampler=sampler,
                        shuffle=sampler is None,
                        generator=torch.Generator().manual_seed(settings["seed"]))
    checkpoint = Path(ctx.checkpoint_dir) / CHECKPOINT_FILE
    done = {"epoch": start}
    if ctx.is_primary:
        # SIGTERM (spot interruption, a stopped job): keep the epochs trained so far
        ctx.on_stop(lambda: _save_checkpoint(checkpoint, net, optimizer, settings, done["epoch"]))
    first = True
    for epoch in range(start, settings["epochs"]):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        for rows, labels in loader:
            if first:  # what bench/ measures: how long until every host trains
                print(f"first training step on rank {group.rank} at {time.time():.3f}", flush=True)
                first = False
            xb, yb = rows.to(group.device), labels.to(group.device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(yb), count + len(yb)
        total, count = sum_across_ranks([total, float(count)], group)
        done["epoch"] = epoch + 1
        if ctx.is_primary:
            ctx.log_metric("loss", total / max(count, 1.0), step=epoch + 1)
            _save_checkpoint(checkpoint, net, optimizer, settings, epoch + 1)


def _save_checkpoint(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     settings: dict[str, Any], epoch: int) -> None:
    partial = path.with_suffix(".partial")
    torch.save({"epoch": epoch, "settings": settings, "model": net.state_dict(),
                "optimizer": optimizer.state_dict()}, partial)
    partial.replace(path)  # a reader never sees half a checkpoint


def _same_run(saved: Any, settings: dict[str, Any]) -> bool:
    """Made with the same data and settings; only ``epochs`` may grow (train for longer)."""
    if not isinstance(saved, dict):
        return False
    return {k: v for k, v in saved.items() if k != "epochs"} == {
        k: v for k, v in settings.items() if k != "epochs"}


def _resume(ctx, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
            settings: dict[str, Any], group: Group) -> int:
    """The epoch to start from: a checkpoint made with the same settings, read by rank 0 and
    sent to every rank (other hosts have no checkpoint of their own), else 0."""
    state = None
    path = Path(ctx.checkpoint_dir) / CHECKPOINT_FILE
    if group.rank == 0 and path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if _same_run(saved.get("settings"), settings) and saved["epoch"] <= settings["epochs"]:
            state = saved
            print(f"resuming from checkpoint after epoch {saved['epoch']}", flush=True)
        else:
            print(f"ignoring checkpoint {path.name}: made with other data or settings", flush=True)
    state = broadcast_object(state, group)
    if state is None:
        return 0
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"])
