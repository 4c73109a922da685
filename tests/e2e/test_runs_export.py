"""``mldock runs export`` of a run trained in the image: the container's folder, verified."""

from __future__ import annotations

import json

import pytest
from mldock.local.hashing import hash_tree, sha256_file

pytestmark = pytest.mark.docker


def test_export_of_a_container_run_matches_the_stored_artifact(project_copy, mldock, tmp_path):
    run_id = mldock("train", "-q", "-p", "n_estimators=7", cwd=project_copy).stdout.strip()
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project_copy).stdout)
    assert run["lineage"]["image"].startswith(f"{project_copy.name}:")  # trained in the image
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert model["uri"] is None
    assert model["store"] == (project_copy / ".mldock" / "artifacts").as_uri()

    dest = tmp_path / "exported"
    data = json.loads(mldock("runs", "export", run_id[:8], str(dest), "--json",
                             cwd=project_copy).stdout)
    assert data["dir"] == str(dest) and data["sha256"] == model["sha256"]
    manifest, digest = hash_tree(dest)
    assert digest == model["sha256"] and sum(e["size"] for e in manifest.values()) == model["size"]
    written = json.loads((dest / "mldock-model.json").read_text())
    assert written["run_id"] == run_id
    assert written["files"] and all(sha256_file(dest / rel) == h
                                    for rel, h in written["files"].items())
    trained_in_container = project_copy / ".mldock" / "runs" / run_id / "opt_ml" / "model"
    if trained_in_container.is_dir():  # the container's own output, byte for byte
        assert hash_tree(trained_in_container)[0].keys() == manifest.keys()
