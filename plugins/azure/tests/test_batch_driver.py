"""The batch driver that runs inside the image, run here as the job runs it: ``python -c SOURCE``
with the real ``mldock-runtime serve`` it starts on loopback, over real files.

A toy predictor (weighted row sums) stands in for the user's; the runtime decodes the bodies,
so what is checked is the driver's framing (whole files, line runs, JSON Lines answers, one
``.out`` per input file) and its failures (a refused record, a model that cannot load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mldock.runtime.manifest import write_manifest
from mldock.testing.processes import free_port
from mldock_azure import batch_driver
from mldock_azure.batch import DRIVER, driver_command

PREDICTOR = textwrap.dedent('''
    import json


    class Predictor:
        def load(self, model_dir):
            self.weight = json.loads((model_dir / "weights.json").read_text())["w"]

        def predict(self, payload):
            if isinstance(payload, dict):
                payload = payload.get("instances", [payload])
            answers = []
            for row in payload:
                if row and row[0] == "bad":
                    raise ValueError("row holds 'bad'")
                answers.append(sum(float(x) for x in row) * self.weight)
            return answers
''')


@pytest.fixture
def model(tmp_path):
    """A trained toy model one level below the mount, as Azure ML mounts a registered model."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "toy_batch_predictor.py").write_text(PREDICTOR)
    folder = tmp_path / "mount" / "toy"
    folder.mkdir(parents=True)
    (folder / "weights.json").write_text(json.dumps({"w": 2}))
    write_manifest(folder, predictor="toy_batch_predictor:Predictor", run_id="run1")
    return tmp_path / "mount", code


def drive(model, data: Path, out: Path, content_type: str, accept: str = "-",
          **env: str) -> subprocess.CompletedProcess:
    mount, code = model
    variables = {**os.environ, "PYTHONPATH": str(code), "MLDOCK_BATCH_PORT": str(free_port()),
                 "MLDOCK_LOAD_FAILURE_GRACE": "0", "AZUREML_RUN_ID": "batch-job", **env}
    bindir = str(Path(sys.executable).parent)  # where mldock-runtime is installed
    variables["PATH"] = bindir + os.pathsep + variables.get("PATH", "")
    return subprocess.run([sys.executable, "-c", DRIVER.read_text(), str(mount), str(data),
                           str(out), content_type, accept], env=variables, capture_output=True,
                          text=True, timeout=120, check=False)


def test_csv_and_json_files_answered_one_out_file_each(model, tmp_path):
    data, out = tmp_path / "in", tmp_path / "out"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("1,2\n3,4\n\n5,6\n")
    (data / "sub" / "b.csv").write_text("10,0\n")
    (data / ".hidden").write_text("ignored")
    done = drive(model, data, out, "text/csv")
    assert done.returncode == 0, done.stderr + done.stdout
    assert (out / "a.csv.out").read_text().splitlines() == ["6.0", "14.0", "22.0"]
    assert (out / "sub" / "b.csv.out").read_text() == "20.0\n"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.csv.out", "b.csv.out"]
    assert "mldock-batch: a.csv: 1 request(s) -> a.csv.out" in done.stdout
    assert "mldock-batch: 2 file(s) done" in done.stdout

    json_in, json_out = tmp_path / "json-in", tmp_path / "json-out"
    json_in.mkdir()
    (json_in / "req.json").write_text(json.dumps({"instances": [[1, 1], [2, 2]]}))
    done = drive(model, json_in, json_out, "application/json")
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads((json_out / "req.json.out").read_text()) == {"predictions": [4.0, 8.0]}


def test_big_line_files_go_in_runs_of_whole_lines(model, tmp_path):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    rows = [f"{i},1" for i in range(200)]
    (data / "many.csv").write_text("\n".join(rows) + "\n")
    done = drive(model, data, out, "text/csv", MLDOCK_BATCH_CHUNK_BYTES="300")
    assert done.returncode == 0, done.stderr + done.stdout
    answers = (out / "many.csv.out").read_text().splitlines()
    assert answers == [f"{(i + 1) * 2:.1f}" for i in range(200)]  # every row once, in order
    requests = int(done.stdout.split("many.csv: ")[1].split(" request")[0])
    assert requests >= len("\n".join(rows)) // 300  # several requests, none over the limit


def test_a_refused_record_fails_naming_the_file(model, tmp_path):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    (data / "ok.csv").write_text("1,1\n")
    (data / "broken.csv").write_text("1,1\nbad,2\n")
    done = drive(model, data, out, "text/csv")
    assert done.returncode == 1
    assert "broken.csv: the server answered 400: " in done.stdout
    assert "row holds 'bad'" in done.stdout


def test_a_model_that_cannot_load_ends_the_job(model, tmp_path):
    mount, _ = model
    (mount / "toy" / "weights.json").unlink()
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_text("1,1\n")
    done = drive(model, data, tmp_path / "out", "text/csv")
    assert done.returncode == 3
    assert "the server exited with code 3 before the model was loaded" in done.stdout


def test_no_input_files_is_a_failure(model, tmp_path):
    (tmp_path / "in").mkdir()
    done = drive(model, tmp_path / "in", tmp_path / "out", "text/csv")
    assert done.returncode == 1 and "no input files under" in done.stdout


def test_the_command_line_carries_the_driver_verbatim():
    """Azure ML substitutes ``${{…}}`` bindings in the command and runs it with a POSIX shell:
    the driver's source survives both, and needs nothing beyond the standard library."""
    command = driver_command()
    assert command.startswith("python3 -c ")
    assert command.endswith("${{inputs.model}} ${{inputs.data}} ${{outputs.predictions}}"
                            " ${{inputs.content_type}} ${{inputs.accept}}")
    done = subprocess.run(["sh", "-c", command.replace("python3 -c", "printf %s", 1)
                           .split(" ${{")[0]], capture_output=True, text=True, check=True)
    assert done.stdout == DRIVER.read_text()
    imported = {line.split()[1].split(".")[0] for line in DRIVER.read_text().splitlines()
                if line.startswith(("import ", "from "))}
    assert imported <= set(sys.stdlib_module_names)
    assert batch_driver.main(["only-one"]) == 2
