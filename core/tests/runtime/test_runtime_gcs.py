"""The stdlib gs:// client against a real gcp-storage-emulator on loopback.

The emulator is seeded through its XML-style ``PUT /<bucket>/<object>`` route, which the client
never uses, so a download test does not depend on the client's own upload. The emulator returns
every listing in one page, so paging is exercised through a small loopback proxy that cuts its
listings into pages of ``maxResults`` (the only part of these tests that is not the emulator).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import subprocess
import threading
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from mldock.runtime import gcs


@pytest.fixture
def emulator(gcs_emulator: str) -> str:
    """``http://127.0.0.1:PORT`` of the harness's in-memory gcp-storage-emulator (one per
    session; every test makes its own bucket)."""
    return gcs_emulator


def _http(method: str, url: str, body: bytes | None = None,
          content_type: str = "application/octet-stream") -> bytes:
    headers = {"Content-Type": content_type} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def make_bucket(emulator: str) -> str:
    name = f"b-{uuid.uuid4().hex[:10]}"
    _http("POST", f"{emulator}/storage/v1/b", json.dumps({"name": name}).encode(),
          "application/json")
    return name


def put(emulator: str, bucket: str, name: str, data: bytes) -> None:
    _http("PUT", f"{emulator}/{bucket}/{urllib.parse.quote(name)}", data)


def get(emulator: str, bucket: str, name: str) -> bytes:
    return _http("GET", f"{emulator}/{bucket}/{urllib.parse.quote(name)}")


@pytest.fixture
def env(emulator):
    # the form google-cloud-storage accepts too: host:port without a scheme
    return {"STORAGE_EMULATOR_HOST": emulator.removeprefix("http://")}


MODEL = {"weights.json": b'{"w": 2}', "sub/deep/vocab.txt": b"a\nb\n",
         "with space & ü.bin": bytes(range(256)) * 40}


def seed_model(emulator: str, bucket: str, prefix: str) -> None:
    for name, data in MODEL.items():
        put(emulator, bucket, f"{prefix}/{name}", data)
    put(emulator, bucket, f"{prefix}2/not-mine.txt", b"a sibling folder sharing the prefix")


def test_download_a_folder_keeps_relative_paths(emulator, env, tmp_path):
    bucket = make_bucket(emulator)
    seed_model(emulator, bucket, "models/iris")
    dest = gcs.download(f"gs://{bucket}/models/iris", tmp_path / "m", env)
    got = {p.relative_to(dest).as_posix(): p.read_bytes()
           for p in dest.rglob("*") if p.is_file()}
    assert got == MODEL  # and nothing from models/iris2/
    same = gcs.download(f"gs://{bucket}/models/iris/", tmp_path / "slash", env)
    assert sorted(p.name for p in same.rglob("*") if p.is_file()) == sorted(
        Path(n).name for n in MODEL)


def test_download_one_object(emulator, env, tmp_path):
    bucket = make_bucket(emulator)
    put(emulator, bucket, "data/train.csv", b"x,y\n1,2\n")
    dest = gcs.download(f"gs://{bucket}/data/train.csv", tmp_path / "d", env)
    assert [p.name for p in dest.iterdir()] == ["train.csv"]
    assert (dest / "train.csv").read_bytes() == b"x,y\n1,2\n"


def test_missing_things_are_clear_errors(emulator, env, tmp_path):
    bucket = make_bucket(emulator)
    with pytest.raises(gcs.GcsError, match=f"nothing to download at gs://{bucket}/nope"):
        gcs.download(f"gs://{bucket}/nope", tmp_path / "a", env)
    with pytest.raises(gcs.GcsError, match="bucket gs://no-such-bucket-x does not exist"):
        gcs.download("gs://no-such-bucket-x/m", tmp_path / "b", env)
    with pytest.raises(gcs.GcsError, match="names no bucket"):
        gcs.download("gs:///m", tmp_path / "c", env)


def test_upload_then_read_back_through_another_route(emulator, env, tmp_path):
    bucket = make_bucket(emulator)
    source = tmp_path / "model"
    for name, data in MODEL.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    assert gcs.upload(source, f"gs://{bucket}/runs/7/model/", env) == len(MODEL)
    for name, data in MODEL.items():
        assert get(emulator, bucket, f"runs/7/model/{name}") == data
    back = gcs.download(f"gs://{bucket}/runs/7/model", tmp_path / "back", env)
    assert (back / "sub" / "deep" / "vocab.txt").read_bytes() == MODEL["sub/deep/vocab.txt"]


def _listing(client: gcs.Client, bucket: str, prefix: str) -> list[dict]:
    return list(client.list_objects(bucket, prefix))


def test_corrupted_transfers_are_detected(emulator, env, tmp_path):
    bucket = make_bucket(emulator)
    put(emulator, bucket, "m/w.bin", b"payload" * 1000)
    client = gcs.Client(env)
    meta = _listing(client, bucket, "m/")[0]
    assert meta["md5Hash"] and meta["crc32c"] and int(meta["size"]) == 7000
    target = tmp_path / "w.bin"
    with pytest.raises(gcs.GcsError, match="md5 mismatch"):
        client.download_object({**meta, "md5Hash": base64.b64encode(b"0" * 16).decode()},
                               target)
    with pytest.raises(gcs.GcsError, match="downloaded 7000 bytes, the object has 7001"):
        client.download_object({**meta, "size": "7001"}, target)
    without_md5 = {k: v for k, v in meta.items() if k != "md5Hash"}
    with pytest.raises(gcs.GcsError, match="crc32c mismatch"):
        client.download_object({**without_md5, "crc32c": "AAAAAA=="}, target)
    assert not target.exists() and not list(tmp_path.glob(".*part"))  # nothing half-written
    client.download_object(without_md5, target)  # the emulator's own crc32c checks out
    assert target.read_bytes() == b"payload" * 1000


def test_crc32c_matches_the_reference_implementation():
    google_crc32c = pytest.importorskip("google_crc32c")  # installed with the emulator
    data = os.urandom(100_003)
    expected = int.from_bytes(google_crc32c.Checksum(data).digest(), "big")
    assert gcs.crc32c_update(0, data) == expected
    split = gcs.crc32c_update(gcs.crc32c_update(0, data[:777]), data[777:])
    assert split == expected


class _PagingProxy(http.server.ThreadingHTTPServer):
    """Forwards to the emulator; cuts object listings into ``maxResults`` pages, and records the
    Authorization headers it sees."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _PagingHandler)
        self.upstream = upstream
        self.pages = 0
        self.authorizations: list[str | None] = []


class _PagingHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        server: _PagingProxy = self.server  # type: ignore[assignment]
        server.authorizations.append(self.headers.get("Authorization"))
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        body = _http("GET", server.upstream + self.path)
        if parts.path.endswith("/o") and "maxResults" in query:
            listing = json.loads(body)
            size = int(query["maxResults"][0])
            start = int(query.get("pageToken", ["0"])[0])
            items = listing.get("items") or []
            page = {"kind": listing["kind"], "items": items[start:start + size]}
            if start + size < len(items):
                page["nextPageToken"] = str(start + size)
            server.pages += 1
            body = json.dumps(page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def paging_proxy(emulator):
    proxy = _PagingProxy(emulator)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_listing_follows_next_page_tokens(emulator, paging_proxy, tmp_path):
    bucket = make_bucket(emulator)
    names = [f"many/part-{i:02d}.csv" for i in range(7)]
    for name in names:
        put(emulator, bucket, name, name.encode())
    client = gcs.Client({"STORAGE_EMULATOR_HOST": f"127.0.0.1:{paging_proxy.server_port}"})
    listed = [meta["name"] for meta in client.list_objects(bucket, "many/", page_size=3)]
    assert sorted(listed) == names and paging_proxy.pages == 3


class _MetadataServer(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _MetadataHandler)
        self.requests = 0


class _MetadataHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server: _MetadataServer = self.server  # type: ignore[assignment]
        server.requests += 1
        if self.headers.get("Metadata-Flavor") != "Google" or self.path != gcs.TOKEN_PATH:
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"access_token": "tok-123", "expires_in": 3599,
                           "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_token_from_the_metadata_server_is_sent_and_cached(emulator, paging_proxy):
    metadata = _MetadataServer()
    thread = threading.Thread(target=metadata.serve_forever, daemon=True)
    thread.start()
    try:
        bucket = make_bucket(emulator)
        put(emulator, bucket, "m/a.txt", b"a")
        client = gcs.Client({"GCE_METADATA_HOST": f"127.0.0.1:{metadata.server_port}"})
        assert client.endpoint == gcs.API_HOST and not client.emulated
        client.endpoint = f"http://127.0.0.1:{paging_proxy.server_port}"  # not Google's API
        assert [m["name"] for m in client.list_objects(bucket, "m/")] == ["m/a.txt"]
        assert [m["name"] for m in client.list_objects(bucket, "m/")] == ["m/a.txt"]
        assert paging_proxy.authorizations == ["Bearer tok-123", "Bearer tok-123"]
        assert metadata.requests == 1  # cached until it nearly expires
    finally:
        metadata.shutdown()
        metadata.server_close()


def test_emulator_gets_no_token(env):
    client = gcs.Client({**env, "GCE_METADATA_HOST": "127.0.0.1:9"})
    assert client.emulated and client._access_token() is None


def test_md5_of_uploaded_objects_is_checked_by_the_emulator_too(emulator, env, tmp_path):
    bucket = make_bucket(emulator)
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 999)
    gcs.upload(path.parent, f"gs://{bucket}/u", env)
    meta = gcs.Client(env).stat(bucket, "u/x.bin")
    assert meta is not None
    expected = hashlib.md5(b"abc" * 999, usedforsecurity=False).digest()  # GCS's own checksum
    assert base64.b64decode(meta["md5Hash"]) == expected


# --- the runtime using it, as on Vertex AI (subprocesses of the stdlib-only runtime) ----------

def test_serving_a_gs_model_like_vertex(emulator, start_server, tmp_path):
    bucket = make_bucket(emulator)
    put(emulator, bucket, "models/toy/weights.json", b'{"w": 3}')
    srv = start_server(MLDOCK_MODEL_DIR=None, port_var="AIP_HTTP_PORT",
                       AIP_STORAGE_URI=f"gs://{bucket}/models/toy",
                       AIP_HEALTH_ROUTE="/hc", AIP_PREDICT_ROUTE="/p",
                       STORAGE_EMULATOR_HOST=emulator, MLDOCK_MODEL_CACHE=str(tmp_path / "c"))
    srv.wait_for("/hc", 200, timeout=30)
    assert srv.post_json("/p", {"instances": [[1, 1]]}) == (200, {"predictions": [6]})
    code, err = srv.stop()
    assert code == 0 and "platform vertex" in err and f"gs://{bucket}/models/toy" in err


def test_training_reads_and_writes_gs_like_vertex(emulator, rt, tmp_path):
    bucket = make_bucket(emulator)
    put(emulator, bucket, "data/train/data.csv", b"1\n2\n3\n")
    env = rt.env(MLDOCK_TRAIN="toy.train:train", MLDOCK_PREDICTOR="toy.predict:Predictor",
                 CLOUD_ML_JOB_ID="42", AIP_MODEL_DIR=f"gs://{bucket}/job/model/",
                 AIP_TRAINING_DATA_URI=f"gs://{bucket}/data/train/*.csv",
                 STORAGE_EMULATOR_HOST=emulator, MLDOCK_STAGING_DIR=str(tmp_path / "staging"),
                 MLDOCK_GCS_ROOT=str(tmp_path / "no-mount"))
    result = subprocess.run(rt.cmd("--w=5"), env=env, capture_output=True, text=True,
                            timeout=120, check=False)  # no command: the environment says train
    assert result.returncode == 0, result.stderr
    assert "on vertex" in result.stderr
    assert json.loads(get(emulator, bucket, "job/model/weights.json")) == {"w": 5}
    manifest = json.loads(get(emulator, bucket, "job/model/mldock-model.json"))
    assert manifest["job_id"] == "42" and "weights.json" in manifest["files"]


def test_crc32c_is_skipped_above_the_cap(emulator, env, tmp_path, monkeypatch):
    bucket = make_bucket(emulator)
    put(emulator, bucket, "m/c.bin", b"z" * 100)
    client = gcs.Client(env)
    meta = {k: v for k, v in _listing(client, bucket, "m/")[0].items() if k != "md5Hash"}
    bad = {**meta, "crc32c": "AAAAAA=="}
    with pytest.raises(gcs.GcsError, match="crc32c mismatch"):
        client.download_object(bad, tmp_path / "c.bin")
    monkeypatch.setattr(gcs, "CRC32C_MAX_BYTES", 99)  # the object is now "large"
    client.download_object(bad, tmp_path / "c.bin")  # size checked only
    assert (tmp_path / "c.bin").read_bytes() == b"z" * 100
