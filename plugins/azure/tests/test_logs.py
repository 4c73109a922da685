"""Following a job's log files: only new bytes asked for, every line shown once, metrics live.

The log files are served by a real HTTP server on loopback that honours ``Range`` the way Blob
Storage does (206 with the rest, 416 past the end) — or ignores it (200, the whole file), as a
plain file server would; the files grow between polls as a running job's do. The run-history
details that list them are given to :meth:`LogFollower.poll` as the job's wait loop reads them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mldock_azure.config import AzureMLOptions
from mldock_azure.logs import LogFollower, failure_message, parse_metric
from mldock_azure.workspace import AzureMLClients

OPTIONS = AzureMLOptions(subscription_id="11111111-2222-3333-4444-555555555555",
                         resource_group="rg", workspace="ws-logs")


class LogServer:
    """Files by path; records the Range header of every request."""

    def __init__(self, honour_range: bool = True) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[tuple[str, str | None]] = []
        self.honour_range = honour_range
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                wanted = self.headers.get("Range")
                server.ranges.append((path, wanted))
                if path not in server.files:
                    self._answer(404, b"")
                    return
                data = server.files[path]
                start = int(re.match(r"bytes=(\d+)-", wanted)[1]) if wanted else 0
                if not server.honour_range or not wanted:
                    self._answer(200, data)
                elif start >= len(data):
                    self._answer(416, b"")
                else:
                    self._answer(206, data[start:])

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}?sv=2024&sig=secret"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=[True, False], ids=["range", "no-range"])
def server(request) -> Iterator[LogServer]:
    found = LogServer(honour_range=request.param)
    yield found
    found.stop()


def details(server: LogServer, *paths: str) -> dict:
    names = {path.lstrip("/"): server.url(path) for path in paths}
    names["system_logs/lifecycler/execution-wrapper.log"] = server.url("/system.log")
    return {"status": "Running", "logFiles": names}


def test_lines_shown_once_as_the_file_grows_and_metrics_arrive_live(server):
    lines, batches = [], []
    follower = LogFollower(AzureMLClients(OPTIONS), "job-1", lines.append, batches.append)
    server.files["/user_logs/std_log.txt"] = b"starting\nmldock-metric accuracy=0.9 step=1\npar"
    server.files["/system.log"] = b"not a user line\n"
    assert follower.poll(details(server, "/user_logs/std_log.txt")) == 2
    assert lines == ["starting", "mldock-metric accuracy=0.9 step=1"]
    server.files["/user_logs/std_log.txt"] += b"tial line\r\nmldock-metric loss=0.25\n"
    follower.poll(details(server, "/user_logs/std_log.txt"))
    assert follower.poll(details(server, "/user_logs/std_log.txt")) == 0  # nothing new
    assert lines[2:] == ["partial line", "mldock-metric loss=0.25"]
    assert [[(m.key, m.value, m.step) for m in batch] for batch in batches] == [
        [("accuracy", 0.9, 1)], [("loss", 0.25, 0)]]
    if server.honour_range:  # only the bytes after what was shown are asked for
        asked = [wanted for path, wanted in server.ranges if path == "/user_logs/std_log.txt"]
        first = len(b"starting\nmldock-metric accuracy=0.9 step=1\npar")
        whole = len(server.files["/user_logs/std_log.txt"])
        assert asked == ["bytes=0-", f"bytes={first}-", f"bytes={whole}-"]
    assert all(path != "/system.log" for path, _ in server.ranges)


def test_a_last_line_without_newline_is_shown_at_the_end(server):
    lines: list[str] = []
    follower = LogFollower(AzureMLClients(OPTIONS), "job-2", lines.append)
    server.files["/user_logs/std_log.txt"] = b"done"
    follower.poll(details(server, "/user_logs/std_log.txt"))
    assert lines == []
    follower.poll(details(server, "/user_logs/std_log.txt"), final=True)
    assert lines == ["done"]


def test_several_processes_are_prefixed_and_only_rank_0_counts_metrics(server):
    lines, batches = [], []
    follower = LogFollower(AzureMLClients(OPTIONS), "job-3", lines.append, batches.append)
    server.files["/user_logs/std_log_process_0.txt"] = b"mldock-metric acc=0.5 step=1\n"
    server.files["/user_logs/std_log_process_1.txt"] = b"mldock-metric acc=0.1 step=1\n"
    follower.poll(details(server, "/user_logs/std_log_process_1.txt",
                          "/user_logs/std_log_process_0.txt"))
    assert lines == ["[rank 0] mldock-metric acc=0.5 step=1",
                     "[rank 1] mldock-metric acc=0.1 step=1"]
    assert [[m.value for m in batch] for batch in batches] == [[0.5]]


def test_files_not_written_yet_are_read_later(server):
    lines: list[str] = []
    follower = LogFollower(AzureMLClients(OPTIONS), "job-4", lines.append)
    follower.poll(details(server, "/azureml-logs/70_driver_log.txt"))  # listed, 404 for now
    server.files["/azureml-logs/70_driver_log.txt"] = b"legacy runtime line\n"
    follower.poll(details(server, "/azureml-logs/70_driver_log.txt"))
    assert lines == ["legacy runtime line"]


@pytest.mark.parametrize(("line", "expected"), [
    ("mldock-metric acc=0.5 step=3", ("acc", 0.5, 3)),
    ("2026-01-01 INFO mldock-metric val/loss=1e-3", ("val/loss", 0.001, 0)),
    ("mldock-metric acc=nan", None), ("mldock-metric acc=high", None), ("accuracy 0.5", None)])
def test_metric_lines(line, expected):
    metric = parse_metric(line, 12.0)
    assert (None if metric is None else (metric.key, metric.value, metric.step)) == expected


def test_failure_message_from_the_run_history():
    error = {"error": {"error": {"code": "UserError",
                                 "message": "Execution failed. User process exited 1\nTrace"}}}
    assert failure_message(error) == "Execution failed. User process exited 1"
    assert failure_message({}) is None
    assert failure_message({"error": {"error": {"code": "ServiceError"}}}) == "ServiceError"


def test_a_token_is_never_sent_over_plain_http():
    from mldock.errors import MldockError

    with pytest.raises(MldockError, match="refusing to send an Azure token over plain HTTP"):
        AzureMLClients(OPTIONS).get("http://127.0.0.1:9/history")
