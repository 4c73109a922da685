"""The HTTP/1.1 layer on raw sockets: keep-alive, pipelining, chunked, 100-continue, limits."""

from __future__ import annotations

import http.client
import json
import socket

import pytest


def _read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """Read ``count`` Content-Length responses from ``sock`` as (head, body) pairs."""
    data = b""
    responses: list[tuple[bytes, bytes]] = []
    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return responses
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += sock.recv(65536)
        responses.append((head, rest[:length]))
        data = rest[length:]
    return responses


@pytest.fixture
def connect(server):
    sockets: list[socket.socket] = []

    def open_socket() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sockets.append(sock)
        return sock

    yield open_socket
    for sock in sockets:
        sock.close()


def _post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)


def test_keep_alive_reuses_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for payload in ([[1, 2]], [[3, 4]], [[0, 1]]):
            conn.request("POST", "/invocations", json.dumps(payload), JSON_HEADERS)
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == [sum(payload[0]) * 2]
            assert response.getheader("Connection") is None  # kept open
    finally:
        conn.close()


JSON_HEADERS = {"Content-Type": "application/json"}


def test_pipelined_requests_answered_in_order(connect):
    sock = connect()
    sock.sendall(_post(b"[[1, 1]]") + b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
                 + _post(b"[[5, 5]]"))
    (h1, b1), (h2, b2), (h3, b3) = _read_responses(sock, 3)
    assert json.loads(b1) == [4] and json.loads(b2) == {"status": "ok"} and json.loads(b3) == [20]
    assert all(h.startswith(b"HTTP/1.1 200") for h in (h1, h2, h3))


def test_request_split_across_many_packets(connect):
    sock = connect()
    raw = _post(b"[[1, 2], [2, 3]]")
    for i in range(0, len(raw), 7):
        sock.sendall(raw[i:i + 7])
    [(head, body)] = _read_responses(sock, 1)
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body) == [6, 10]


def test_chunked_request_body(connect):
    sock = connect()
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 b"4\r\n[[1,\r\n4;ext=1\r\n 2]]\r\n0\r\nX-Trailer: y\r\n\r\n")
    [(head, body)] = _read_responses(sock, 1)
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body) == [6]


def test_expect_100_continue(connect):
    sock = connect()
    body = b"[[2, 2]]"
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(body)
    [(head, payload)] = _read_responses(sock, 1)
    assert head.startswith(b"HTTP/1.1 200") and json.loads(payload) == [8]


def test_http10_closes_by_default(connect):
    sock = connect()
    sock.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
    [(head, _)] = _read_responses(sock, 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert sock.recv(10) == b""


@pytest.mark.parametrize(("raw", "status"), [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET /ping HTTP/2.0\r\n\r\n", b"505"),
    (b"GET /ping HTTP/1.1\r\nBad Header\r\n\r\n", b"400"),
    (b"POST /invocations HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
     b"400"),
    (b"POST /invocations HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
    (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
    (b"POST /invocations HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
    (b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
])
def test_unreadable_requests_get_an_error_then_close(connect, raw, status):
    sock = connect()
    sock.sendall(raw)
    [(head, body)] = _read_responses(sock, 1)
    assert head.split(b" ")[1] == status
    assert b"Connection: close" in head and json.loads(body)["error"]


def test_server_still_healthy_after_bad_requests(server):
    assert server.request("GET", "/ping")[0] == 200
