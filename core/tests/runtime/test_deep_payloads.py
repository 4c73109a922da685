"""100,000-deep JSON is a 400, not a 500 (issue #10, item 7): in the server's decoding, in the
predictor output's encoding, and in ``mldock predict`` before anything is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

DEEP = "[" * 100_000 + "]" * 100_000

DEEP_PREDICTOR = '''
class Predictor:
    """Answers a list nested ``payload["depth"]`` levels deep, built without recursion."""

    def predict(self, payload):
        result = [1]
        for _ in range(payload["depth"]):
            result = [result]
        return result
'''


@pytest.mark.parametrize(("path", "body", "content_type"), [
    ("/invocations", DEEP, "application/json"),
    ("/invocations", '{"instances": ' + DEEP + "}", "application/json"),
    ("/invocations", "[[1, 2]]\n" + DEEP + "\n", "application/jsonlines"),
    ("/predict", '{"instances": ' + DEEP + "}", "application/json"),
    ("/v2/models/model/infer", '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",'
                               ' "data": ' + DEEP + "}]}", "application/json"),
], ids=["raw", "instances", "json-lines", "vertex", "v2"])
def test_deep_json_is_400(server, path, body, content_type):
    status, _, answer = server.request("POST", path, body, {"Content-Type": content_type})
    assert status == 400, answer
    assert "nested too deeply" in json.loads(answer)["error"]


def test_v2_tensor_data_nested_deep_but_decodable_is_flattened(server):
    """Flattening v2 ``data`` is iterative: nesting the decoder accepts never overflows it."""
    data = "[" * 500 + "1.5" + "]" * 500
    status, answer = server.post_json("/v2/models/model/infer", {
        "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": json.loads(data)}]})
    assert status == 200 and answer["outputs"][0]["data"] == [3.0]


def test_server_is_healthy_after_deep_payloads(server):
    assert server.request("GET", "/ping")[0] == 200


@pytest.mark.parametrize("accept", ["application/json", "text/csv", "application/jsonlines"])
def test_prediction_too_deep_to_encode_is_a_clean_error(rt, start_server, tmp_path, accept):
    src = tmp_path / "src"
    src.mkdir()
    (src / "deep.py").write_text(textwrap.dedent(DEEP_PREDICTOR))
    srv = start_server(PYTHONPATH=f"{rt.image_root}:{rt.toy_src}:{src}",
                       MLDOCK_PREDICTOR="deep:Predictor")
    srv.wait_for("/ping", 200)
    assert srv.post_json("/invocations", {"depth": 3}, Accept=accept)[0] == 200
    status, answer = srv.post_json("/invocations", {"depth": 100_000}, Accept=accept)
    assert status == 400 and "nested too deeply" in answer["error"]
    assert srv.request("GET", "/ping")[0] == 200
    code, err = srv.stop()
    assert code == 0 and "Traceback" not in err and "RecursionError" not in err


def test_mldock_predict_refuses_a_deep_data_file_in_one_line(tmp_path):
    data = tmp_path / "deep.json"
    data.write_text(DEEP)
    (tmp_path / "src").mkdir()
    (tmp_path / "mldock.toml").write_text(  # predict reads the endpoint's limits from the project
        '[project]\nname = "deep"\ntrain = "deep:train"\npredictor = "deep:Predictor"\n'
        'source = "src"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    proc = subprocess.run(
        [sys.executable, "-c", "from mldock.cli.main import main; main()", "predict", "--data",
         str(data)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "nested too deeply" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
