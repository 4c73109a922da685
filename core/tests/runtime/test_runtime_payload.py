"""Payload codecs, tensors, manifests and model-root search, in process (no server needed)."""

from __future__ import annotations

import json

import pytest
from mldock.runtime import payload as pl
from mldock.runtime import tensors
from mldock.runtime.manifest import read_manifest, write_manifest
from mldock.runtime.metrics import Metrics
from mldock.runtime.modeldir import find_model_root, materialize, model_source


@pytest.mark.parametrize(("body", "expected"), [
    (b'[[1, 2]]', ([[1, 2]], None, None)),
    (b'{"instances": [1], "parameters": {"k": 1}}', ([1], "instances", {"k": 1})),
    (b'{"inputs": {"a": 1}}', ({"a": 1}, "inputs", None)),
    (b'{"instances": [1], "other": 2}', ({"instances": [1], "other": 2}, None, None)),
    (b'"text"', ("text", None, None)),
])
def test_decode_json_envelopes(body, expected):
    assert pl.decode(body, "application/json; charset=utf-8") == expected


def test_decode_csv_types():
    rows, _, _ = pl.decode(b"\xef\xbb\xbf1,2.5,abc\n\n-3, 4 ,\"x,y\"\n", "text/csv")
    assert rows == [[1, 2.5, "abc"], [-3, 4, "x,y"]]


@pytest.mark.parametrize(("result", "csv"), [
    ([1, 2], "1\n2\n"),
    ([[1, "a"], [2, "b"]], "1,a\n2,b\n"),
    (7, "7\n"),
    (["x,y"], '"x,y"\n'),
])
def test_encode_csv(result, csv):
    assert pl.encode_csv(result).decode() == csv


def test_encode_csv_refuses_objects():
    with pytest.raises(pl.PayloadError) as info:
        pl.encode_csv([{"a": 1}])
    assert info.value.status == 406


def test_encode_json_converts_array_likes():
    class FakeArray:
        def tolist(self):
            return [1.5, 2.5]

    class FakeScalar:
        def item(self):
            return 3

    assert json.loads(pl.encode_json({"a": FakeArray(), "b": FakeScalar(), "c": {2, 1}})) == \
        {"a": [1.5, 2.5], "b": 3, "c": [1, 2]}
    with pytest.raises(TypeError, match="not JSON serializable"):
        pl.encode_json(object())


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, pl.JSON), ("*/*", pl.JSON), ("text/csv", pl.CSV), ("text/*", pl.CSV),
    ("application/json;q=0.1, text/csv", pl.CSV), ("image/png, application/*", pl.JSON),
])
def test_choose_accept(accept, chosen):
    assert pl.choose_accept(accept) == chosen


def test_choose_accept_406():
    with pytest.raises(pl.PayloadError) as info:
        pl.choose_accept("image/png")
    assert info.value.status == 406


def test_tensor_round_trip_shapes():
    payload, params, wanted = tensors.decode_request({"inputs": [
        {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}],
        "parameters": {"p": 1}})
    assert payload == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] and params == {"p": 1} and not wanted
    out = tensors.to_tensor("y", [[True, False]])
    assert out == {"name": "y", "shape": [1, 2], "datatype": "BOOL", "data": [True, False]}
    assert tensors.to_tensor("s", ["a", "b"])["datatype"] == "BYTES"
    assert tensors.to_tensor("n", 3) == {"name": "n", "shape": [1], "datatype": "INT64",
                                          "data": [3]}
    with pytest.raises(TypeError, match="ragged"):
        tensors.to_tensor("r", [[1, 2], [3]])


def test_numpy_tensor_datatypes():
    numpy = pytest.importorskip("numpy",
                                reason="numpy dtypes map to v2 datatypes only if installed")
    out = tensors.to_tensor("y", numpy.array([[1, 2]], dtype=numpy.int32))
    assert out == {"name": "y", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]}
    assert tensors.to_tensor("f", numpy.float32(1.5))["datatype"] == "FP32"


def test_manifest_and_model_root_search(tmp_path):
    root = tmp_path / "azureml-models" / "iris" / "3" / "model"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "w.bin").write_bytes(b"abc")
    write_manifest(root, predictor="p:P", run_id="r")
    manifest = read_manifest(root)
    assert manifest["files"] == {
        "sub/w.bin": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    assert find_model_root(tmp_path / "azureml-models") == root
    assert find_model_root(tmp_path / "azureml-models", max_depth=1) is None
    assert materialize(str(tmp_path / "azureml-models" / "iris" / "3")) == root
    # no manifest anywhere: the base folder itself is the model root
    plain = tmp_path / "plain"
    plain.mkdir()
    assert materialize(str(plain)) == plain


def test_model_source_per_platform(tmp_path):
    env = {"MLDOCK_OPT_ML": str(tmp_path), "AIP_STORAGE_URI": "gs://b/m",
           "AZUREML_MODEL_DIR": "/var/azureml-app/azureml-models/iris/1"}
    assert model_source("sagemaker", env) == str(tmp_path / "model")
    assert model_source("vertex", env) == "gs://b/m"
    assert model_source("azureml", env) == "/var/azureml-app/azureml-models/iris/1"
    assert model_source("vertex", {**env, "MLDOCK_MODEL_DIR": "/m"}) == "/m"


def test_metrics_histogram_is_cumulative():
    metrics = Metrics()
    metrics.observe("/ping", "GET", 200, 0.0005)
    metrics.observe("/ping", "GET", 200, 0.2)
    text = metrics.render(model_loaded=True).decode()
    assert 'mldock_request_duration_seconds_bucket{route="/ping",le="0.001"} 1' in text
    assert 'mldock_request_duration_seconds_bucket{route="/ping",le="0.25"} 2' in text
    assert 'mldock_request_duration_seconds_bucket{route="/ping",le="+Inf"} 2' in text
    assert 'mldock_requests_total{route="/ping",method="GET",status="200"} 2' in text
