"""Vertex display names and labels, and image references: the platform's naming rules."""

from __future__ import annotations

import pytest
from mldock_gcp.names import (
    LABEL_KEY,
    LABEL_VALUE,
    MAX_DISPLAY_NAME,
    display_name,
    image_host,
    image_name,
    is_pullable,
    label_value,
    labels,
    training_job_name,
)


@pytest.mark.parametrize(("text", "value"), [
    ("Iris", "iris"), ("my project.v2", "my-project-v2"), ("--a__b--", "a__b"),
    ("20260101-abc", "20260101-abc"), ("Ünïcode ok", "n-code-ok"), ("", "")])
def test_label_values_follow_vertex_rules(text, value):
    assert label_value(text) == value
    assert LABEL_VALUE.match(label_value(text))


def test_label_values_are_cut_to_63_without_a_trailing_hyphen():
    value = label_value("a" * 62 + "-" + "b" * 10)
    assert value == "a" * 62 and len(value) <= 63


def test_mldocks_labels_join_the_users_sorted():
    found = labels({"team": "ml", "cost-center": "42"}, project="Iris Model", role="training",
                   run_id="R1ab", endpoint="iris-prod")
    assert found == {"cost-center": "42", "mldock-endpoint": "iris-prod",
                     "mldock-project": "iris-model", "mldock-role": "training",
                     "mldock-run": "r1ab", "team": "ml"}
    assert list(found) == sorted(found)
    assert all(LABEL_KEY.match(key) for key in found)


def test_labels_vertex_would_refuse_are_a_programming_error():
    with pytest.raises(ValueError, match="label Team"):
        labels({"Team": "x"}, project="p", role="training")
    with pytest.raises(ValueError, match="at most 64"):
        labels({f"k{i}": "v" for i in range(62)}, project="p", role="training", run_id="r")


def test_display_names_keep_the_tail_and_fit_128():
    assert training_job_name("iris", "20260101-abcd") == "iris-20260101-abcd"
    long = training_job_name("x" * 300, "run-42")
    assert len(long) == MAX_DISPLAY_NAME and long.endswith("-run-42")
    assert display_name("my project", "", "  ") == "my-project"
    assert display_name() == "mldock"
    assert len(display_name("a", "b" * 200)) == MAX_DISPLAY_NAME


@pytest.mark.parametrize(("image", "host", "name"), [
    ("iris:0123", None, "iris"), ("team/iris:0123", None, "iris"),
    ("localhost/iris", "localhost", "iris"),
    ("127.0.0.1:5000/p/r/iris@sha256:" + "a" * 64, "127.0.0.1:5000", "iris"),
    ("europe-west4-docker.pkg.dev/proj/mldock/Iris_Model:1", "europe-west4-docker.pkg.dev",
     "iris_model")])
def test_image_references(image, host, name):
    assert image_host(image) == host
    assert image_name(image) == name


def test_what_vertex_can_pull():
    assert is_pullable("us-central1-docker.pkg.dev/p/mldock/iris@sha256:" + "a" * 64)
    assert is_pullable("gcr.io/p/iris:1") and is_pullable("eu.gcr.io/p/iris:1")
    assert not is_pullable("iris:0123")
    assert not is_pullable("docker.io/library/iris:1")
    assert is_pullable("127.0.0.1:5000/p/mldock/iris:1", ("127.0.0.1:5000",))
