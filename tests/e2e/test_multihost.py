"""``mldock train --instances N`` on a real engine: N hosts laid out as a SageMaker job.

A project of the ``minimal`` template (no framework: it builds in seconds) gets a probe training
function that meets every other host over TCP by its SageMaker name (as a framework's
rendezvous would), reports what each host sees (its name, rank, the hosts, the channel, the
peers' addresses), logs its rank as a metric, and fits the template's line. Hyperparameters make
one host fail or every host hang until stopped. The framework case (torch.distributed on two
hosts) is ``test_templates_pytorch.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
CLI = str(Path(sys.executable).parent / "mldock")

PROBE = '''
"""Reports what this host sees, then fits the line (the template's own train)."""

import json
import os
import socket
import threading
import time

from {package}.train import train as fit_line

PORT = 7800


def barrier(ctx):
    """Meet every other host over TCP: this host accepts one connection from each peer and
    connects to each peer by name (retrying while a peer is not up yet). Returns the peers'
    addresses as this host reached them."""
    peers = [h for h in ctx.hosts if h != ctx.current_host]
    server = socket.create_server(("0.0.0.0", PORT))
    accepted = []

    def accept():
        while len(accepted) < len(peers):
            accepted.append(server.accept()[0].recv(64).decode())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    addresses = {{}}
    for peer in peers:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection((peer, PORT), timeout=5) as sock:
                    addresses[peer] = sock.getpeername()[0]
                    sock.sendall(ctx.current_host.encode())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    thread.join(timeout=120)
    server.close()
    addresses[ctx.current_host] = socket.gethostbyname(ctx.current_host)
    return addresses, sorted(accepted)


def train(ctx):
    channel = ctx.input_dir("train")
    try:
        (channel / "written-by-a-host").write_text("x")
        writable = True
    except OSError:
        writable = False
    addresses, met = barrier(ctx)
    facts = {{"rank": ctx.rank, "world_size": ctx.world_size, "hosts": ctx.hosts,
              "current_host": ctx.current_host, "hostname": socket.gethostname(),
              "master": ctx.master_addr, "channel": sorted(os.listdir(channel)),
              "channel_writable": writable, "addresses": addresses, "met": met}}
    print("HOSTINFO " + json.dumps(facts), flush=True)
    ctx.log_metric("rank_seen", ctx.rank)
    fail, hang = ctx.param("fail_host"), ctx.param("hang", False)
    if fail == ctx.current_host:
        time.sleep(2)
        raise RuntimeError(f"boom on {{ctx.current_host}}")
    if fail or hang:
        ctx.on_stop(lambda: print(f"stop hook ran on {{ctx.current_host}}", flush=True))
        time.sleep(600)
    fit_line(ctx)
    (ctx.model_dir / "written_by.txt").write_text(ctx.current_host)
'''


def _use_probe(project: Path) -> None:
    package = project.name.replace("-", "_")
    (project / "src" / package / "probe.py").write_text(PROBE.format(package=package))
    config = project / "mldock.toml"
    text = config.read_text()
    assert f'"{package}.train:train"' in text
    config.write_text(text.replace(f'"{package}.train:train"', f'"{package}.probe:train"'))


@pytest.fixture(scope="module")
def probe_project(built_template) -> Path:
    """The minimal template with the probe as its training function, built once per session."""
    return built_template("minimal", key="multihost", prepare=_use_probe)[0]


def host_facts(log: str) -> dict[str, dict]:
    return {m["host"]: json.loads(m["facts"]) for m in
            re.finditer(r"^(?P<host>algo-\d+) \| HOSTINFO (?P<facts>.*)$", log, re.MULTILINE)}


def run_objects(engine, run_id: str) -> list[str]:
    """The run's containers and networks still on the engine (by the run's label)."""
    label = {"label": f"mldock.run_id={run_id}"}
    return ([f"container {c.name}" for c in engine.containers.list(all=True, filters=label)]
            + [f"network {n.name}" for n in engine.networks.list(filters=label)])


def test_three_hosts_are_laid_out_as_sagemaker_lays_them_out(probe_project, mldock, runs_json,
                                                              engine):
    result = mldock("train", "--instances", "3", cwd=probe_project)
    run_id = result.stdout.strip().splitlines()[-1]
    facts = host_facts(result.stderr)
    hosts = ["algo-1", "algo-2", "algo-3"]
    assert sorted(facts) == hosts, result.stderr[-3000:]
    addresses = facts["algo-1"]["addresses"]
    for rank, host in enumerate(hosts):
        seen = facts[host]
        assert (seen["rank"], seen["world_size"], seen["current_host"], seen["hostname"]) == (
            rank, 3, host, host)
        assert seen["hosts"] == hosts and seen["master"] == "algo-1"
        assert seen["channel"] == ["train.csv"] and seen["channel_writable"] is False
        assert seen["addresses"] == addresses  # every host reaches every other by name
        assert seen["met"] == [h for h in hosts if h != host]  # and is reached by them
    assert len(set(addresses.values())) == 3

    run = next(r for r in runs_json(probe_project) if r["id"] == run_id)
    assert run["status"] == "finished"
    shown = json.loads(mldock("runs", "show", run_id, "--json", cwd=probe_project).stdout)
    assert [m["value"] for m in shown["metric_history"]["rank_seen"]] == [0]  # primary only
    trees = probe_project / ".mldock" / "runs" / run_id / "opt_ml"
    config = json.loads((trees / "algo-2" / "input" / "config" / "resourceconfig.json")
                        .read_text())
    assert config == {"current_host": "algo-2", "hosts": hosts, "network_interface_name": "eth0"}
    assert (trees / "algo-1" / "model" / "written_by.txt").read_text() == "algo-1"
    for secondary in ("algo-2", "algo-3"):
        assert not (trees / secondary / "model" / "written_by.txt").exists()
    exported = probe_project / "exported"
    mldock("runs", "export", run_id, str(exported), cwd=probe_project)
    assert (exported / "written_by.txt").read_text() == "algo-1"
    assert run_objects(engine, run_id) == []


@pytest.mark.parametrize("failing", ["algo-2", "algo-1"])
def test_a_failing_host_stops_the_others_and_the_run_names_it(probe_project, mldock, runs_json,
                                                              engine, failing):
    result = mldock("train", "--instances", "2", "-p", f"fail_host={failing}",
                    cwd=probe_project, check=False)
    assert result.returncode == 1, result.stderr[-3000:]
    run_id = result.stdout.strip().splitlines()[-1]
    message = f"host {failing} failed: RuntimeError: boom on {failing}"
    assert message in result.stderr.strip().splitlines()[-1]
    other = "algo-1" if failing == "algo-2" else "algo-2"
    # the other host was sleeping for 600 s: it was stopped (SIGTERM), its stop hook ran
    assert f"{other} | stop hook ran on {other}" in result.stderr
    run = next(r for r in runs_json(probe_project) if r["id"] == run_id)
    assert run["status"] == "failed"
    shown = json.loads(mldock("runs", "show", run_id, "--json", cwd=probe_project).stdout)
    assert message in json.dumps(shown)
    assert run_objects(engine, run_id) == []


def test_ctrl_c_stops_every_host_and_the_run_is_killed(probe_project, runs_json, engine):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    child = subprocess.Popen([CLI, "train", "--instances", "2", "-p", "hang=true"],
                             cwd=probe_project, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        assert child.stderr is not None
        for line in child.stderr:  # until both hosts are training
            seen.append(line)
            if len(host_facts("".join(seen))) == 2:
                break
        assert len(host_facts("".join(seen))) == 2, "".join(seen)[-3000:]
        child.send_signal(signal.SIGINT)
        rest_out, rest_err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    log = "".join(seen) + rest_err
    assert child.returncode == 130, log[-3000:]
    for host in ("algo-1", "algo-2"):
        assert f"{host} | stop hook ran on {host}" in log
    run_id = rest_out.strip().splitlines()[-1] if rest_out.strip() else runs_json(
        probe_project)[0]["id"]
    run = next(r for r in runs_json(probe_project) if r["id"] == run_id)
    assert run["status"] == "killed"
    deadline = time.monotonic() + 30
    while run_objects(engine, run_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run_objects(engine, run_id) == []


def test_instances_need_the_image(probe_project, mldock):
    result = mldock("train", "--instances", "2", "--no-container", cwd=probe_project,
                    check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: --instances 2 needs the image"), result.stderr
    assert "Traceback" not in result.stderr
    assert mldock("train", "--instances", "0", cwd=probe_project, check=False).returncode == 2

