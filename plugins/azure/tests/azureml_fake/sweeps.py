"""Sweep jobs: ``PUT .../jobs/{name}`` with ``jobType: Sweep``, their trials, and run history's
``runs/{run}/children``.

A sweep is checked against ``JobBase`` (the generated models, so ``SweepJob``, its
``TrialComponent``, ``SamplingAlgorithm``, ``EarlyTerminationPolicy`` and ``Objective``), then as
the service would: every ``${{search_space.x}}`` of the trial's command names a search-space
entry and every entry is used; grid sampling takes ``choice`` only, Bayesian sampling ``choice``,
``uniform`` and ``quniform`` and no early termination; limits are positive; the environment and
compute exist. Then, on a thread, up to ``maxConcurrentTrials`` child command jobs
``<sweep>_<n>`` (n from 0) at a time, ``maxTotalTrials`` in all (a grid stops when it is
exhausted), each run by :mod:`.jobrun` for real with the trial's values substituted into its
command. As HyperDrive records them, the sweep's tags hold each child's values (a JSON object
under the child's name) and its properties ``best_child_run_id`` and ``score`` once a child
reported the objective.

What it cannot do: Bayesian sampling (values are drawn at random), early termination (policies
are checked, not applied), MLflow (the objective a child reports is read from its log's
``mldock-metric`` lines, where the service reads the run's MLflow metrics).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import threading
import time
from typing import Any

from . import jobrun, jobs, shapes
from .routing import WORKSPACE, Request, Response, Router, bad_request
from .runhistory import HISTORY
from .workspaces import workspace_id

SEARCH = re.compile(r"\$\{\{\s*search_space\.([A-Za-z0-9_]+)\s*\}\}")
METRIC = re.compile(r"mldock-metric (?P<key>[^\s=]+)=(?P<value>\S+)")
BAYESIAN = {"choice", "uniform", "quniform"}
TERMINAL = {"Completed", "Failed", "Canceled"}


def register(router: Router, fake: Any) -> None:
    """Wrap the jobs module's PUT and cancel (sweeps here, the rest there) and add children."""
    cancels: dict[str, threading.Event] = {}
    put_route = _route(router, "PUT", WORKSPACE + "/jobs/{name}")
    cancel_route = _route(router, "POST", WORKSPACE + "/jobs/{name}/cancel")
    plain_put, plain_cancel = put_route.handler, cancel_route.handler

    def put(request: Request) -> Response:
        body = request.json()
        properties = body.get("properties") or {}
        if str(properties.get("jobType", "")).lower() != "sweep":
            return plain_put(request)
        return _create(fake, request, body, cancels)

    def cancel(request: Request) -> Response:
        resource_id = f"{workspace_id(request, fake)}/jobs/{request.params['name']}"
        event = cancels.get(resource_id.lower())
        if event is not None:
            event.set()
        return plain_cancel(request)

    def children(request: Request) -> Response:
        workspace = workspace_id(request, fake)
        parent = request.params["run"]
        found = [_run_of(fake, doc) for doc in fake.store.children(workspace, "jobs")
                 if (doc["properties"].get("properties") or {}).get("azureml.parentRunId")
                 == parent]
        return Response(200, {"value": found})

    put_route.handler = put
    cancel_route.handler = cancel
    router.add("GET", HISTORY + "/runs/{run}/children", children)


def _route(router: Router, method: str, template: str) -> Any:
    return next(r for r in router.routes if r.method == method and r.template == template)


def _run_of(fake: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """A child job as run history lists it."""
    properties = doc["properties"]
    run = fake.job_runs.get(doc["id"].lower())
    found = {"runId": doc["name"], "status": properties["status"],
             "parentRunId": properties["properties"]["azureml.parentRunId"],
             "startTimeUtc": properties.get("startTimeUtc"),
             "endTimeUtc": properties.get("endTimeUtc"),
             "properties": properties.get("properties") or {}, "tags": {}}
    if run is not None and run.error is not None:
        found["error"] = {"error": {**run.error, "details": []}}
    return found


# --- checks -------------------------------------------------------------------------------------


def check_sweep(properties: dict[str, Any]) -> None:
    space = properties.get("searchSpace") or {}
    if not space:
        raise bad_request("A sweep needs a search space.", target="properties.searchSpace")
    used = set(SEARCH.findall(str((properties.get("trial") or {}).get("command") or "")))
    if used != set(space):
        raise bad_request(f"The trial's command binds {sorted(used)} but the search space has"
                          f" {sorted(space)}.", target="properties.trial.command")
    algorithm = str((properties.get("samplingAlgorithm") or {})
                    .get("samplingAlgorithmType", "")).lower()
    for name, spec in space.items():
        kind = str(spec[0]).lower() if isinstance(spec, list) and spec else ""
        if algorithm == "grid" and kind != "choice":
            raise bad_request(f"Grid sampling supports choice only; {name!r} is {kind}.",
                              target=f"properties.searchSpace.{name}")
        if algorithm == "bayesian" and kind not in BAYESIAN:
            raise bad_request(f"Bayesian sampling supports choice, uniform and quniform;"
                              f" {name!r} is {kind}.", target=f"properties.searchSpace.{name}")
    if algorithm == "bayesian" and properties.get("earlyTermination"):
        raise bad_request("Bayesian sampling does not support early termination policies.",
                          target="properties.earlyTermination")
    limits = properties.get("limits") or {}
    for key in ("maxTotalTrials", "maxConcurrentTrials"):
        if key in limits and int(limits[key]) < 1:
            raise bad_request(f"limits.{key} must be at least 1.",
                              target=f"properties.limits.{key}")


def _create(fake: Any, request: Request, body: dict[str, Any],
            cancels: dict[str, threading.Event]) -> Response:
    name = request.params["name"]
    if not jobs.JOB_NAME.match(name):
        raise bad_request(f"Job name {name!r} is not valid.", target="name")
    shapes.check("JobBase", body)
    properties = body["properties"]
    check_sweep(properties)
    workspace = workspace_id(request, fake)
    trial = properties["trial"]
    image = jobs._image(fake, workspace, trial["environmentId"])
    jobs._check_compute(fake, workspace, {**properties, "resources": trial.get("resources")})
    document = jobrun.new_job(fake, workspace, name, properties)
    document["properties"]["status"] = "Running"
    document["properties"].setdefault("properties", {})
    fake.store.put(document)
    event = threading.Event()
    cancels[document["id"].lower()] = event
    threading.Thread(target=_run, args=(fake, document["id"], image, event), daemon=True,
                     name=f"sweep-{name}").start()
    return Response(201, fake.store.get(document["id"]))


# --- values -------------------------------------------------------------------------------------


def _choices(spec: list[Any]) -> list[Any]:
    return list(spec[1][0])


def _draw(spec: list[Any], rng: random.Random) -> Any:
    kind, args = str(spec[0]).lower(), spec[1]
    if kind == "choice":
        return rng.choice(args[0])
    if kind == "uniform":
        return rng.uniform(args[0], args[1])
    if kind == "loguniform":
        return math.exp(rng.uniform(args[0], args[1]))
    if kind in ("quniform", "qloguniform"):
        raw = rng.uniform(args[0], args[1])
        raw = math.exp(raw) if kind == "qloguniform" else raw
        return round(raw / args[2]) * args[2]
    if kind == "randint":
        return rng.randrange(int(args[0]))
    raise ValueError(f"the fake cannot sample {kind}")


def value_sets(properties: dict[str, Any]) -> list[dict[str, Any]]:
    space = properties["searchSpace"]
    total = int((properties.get("limits") or {}).get("maxTotalTrials") or 1000)
    names = sorted(space)
    algorithm = str(properties["samplingAlgorithm"]["samplingAlgorithmType"]).lower()
    if algorithm == "grid":
        grid = itertools.product(*(_choices(space[n]) for n in names))
        return [dict(zip(names, combo, strict=True)) for combo in itertools.islice(grid, total)]
    seed = properties["samplingAlgorithm"].get("seed")
    rng = random.Random(seed)  # noqa: S311 - sampling values, not secrets
    return [{n: _draw(space[n], rng) for n in names} for _ in range(total)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return json.dumps(value)


# --- running ------------------------------------------------------------------------------------


def _child(fake: Any, sweep_id: str, number: int, values: dict[str, Any], image: str) -> str:
    sweep = fake.store.get(sweep_id)
    properties = sweep["properties"]
    trial = properties["trial"]
    name = f"{sweep['name']}_{number}"
    command = SEARCH.sub(lambda m: _text(values[m[1]]), str(trial["command"]))
    child = {"jobType": "Command", "command": command, "environmentId": trial["environmentId"],
             "environmentVariables": trial.get("environmentVariables") or {},
             "distribution": trial.get("distribution"), "resources": trial.get("resources"),
             "computeId": properties.get("computeId"), "inputs": properties.get("inputs") or {},
             "outputs": {k: {key: v for key, v in spec.items() if key != "uri"}
                         for k, spec in (properties.get("outputs") or {}).items()},
             "experimentName": properties.get("experimentName"), "displayName": name,
             "properties": {"azureml.parentRunId": sweep["name"]}, "tags": {}}
    document = jobrun.new_job(fake, sweep_id.rsplit("/jobs/", 1)[0], name,
                              {k: v for k, v in child.items() if v is not None})
    fake.store.put(document)
    tags = {**(properties.get("tags") or {}), name: json.dumps(values)}
    fake.store.update(sweep_id, tags=tags)
    jobrun.start(fake, document["id"], image)
    return str(document["id"])


def _objective(fake: Any, child_id: str, metric: str) -> float | None:
    run = fake.job_runs.get(child_id.lower())
    found = None
    for path in (run.log_files.values() if run else []):
        for line in path.read_text(errors="replace").splitlines():
            match = METRIC.search(line)
            if match and match["key"] == metric:
                try:
                    found = float(match["value"])
                except ValueError:
                    continue
    return found


def _wait(fake: Any, ids: list[str], cancelled: threading.Event) -> None:
    while True:
        states = [(fake.store.get(i) or {}).get("properties", {}).get("status") for i in ids]
        if all(s in TERMINAL for s in states):
            return
        if cancelled.is_set():
            for child in ids:
                jobrun.cancel(fake, child)
        time.sleep(0.2)


def _run(fake: Any, sweep_id: str, image: str, cancelled: threading.Event) -> None:
    properties = fake.store.get(sweep_id)["properties"]
    parallel = int((properties.get("limits") or {}).get("maxConcurrentTrials") or 1)
    metric = properties["objective"]["primaryMetric"]
    goal = 1.0 if str(properties["objective"]["goal"]).lower() == "maximize" else -1.0
    sets = value_sets(properties)
    best: tuple[float, str] | None = None
    statuses: list[str] = []
    for first in range(0, len(sets), parallel):
        if cancelled.is_set():
            break
        ids = [_child(fake, sweep_id, first + k, values, image)
               for k, values in enumerate(sets[first:first + parallel])]
        _wait(fake, ids, cancelled)
        for child_id in ids:
            statuses.append(fake.store.get(child_id)["properties"]["status"])
            value = _objective(fake, child_id, metric)
            if value is not None and (best is None or goal * value > goal * best[0]):
                best = (value, child_id.rsplit("/", 1)[-1])
        if best is not None:
            fake.store.update(sweep_id, properties={"best_child_run_id": best[1],
                                                    "score": repr(best[0])})
    status = ("Canceled" if cancelled.is_set() else
              "Completed" if "Completed" in statuses else "Failed")
    fake.store.update(sweep_id, status=status, endTimeUtc=jobrun.now())
