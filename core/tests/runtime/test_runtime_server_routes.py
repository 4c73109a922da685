"""Every route of the contract's serving table against one real server on 127.0.0.1.

The server runs the toy predictor (weighted row sums, weight 2) in a subprocess started with
``python -S`` and only the copied runtime on PYTHONPATH, as in the image.
"""

from __future__ import annotations

import json
import re

import pytest

JSON = {"Content-Type": "application/json"}


def _counter(text: str, route: str, status: int, method: str) -> int:
    match = re.search(rf'mldock_requests_total{{route="{re.escape(route)}",method="{method}",'
                      rf'status="{status}"}} (\d+)', text)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("path", ["/ping", "/health", "/v2/health/live", "/v2/health/ready",
                                  "/v2/models/toy/ready"])
def test_health_routes_200(server, path):
    status, headers, body = server.request("GET", path)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)


def test_head_on_a_get_route(server):
    status, headers, body = server.request("HEAD", "/ping")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_invocations_raw_json(server):
    assert server.post_json("/invocations", [[1, 2], [3, 4]]) == (200, [6, 14])


def test_invocations_instances_are_wrapped(server):
    assert server.post_json("/invocations", {"instances": [[1, 2]]}) == (200, {"predictions": [6]})


def test_invocations_inputs_are_unwrapped_not_wrapped(server):
    assert server.post_json("/invocations", {"inputs": [[1, 1]]}) == (200, [4])


def test_invocations_parameters_reach_the_predictor(server):
    assert server.post_json("/invocations", {"instances": [[1, 1]], "parameters": {"scale": 10}}) \
        == (200, {"predictions": [40]})


def test_score_is_invocations(server):
    assert server.post_json("/score", [[0.5, 0.5]]) == (200, [2.0])


def test_no_content_type_means_json(server):
    status, _, body = server.request("POST", "/invocations", "[[1, 2]]")
    assert status == 200 and json.loads(body) == [6]


def test_vertex_predict(server):
    status, body = server.post_json("/predict", {"instances": [[1, 2], [2, 2]],
                                                 "parameters": {"scale": 2}})
    assert status == 200 and body == {"predictions": [12, 16]}


def test_vertex_predict_needs_instances(server):
    status, body = server.post_json("/predict", [[1, 2]])
    assert status == 400 and "instances" in body["error"]


def test_csv_in_csv_out(server):
    status, headers, body = server.request("POST", "/invocations", "1,2\n3,4.5\n",
                                           {"Content-Type": "text/csv", "Accept": "text/csv"})
    assert status == 200 and headers["content-type"] == "text/csv"
    assert body.decode().splitlines() == ["6", "15.0"]


def test_csv_in_json_out_by_default(server):
    status, headers, body = server.request("POST", "/invocations", "1,2\n",
                                           {"Content-Type": "text/csv; charset=utf-8"})
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == [6]


def test_json_lines_in_and_out(server):
    status, headers, body = server.request(
        "POST", "/invocations", '[1, 2]\n\n[3, 4]\n',
        {"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"})
    assert status == 200 and headers["content-type"] == "application/jsonlines"
    assert body == b"6\n14\n"


def test_accept_with_q_values(server):
    status, headers, _ = server.request(
        "POST", "/invocations", "[[1,2]]",
        {**JSON, "Accept": "application/json;q=0.5, text/csv;q=0.9"})
    assert status == 200 and headers["content-type"] == "text/csv"


def test_unacceptable_accept_is_406(server):
    status, _, body = server.request("POST", "/invocations", "[[1,2]]",
                                     {**JSON, "Accept": "image/png"})
    assert status == 406 and "image/png" in json.loads(body)["error"]


def test_execution_parameters(server):
    status, _, body = server.request("GET", "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD",
                                "MaxPayloadInMB": 6}


def test_v2_server_and_model_metadata(server):
    status, _, body = server.request("GET", "/v2")
    assert status == 200 and json.loads(body)["name"] == "mldock"
    status, _, body = server.request("GET", "/v2/models/toy")
    meta = json.loads(body)
    assert status == 200 and meta["name"] == "toy" and meta["platform"] == "mldock"


def test_v2_infer_flat_data(server):
    request = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                                       "data": [1, 2, 3, 4]}]}
    status, body = server.post_json("/v2/models/toy/infer", request)
    assert status == 200
    assert body == {"model_name": "toy", "id": "r1", "outputs": [
        {"name": "output-0", "shape": [2], "datatype": "FP64", "data": [6.0, 14.0]}]}


def test_v2_infer_nested_data_int_output_and_versions_route(server):
    request = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "INT64",
                           "data": [[1, 2]]}], "outputs": [{"name": "y"}]}
    status, body = server.post_json("/v2/models/toy/versions/3/infer", request)
    assert status == 200
    assert body["outputs"] == [{"name": "y", "shape": [1], "datatype": "INT64", "data": [6]}]


def test_v2_infer_several_inputs_several_outputs(server):
    request = {"inputs": [
        {"name": "a", "shape": [1, 2], "datatype": "INT32", "data": [1, 1]},
        {"name": "b", "shape": [2, 1], "datatype": "INT32", "data": [5, 6]}]}
    status, body = server.post_json("/v2/models/toy/infer", request)
    assert status == 200
    assert {o["name"]: o["data"] for o in body["outputs"]} == {"a": [4], "b": [10, 12]}


@pytest.mark.parametrize("request_body", [
    {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP128", "data": [1]}]},
    {"inputs": []},
    {"instances": [[1, 2]]},
])
def test_v2_infer_bad_tensors_are_400(server, request_body):
    status, body = server.post_json("/v2/models/toy/infer", request_body)
    assert status == 400 and body["error"]


@pytest.mark.parametrize(("body", "content_type"), [
    ('{"instances": [[1, 2]', "application/json"),
    ("", "application/json"),
    ('1,"2"x\n', "text/csv"),
    (b"\xff\xfe1,2", "text/csv"),
])
def test_malformed_payloads_are_400(server, body, content_type):
    status, headers, data = server.request("POST", "/invocations", body,
                                           {"Content-Type": content_type})
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(data)["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "application/x-npy"])
def test_unsupported_content_type_is_415(server, content_type):
    status, _, body = server.request("POST", "/invocations", "x", {"Content-Type": content_type})
    assert status == 415 and "application/json" in json.loads(body)["error"]


def test_unknown_route_404_and_wrong_method_405(server):
    status, _, body = server.request("GET", "/nope")
    assert status == 404 and "/nope" in json.loads(body)["error"]
    status, headers, body = server.request("GET", "/invocations")
    assert status == 405 and headers["allow"] == "POST" and json.loads(body)["error"]
    status, headers, _ = server.request("POST", "/ping", "{}")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_predictor_input_errors_are_400_with_message(server):
    assert server.post_json("/invocations", {"fail": "value"}) == \
        (400, {"error": "feature count must be 2"})
    assert server.post_json("/invocations", {"fail": "key"}) == (400, {"error": "petal_width"})


def test_predictor_crash_is_500_without_details(server):
    status, body = server.post_json("/invocations", {"fail": "boom"})
    assert status == 500
    assert "RuntimeError" in body["error"] and "internal detail" not in body["error"]


def test_metrics_count_requests(server):
    _, headers, before = server.request("GET", "/metrics")
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    start = _counter(before.decode(), "/ping", 200, "GET")
    for _ in range(3):
        server.request("GET", "/ping")
    server.request("GET", "/nope")
    text = server.request("GET", "/metrics")[2].decode()
    assert _counter(text, "/ping", 200, "GET") == start + 3
    assert _counter(text, "unknown", 404, "GET") >= 1
    assert "mldock_model_loaded 1" in text
    assert re.search(r'mldock_request_duration_seconds_count{route="/ping"} \d+', text)
    assert 'mldock_request_duration_seconds_bucket{route="/ping",le="+Inf"}' in text


def test_vertex_predict_route_answers_raw_csv_as_invocations(server):
    """Vertex's :rawPredict forwards any body to the predict route (mldock-gcp sends CSV so)."""
    status, headers, body = server.request("POST", "/predict", "1,2\n3,4.5\n",
                                           {"Content-Type": "text/csv"})
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == [6, 15.0]
