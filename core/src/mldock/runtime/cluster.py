"""Hosts and ranks of a distributed training job, read from each platform's own format.

SageMaker: ``resourceconfig.json`` (``hosts``, ``current_host``; rank = index, master = hosts[0]).
Vertex AI: ``CLUSTER_SPEC`` (worker pools) or ``TF_CONFIG`` (chief/worker/ps). Azure ML: the
PyTorch launcher variables ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``,
``RANK``, ``LOCAL_RANK``, or the MPI ranks (only the master's address is known there, so
``hosts`` lists just it). Rank 0 is the primary: the one host whose model is published.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Cluster:
    hosts: list[str] = field(default_factory=list)
    current_host: str = ""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = ""
    master_port: int | None = None


def single_host() -> Cluster:
    host = socket.gethostname()
    return Cluster(hosts=[host], current_host=host, master_addr=host)


def from_sagemaker(resourceconfig: Path) -> Cluster:
    if not resourceconfig.is_file():
        return single_host()
    data = json.loads(resourceconfig.read_text(encoding="utf-8"))
    hosts = [str(h) for h in data.get("hosts") or []]
    current = str(data.get("current_host") or (hosts[0] if hosts else socket.gethostname()))
    if not hosts:
        hosts = [current]
    rank = hosts.index(current) if current in hosts else 0
    return Cluster(hosts=hosts, current_host=current, rank=rank, world_size=len(hosts),
                   master_addr=hosts[0])


def _split_hostport(entry: str) -> tuple[str, int | None]:
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return entry, None


def _from_spec(cluster: Mapping[str, list[str]], task_type: str, task_index: int,
               order: list[str]) -> Cluster:
    flat: list[tuple[str, int | None]] = []
    position = 0
    for pool in order:
        for index, entry in enumerate(cluster.get(pool) or []):
            if pool == task_type and index == task_index:
                position = len(flat)
            flat.append(_split_hostport(str(entry)))
    if not flat:
        return single_host()
    hosts = [host for host, _ in flat]
    return Cluster(hosts=hosts, current_host=hosts[position], rank=position,
                   world_size=len(hosts), master_addr=hosts[0], master_port=flat[0][1])


def from_vertex(env: Mapping[str, str]) -> Cluster:
    """``CLUSTER_SPEC`` (workerpool0…3, in that order) or else ``TF_CONFIG`` (chief first)."""
    raw = env.get("CLUSTER_SPEC") or env.get("TF_CONFIG")
    if not raw:
        return single_host()
    data = json.loads(raw)
    cluster = data.get("cluster") or {}
    task = data.get("task") or {}
    leaders = [p for p in ("chief", "master", "workerpool0") if p in cluster]
    order = leaders + [p for p in ("worker",) if p in cluster] \
        + sorted(p for p in cluster if p not in leaders and p != "worker")
    return _from_spec(cluster, str(task.get("type") or (order[0] if order else "")),
                      int(task.get("index") or 0), order)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, ""))
    except ValueError:
        return default


def _azure_rank(env: Mapping[str, str]) -> int:
    """The global rank: PyTorch launcher ``RANK``, else ``NODE_RANK``, else Open MPI / Intel MPI."""
    for name in ("RANK", "NODE_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if (env.get(name) or "").strip().isdigit():
            return int(env[name])
    return 0


def from_azureml(env: Mapping[str, str]) -> Cluster:
    """Ranks come from the launcher variables even when ``MASTER_ADDR`` is missing (MPI jobs)."""
    master = env.get("MASTER_ADDR")
    rank = _azure_rank(env)
    if not master:
        if rank == 0:
            return single_host()
        host = socket.gethostname()
        return Cluster(hosts=[host], current_host=host, rank=rank,
                       world_size=max(_int(env, "WORLD_SIZE", 1), rank + 1),
                       local_rank=_int(env, "LOCAL_RANK", 0))
    current = master if rank == 0 else socket.gethostname()
    port = _int(env, "MASTER_PORT", 0) or None
    return Cluster(hosts=[master], current_host=current, rank=rank,
                   world_size=_int(env, "WORLD_SIZE", 1), local_rank=_int(env, "LOCAL_RANK", 0),
                   master_addr=master, master_port=port)
