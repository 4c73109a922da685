"""The project templates (``sklearn``, ``minimal``, ``pytorch``, ``xgboost``): what a rendered
project must be, file by file.

The pytorch and xgboost projects' own tests need their frameworks, which this environment does
not install: they run inside the built images (``tests/e2e/test_templates_*.py``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest

PROJECT_TEMPLATES = ["sklearn", "minimal", "pytorch", "xgboost"]
RUNNABLE_HERE = ["sklearn", "minimal"]  # their frameworks are in this environment


@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_rendered_config_validates(render, mldock, template):
    project = render(template, "my-model")
    result = mldock("config", "validate", cwd=project)
    assert result.code == 0, result.err
    assert result.out.startswith("mldock.toml: valid")


@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_config_names_the_rendered_code(render, template):
    project = render(template, "my-model")
    config = tomllib.loads((project / "mldock.toml").read_text())
    assert config["project"]["source"] == "src"
    assert config["project"]["requirements"] == "requirements.txt"
    for key in ("train", "predictor"):
        module, _, obj = config["project"][key].partition(":")
        source = project / "src" / (module.replace(".", "/") + ".py")
        assert source.is_file(), source
        assert re.search(rf"^(def|class) {obj}\b", source.read_text(), re.MULTILINE), obj
    for channel, location in config["data"].items():
        assert (project / location).is_file(), (channel, location)
    assert (project / "requirements.txt").is_file()


@pytest.mark.parametrize("template", [*PROJECT_TEMPLATES, "plugin"])
def test_no_template_syntax_left_over(render, templates, text_files, template):
    """A typo in a variable name renders as empty text or stays as '{{': both are caught here."""
    location = template if template != "plugin" else str(templates / "plugin")
    project = render(location, "leftover")
    files = text_files(project)
    assert files, "nothing rendered"
    for path, text in files.items():
        assert "{{" not in text and "{%" not in text and "cookiecutter." not in text, path
        assert "cookiecutter" not in path, path


@pytest.mark.parametrize("template", RUNNABLE_HERE)
def test_project_tests_pass(render, run, template):
    """The generated project's own tests, run as its author would, with this interpreter."""
    if template == "sklearn" and importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed in this environment: it belongs in the"
                    " workspace's dev dependency group")
    project = render(template, "my-model")
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                 cwd=project, env={"PYTHONPATH": str(project / "src"),
                                   "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.match(r"^\d+ passed in ", summary), summary  # no skips, no failures


@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_dockerignore_keeps_secrets_data_and_tests_out(render, template):
    """Checked with the docker SDK's own matcher: what ``docker build`` would send."""
    from docker.utils.build import exclude_paths

    project = render(template, "my-model")
    planted = [".git/config", ".env", ".env.local", "credentials", "conf/credentials",
               ".aws/credentials", "deploy-key.pem", ".mldock/runs.db", ".venv/bin/python",
               "src/my_model/__pycache__/train.cpython-311.pyc"]
    for rel in planted:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("secret")
    lines = (project / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sent = exclude_paths(str(project), patterns)
    data_files = [p.relative_to(project).as_posix() for p in (project / "data").rglob("*")]
    test_files = [p.relative_to(project).as_posix() for p in (project / "tests").rglob("*")]
    assert data_files and test_files
    leaked = sorted(set(planted + data_files + test_files) & sent)
    assert not leaked, leaked
    for needed in ("mldock.toml", "requirements.txt", "src/my_model/train.py",
                   "src/my_model/predict.py", "src/my_model/__init__.py"):
        assert needed in sent, needed


def _uncomment_env(text: str, deployer: str, project: str) -> str:
    """Uncomment the ``deployer``'s commented environment block in mldock.toml: exactly the lines
    ``mldock init`` wrote from that deployer's example, whatever other deployers are installed."""
    from mldock.host import get_host
    from mldock.host.examples import PROJECT_PLACEHOLDER, commented

    example = get_host().registry.records("deployer")[deployer].record.example
    example = example.replace(PROJECT_PLACEHOLDER, project)
    block = commented(example)
    assert block in text, f"mldock.toml has no commented {deployer} block"
    return text.replace(block, example.strip("\n") + "\n")


@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_aws_environment_is_ready_to_fill_in(render, template):
    """Uncommented, the [env.aws] block is valid core config; only the missing plugins stop it."""
    from mldock.config import load_config
    from mldock.errors import ConfigError
    project = render(template, "my-model")
    text = (project / "mldock.toml").read_text()
    assert "arn:aws:iam::<account>:role/<name>" in text and "ml.m5.large" in text
    assert "s3://<bucket>/my-model" in text
    aws = project / "aws.toml"
    aws.write_text(_uncomment_env(text, "sagemaker", "my-model"))

    config = load_config(path=aws, env="aws")  # core sections only, no plugin lookups
    assert config.model.deploy.deployer == "sagemaker"
    assert config.model.storage.uri == "s3://<bucket>/my-model"
    assert config.data["deploy"]["sagemaker"]["instance_type"] == "ml.m5.large"

    from mldock.host.loader import PluginHost

    registry = PluginHost(use_entry_points=False, quiet=True).registry  # as with core alone
    with pytest.raises(ConfigError) as caught:
        load_config(path=aws, env="aws", registry=registry)
    assert "pip install mldock-" in str(caught.value)
    assert load_config(path=project / "mldock.toml", registry=registry).env is None

    # with the AWS plugins installed (as in this workspace) the filled-in block validates
    from mldock.host import get_host

    filled = (aws.read_text().replace("<account>", "123456789012").replace("<name>", "sm-role")
              .replace("<bucket>", "my-bucket"))
    aws.write_text(filled)
    full = get_host().registry
    if "sagemaker" in full.records("deployer"):
        options = load_config(path=aws, env="aws", registry=full).options("deployer", "sagemaker")
        assert options.role_arn == "arn:aws:iam::123456789012:role/sm-role"


@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_readme_walks_the_lifecycle(render, template):
    project = render(template, "my-model")
    readme = (project / "README.md").read_text()
    for command in ("mldock build", "mldock train", "mldock deploy",
                    "mldock predict --data sample.json", "mldock runs list", "mldock undeploy",
                    "pip install mldock-aws"):
        assert command in readme, command


@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_template_hook_refuses_bad_answers(template, templates, tmp_path):
    """Answers typed at the prompts go through the same rules as ``mldock init`` NAME."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    with pytest.raises(FailedHookException):
        cookiecutter(str(templates / template), no_input=True, output_dir=str(tmp_path),
                     extra_context={"project_name": "ok", "package_name": "not-valid"})
    assert list(tmp_path.iterdir()) == []


def test_sklearn_data_is_the_classic_iris_set(render):
    """150 rows, 50 per class, 4 numeric features: the same numbers scikit-learn ships."""
    import csv

    project = render("sklearn", "iris")
    with (project / "data" / "iris.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    body = rows[1:]
    assert len(body) == 150
    assert {label: sum(r[4] == label for r in body) for label in {r[4] for r in body}} == {
        "setosa": 50, "versicolor": 50, "virginica": 50}
    if importlib.util.find_spec("sklearn") is not None:
        from sklearn.datasets import load_iris

        expected = load_iris().data.tolist()
        assert [[float(v) for v in r[:4]] for r in body] == expected


def test_sample_requests_fit_the_features(render):
    import json

    project = render("sklearn", "iris")
    instances = json.loads((project / "sample.json").read_text())["instances"]
    assert all(len(row) == 4 for row in instances)
    csv_rows = [line.split(",") for line in (project / "sample.csv").read_text().splitlines()]
    assert [[float(v) for v in row] for row in csv_rows] == instances


def test_sklearn_image_stays_small(render):
    """The image installs numpy, scikit-learn and joblib: no pandas."""
    project = render("sklearn", "iris")
    requirements = [line.split("#")[0].strip() for line in
                    (project / "requirements.txt").read_text().splitlines()]
    names = {re.split(r"[<>=!~\[ ]", line)[0].lower() for line in requirements if line}
    assert names == {"scikit-learn", "numpy", "joblib"}
    code = "".join(p.read_text() for p in (project / "src").rglob("*.py"))
    assert "pandas" not in code


def test_minimal_needs_no_framework(render):
    project = render("minimal", "tiny")
    requirements = [line for line in (project / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == []
    code = Path(project / "src" / "tiny")
    imports = set()
    for source in code.glob("*.py"):
        imports |= set(re.findall(r"^(?:from|import) (\w+)", source.read_text(), re.MULTILINE))
    assert imports <= set(sys.stdlib_module_names) | {"tiny", "__future__"}, imports


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("template", RUNNABLE_HERE)
def test_trains_and_serves_with_the_mldock_runtime(render, tmp_path, template):
    """The rendered code under mldock's real runtime (no Docker): train, then serve on 127.0.0.1."""
    import json
    import os
    import subprocess
    import time
    import urllib.error
    import urllib.request

    if template == "sklearn" and importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed in this environment: it belongs in the"
                    " workspace's dev dependency group")
    project = render(template, "rt-model")
    config = tomllib.loads((project / "mldock.toml").read_text())
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    env.update({
        "PYTHONPATH": str(project / "src"), "MLDOCK_PLATFORM": "local",
        "MLDOCK_TRAIN": config["project"]["train"],
        "MLDOCK_PREDICTOR": config["project"]["predictor"],
        "MLDOCK_MODEL_DIR": str(run_dir / "model"), "MLDOCK_OUTPUT_DIR": str(run_dir / "output"),
        "MLDOCK_CHECKPOINT_DIR": str(run_dir / "checkpoints"), "MLDOCK_RUN_ID": "template-test",
        "MLDOCK_INPUT_TRAIN": str((project / config["data"]["train"]).parent),
        "MLDOCK_HYPERPARAMETERS": json.dumps(config["hyperparameters"]),
    })
    trained = subprocess.run([sys.executable, "-m", "mldock.runtime", "train"], env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert trained.returncode == 0, trained.stderr[-3000:]
    manifest = json.loads((run_dir / "model" / "mldock-model.json").read_text())
    assert manifest["predictor"] == config["project"]["predictor"]
    metrics = [json.loads(line) for line in
               (run_dir / "output" / "mldock-metrics.jsonl").read_text().splitlines()]
    assert metrics and all({"key", "value"} <= set(m) for m in metrics)

    port = _free_port()
    env["MLDOCK_PORT"] = str(port)
    server = subprocess.Popen([sys.executable, "-m", "mldock.runtime", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "the model server did not become ready in 60 s"
            time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=(project / "sample.json").read_bytes(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = json.loads(reply.read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    predictions = body["predictions"] if isinstance(body, dict) else body
    instances = json.loads((project / "sample.json").read_text())["instances"]
    if template == "sklearn":
        assert predictions == ["setosa", "virginica"]  # rows 1 and 146 of the iris data
    else:
        model = json.loads((run_dir / "model" / "model.json").read_text())
        assert predictions == pytest.approx(
            [model["slope"] * x + model["intercept"] for x in instances])
