"""``mldock train --instances N`` on the local engine: N hosts laid out as a SageMaker job.

What a SageMaker job on N instances gives each host, rehearsed with N containers of the image:

* a private bridge network per run (``mldock-train-<run>``, labelled with the run id) on which
  every host is reachable by its SageMaker name, ``algo-1`` … ``algo-N`` (its hostname and its
  network alias), so ``torch.distributed`` and friends rendezvous as they would in the cloud;
* each host its own ``/opt/ml`` tree (``<work_dir>/algo-i``) whose ``resourceconfig.json`` names
  every host and that host as ``current_host``; the input channels are the same folders, mounted
  read-only into every host (SageMaker's ``FullyReplicated``);
* ``algo-1`` is the primary (rank 0): its ``/opt/ml/model`` is the run's model, and its metrics
  file is the one tailed (the other hosts' metrics stay in their trees, as the platform ignores
  them too). Every host's log is streamed with its name as a prefix.

The hosts are watched together. The first one to fail stops all the others (SIGTERM, so their
checkpoint hooks run), and the run fails naming that host and its reason (its
``/opt/ml/output/failure`` first line, else its exit code). When several have exited by the time
the failure is seen (a crashed host makes its peers' collectives fail a moment later), the one
that exited first is named. Ctrl-C stops every host and the run is ``killed``. Containers and the
network are removed whatever happened.

The primary's container carries the run's single-host container name (``mldock-train-<run>``)
so that a run whose ``mldock`` process was killed is judged by its primary host, as for one host
(:mod:`mldock.training.reconcile`); the others are ``mldock-train-<run>-algo-i``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mldock.errors import MldockError
from mldock.interfaces import TrainingJob, TrainingResult
from mldock.interfaces.common import ProgressSink
from mldock.interfaces.deploy import MetricsSink
from mldock.local import opt_ml
from mldock.runtime.names import ENV_RUN_ID, METRICS_FILE_NAME
from mldock.training.metrics_tail import MetricsTail

LABEL_RUN = "mldock.run_id"
LABEL_HOST = "mldock.host"
KILLED_CODES = {137, 143}
STOP_TIMEOUT_S = 30
POLL_S = 0.5


def host_names(count: int) -> list[str]:
    """SageMaker's host names for a job on ``count`` instances: ``algo-1`` … ``algo-N``."""
    return [f"algo-{index}" for index in range(1, count + 1)]


def layout_hosts(root: Path, hyperparameters: Mapping[str, Any], channels: Mapping[str, Any],
                 hosts: list[str]) -> dict[str, Path]:
    """One ``/opt/ml`` tree per host under ``root``; each names all hosts and itself."""
    trees = {}
    for host in hosts:
        tree = opt_ml.layout(root / host, hyperparameters, channels)
        (tree / "input" / "config" / "resourceconfig.json").write_text(json.dumps(
            {"current_host": host, "hosts": hosts, "network_interface_name": "eth0"}))
        trees[host] = tree
    return trees


def container_name(base: str, host: str, hosts: list[str]) -> str:
    """The primary keeps ``base`` (see the module docstring); the others add their host name."""
    return base if host == hosts[0] else f"{base}-{host}"


class MultiHostTraining:
    """One run on ``count`` local hosts: start, stream, watch, stop, clean up."""

    def __init__(self, client: Any, job: TrainingJob, count: int, *, root: Path, base_name: str,
                 progress: ProgressSink, on_metrics: MetricsSink | None = None) -> None:
        self.client, self.job, self.base_name = client, job, base_name
        self.hosts = host_names(count)
        self.trees = layout_hosts(root, job.hyperparameters, job.inputs, self.hosts)
        self._lock = threading.Lock()
        self._show = progress
        self.on_metrics = on_metrics or (lambda metrics: None)
        self.containers: dict[str, Any] = {}
        self.network: Any = None

    def progress(self, line: str) -> None:
        with self._lock:  # one line at a time from the hosts' log threads
            self._show(line)

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> TrainingResult:
        """Train on every host; the result names the failing host when one failed."""
        from docker.errors import APIError

        primary = self.hosts[0]
        try:
            try:
                self._start_all()
            except APIError as exc:
                reason = (exc.explanation or str(exc)).strip().splitlines()[-1][:200]
                raise MldockError(f"cannot start the {len(self.hosts)} training hosts: {reason}",
                                  hint="see 'docker ps -a' and 'docker network ls' for"
                                       f" leftovers named {self.base_name}") from None
            streamers = [threading.Thread(target=self._stream, args=(host, c), daemon=True)
                         for host, c in self.containers.items()]
            for thread in streamers:
                thread.start()
            metrics = self.trees[primary] / "output" / "data" / METRICS_FILE_NAME
            with MetricsTail(metrics, self.on_metrics):
                status, failure = self._watch()
                for thread in streamers:
                    thread.join(timeout=10)
        finally:
            self._remove_all()
        return TrainingResult(
            run_id=self.job.run_id, status=status, job_id=self.base_name,
            model_uri=str(self.trees[primary] / "model"), failure_reason=failure)

    def _start_all(self) -> None:
        """The network, then every host's container (created first, started primary first)."""
        self.network = self.client.networks.create(
            self.base_name, driver="bridge", check_duplicate=True,
            labels={LABEL_RUN: self.job.run_id, "mldock.role": "train"})
        for host in self.hosts:
            self.containers[host] = self._create(host)
        self.progress(f"training on {len(self.hosts)} hosts ({', '.join(self.hosts)}) on network"
                      f" {self.base_name}; {self.hosts[0]} is the primary")
        for container in self.containers.values():
            container.start()

    def _create(self, host: str) -> Any:
        """One host's container, on the run's network under its SageMaker name.

        The low-level API is used because it sets the network alias at creation in every
        docker SDK version this package supports (``networking_config`` on the high-level
        ``containers.create`` is recent)."""
        api, net = self.client.api, self.base_name
        volumes = {str(self.trees[host].resolve()): {"bind": "/opt/ml", "mode": "rw"}}
        for name, folder in self.job.inputs.items():
            volumes[str(Path(folder).resolve())] = {"bind": f"/opt/ml/input/data/{name}",
                                                    "mode": "ro"}
        extra_hosts = dict(self.job.options.get("extra_hosts") or {}) or None
        host_config = api.create_host_config(binds=volumes, network_mode=net,
                                             extra_hosts=extra_hosts)
        networking = api.create_networking_config(
            {net: api.create_endpoint_config(aliases=[host])})
        environment = {"TRAINING_JOB_NAME": self.base_name, ENV_RUN_ID: self.job.run_id,
                       "PYTHONUNBUFFERED": "1", **self.job.environment}
        created = api.create_container(
            self.job.image, command=["train"], hostname=host,
            name=container_name(self.base_name, host, self.hosts), environment=environment,
            labels={LABEL_RUN: self.job.run_id, "mldock.role": "train", LABEL_HOST: host},
            host_config=host_config, networking_config=networking, detach=True)
        return self.client.containers.get(created["Id"])

    def _stream(self, host: str, container: Any) -> None:
        """``host | line`` for every line the host prints, as it prints it."""
        buffer = b""
        with contextlib.suppress(Exception):  # the container went away: its log is complete
            for chunk in container.logs(stream=True, follow=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self.progress(f"{host} | {line.decode('utf-8', 'replace')}")
        if buffer:
            self.progress(f"{host} | {buffer.decode('utf-8', 'replace')}")

    # --- watching -----------------------------------------------------------------------------
    def _watch(self) -> tuple[str, str | None]:
        """Wait for every host; on the first failure stop the rest. (status, failure)."""
        exits: queue.Queue[tuple[str, int]] = queue.Queue()
        for host, container in self.containers.items():
            threading.Thread(target=self._wait_one, args=(host, container, exits),
                             daemon=True).start()
        codes: dict[str, int] = {}
        try:
            while len(codes) < len(self.hosts):
                with contextlib.suppress(queue.Empty):
                    host, code = exits.get(timeout=POLL_S)
                    codes[host] = code
                    if code != 0:
                        return self._fail(exits, codes)
        except KeyboardInterrupt:
            self.progress(f"stopping all {len(self.hosts)} hosts (SIGTERM, checkpoint hooks"
                          " run)...")
            self._stop(self.hosts)
            raise
        return "finished", None

    @staticmethod
    def _wait_one(host: str, container: Any, exits: queue.Queue[tuple[str, int]]) -> None:
        try:
            code = int(container.wait()["StatusCode"])
        except Exception:  # noqa: BLE001 - removed under us: count it as a failure
            code = -1
        exits.put((host, code))

    def _fail(self, exits: queue.Queue[tuple[str, int]],
              codes: dict[str, int]) -> tuple[str, str | None]:
        """A host exited non-zero: name the first to fail, stop the others, wait for them."""
        with contextlib.suppress(queue.Empty):
            while True:  # exits already reported count as seen before the stop
                host, code = exits.get_nowait()
                codes[host] = code
        failed = [host for host, code in codes.items() if code != 0]
        first = min(failed, key=self._finished_at)
        code = codes[first]
        running = [host for host in self.hosts if host not in codes]
        if running:
            self.progress(f"host {first} exited with code {code}: stopping"
                          f" {', '.join(running)}")
            self._stop(running)
        status = "killed" if code in KILLED_CODES else "failed"
        return status, f"host {first} {self._reason(first, code)}"

    def _finished_at(self, host: str) -> str:
        """When ``host``'s container exited (ISO 8601 sorts as text); unknown sorts last."""
        try:
            self.containers[host].reload()
            return str(self.containers[host].attrs["State"]["FinishedAt"])
        except Exception:  # noqa: BLE001 - gone already: it cannot have been first
            return "9999"

    def _reason(self, host: str, code: int) -> str:
        text = opt_ml.failure_text(self.trees[host])
        if text:
            return f"failed: {text.splitlines()[0].strip()}"
        if code in KILLED_CODES:
            return f"was stopped (exit code {code})"
        return f"failed: its container exited with code {code}"

    def _stop(self, hosts: list[str]) -> None:
        """SIGTERM to ``hosts`` at once (each gets the same grace period), then wait."""
        def stop(host: str) -> None:
            with contextlib.suppress(Exception):  # exited already
                self.containers[host].stop(timeout=STOP_TIMEOUT_S)

        with ThreadPoolExecutor(max_workers=max(len(hosts), 1)) as pool:
            list(pool.map(stop, hosts))

    def _remove_all(self) -> None:
        """Remove the hosts' containers, then the network; never hide the run's outcome."""
        for container in self.containers.values():
            with contextlib.suppress(Exception):
                container.remove(force=True)
        if self.network is not None:
            with contextlib.suppress(Exception):
                self.network.remove()


def train_hosts(client: Any, job: TrainingJob, count: int, *, root: Path, base_name: str,
                progress: ProgressSink,
                on_metrics: Callable[..., None] | None = None) -> TrainingResult:
    """Run ``job`` on ``count`` local hosts (see the module docstring)."""
    if count < 2:
        raise MldockError(f"train_hosts needs at least 2 hosts, got {count}",
                          hint="one host trains through LocalDeployer.train")
    return MultiHostTraining(client, job, count, root=root, base_name=base_name,
                             progress=progress, on_metrics=on_metrics).run()
