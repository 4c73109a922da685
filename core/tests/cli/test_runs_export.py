"""``mldock runs export`` and the locations ``runs show --json`` prints, through the real CLI.

One sklearn project per module, named uniquely and trained with ``--no-container`` (no Docker):
its model lives in the project's content-addressed store, where no folder of that name exists.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from mldock.interfaces import ArtifactRef
from mldock.interfaces.tracking import artifact_location
from mldock.local.hashing import hash_tree, sha256_file

from .conftest import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(project folder, run id) of one finished ``--no-container`` run."""
    root = tmp_path_factory.mktemp("export")
    name = f"iris-{uuid.uuid4().hex[:8]}"
    created = run_cli("init", name, "--template", "sklearn", "--no-input", cwd=root)
    assert created.returncode == 0, created.stderr
    project = root / name
    train = run_cli("train", "-q", "--no-container", "-p", "n_estimators=5", cwd=project)
    assert train.returncode == 0, train.stderr
    return project, train.stdout.strip()


def show(project: Path, run_id: str) -> dict:
    result = run_cli("runs", "show", run_id, "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def model_of(run: dict) -> dict:
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run['id']}/model"]
    return model


def local_paths(value) -> list[Path]:
    """Every ``file://`` location anywhere in a JSON document."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in local_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in local_paths(v)]
    if isinstance(value, str) and value.startswith("file://"):
        return [Path(unquote(urlsplit(value).path))]
    return []


def test_every_location_runs_show_prints_exists(trained):
    project, run_id = trained
    run = show(project, run_id)
    model = model_of(run)
    assert model["kind"] == "tree" and model["uri"] is None
    assert Path(unquote(urlsplit(model["store"]).path)) == project / ".mldock" / "artifacts"
    paths = local_paths(run)
    assert paths, "runs show --json names no local location at all"
    missing = [p for p in paths if not p.exists()]
    assert not missing, f"runs show --json names locations that do not exist: {missing}"
    listed = json.loads(run_cli("runs", "list", "--json", cwd=project).stdout)
    assert [p for p in local_paths(listed) if not p.exists()] == []


def test_export_by_prefix_writes_the_stored_files(trained, tmp_path):
    project, run_id = trained
    result = run_cli("runs", "export", run_id[:9], cwd=project)
    assert result.returncode == 0, result.stderr
    target = project / f"{run_id}-model"
    assert result.stdout.strip() == str(target)
    try:
        manifest = json.loads((target / "mldock-model.json").read_text())
        assert manifest["files"], "the model manifest lists no files"
        for rel, digest in manifest["files"].items():
            assert sha256_file(target / rel) == digest, rel
        _, tree_digest = hash_tree(target)
        assert tree_digest == model_of(show(project, run_id))["sha256"]
    finally:
        import shutil

        shutil.rmtree(target, ignore_errors=True)


def test_export_json_to_a_given_folder(trained, tmp_path):
    project, run_id = trained
    dest = tmp_path / "deep" / "out"
    result = run_cli("runs", "export", run_id, str(dest), "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    model = model_of(show(project, run_id))
    assert data["dir"] == str(dest) and data["run_id"] == run_id
    assert data["sha256"] == model["sha256"] and data["size"] == model["size"]
    assert data["store"] == model["store"] and data["files"] == len(list(dest.iterdir()))
    assert sorted(os.listdir(dest.parent)) == ["out"]  # no staging folder left behind


def test_non_empty_folder_needs_force(trained, tmp_path):
    project, run_id = trained
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    refused = run_cli("runs", "export", run_id, str(dest), cwd=project)
    assert refused.returncode == 2 and "not empty" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (dest / "mine.txt").read_text() == "keep me"

    forced = run_cli("runs", "export", run_id, str(dest), "--force", cwd=project)
    assert forced.returncode == 0, forced.stderr
    assert not (dest / "mine.txt").exists() and (dest / "mldock-model.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["taken"]  # old folder and staging removed

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("runs", "export", run_id, str(empty), cwd=project).returncode == 0
    assert (empty / "mldock-model.json").is_file()


def test_force_never_replaces_the_project(trained):
    project, run_id = trained
    result = run_cli("runs", "export", run_id, ".", "--force", cwd=project)
    assert result.returncode == 2 and "would be replaced" in result.stderr
    assert (project / "mldock.toml").is_file()


def test_unknown_run_is_one_line_exit_4(trained, tmp_path):
    project, _ = trained
    result = run_cli("runs", "export", "nosuchrun", str(tmp_path / "x"), cwd=project)
    assert result.returncode == 4 and "nosuchrun" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_corrupt_store_fails_and_writes_nothing(trained, tmp_path):
    """A blob changed behind the store's back: the export stops, and DIR never appears."""
    project, run_id = trained
    first = tmp_path / "good"
    assert run_cli("runs", "export", run_id, str(first), cwd=project).returncode == 0
    digest = sha256_file(first / "model.joblib")
    blob = project / ".mldock" / "artifacts" / "blobs" / "sha256" / digest[:2] / digest[2:]
    original = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(b"x" * len(original))
    try:
        dest = tmp_path / "bad"
        result = run_cli("runs", "export", run_id, str(dest), cwd=project)
        assert result.returncode != 0 and "corrupt" in result.stderr
        assert "Traceback" not in result.stderr
        assert not dest.exists() and sorted(os.listdir(tmp_path)) == ["good"]
    finally:
        blob.write_bytes(original)
        blob.chmod(0o444)


def test_failed_run_has_no_model(trained):
    project, _ = trained
    package = project / "src" / project.name.replace("-", "_")
    train_py = package / "train.py"
    source = train_py.read_text()
    train_py.write_text("def train(ctx):\n    raise ValueError('no data today')\n")
    try:
        failed = run_cli("train", "-q", "--no-container", cwd=project)
        assert failed.returncode != 0
        run_id = failed.stdout.strip()
        result = run_cli("runs", "export", run_id, cwd=project)
        assert result.returncode == 4 and "has no stored model" in result.stderr
        assert not (project / f"{run_id}-model").exists()
    finally:
        train_py.write_text(source)


def test_remote_artifact_keeps_its_uri_and_stored_one_names_its_store():
    remote = ArtifactRef(key="runs/r/model", uri="s3://b/jobs/r/output/model.tar.gz", sha256="",
                         size=0, kind="remote")
    assert artifact_location(remote)["uri"] == "s3://b/jobs/r/output/model.tar.gz"
    assert artifact_location(remote)["store"] is None
    stored = ArtifactRef(key="runs/r/model", uri="s3://b/p/runs/r/model", sha256="a" * 64,
                         size=3, kind="tree")
    assert artifact_location(stored) == {"key": "runs/r/model", "kind": "tree", "sha256": "a" * 64,
                                         "size": 3, "store": "s3://b/p", "uri": None}
