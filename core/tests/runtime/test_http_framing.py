"""Request framing under hostile input, over real sockets to the real server (issue #10, item 6).

The edge cases follow h11's reader tests (chunk sizes, extensions, trailers, CRLF after chunk
data, obsolete folding) plus the request-smuggling rules of RFC 9112: anything another HTTP
processor could frame differently is refused, and the connection closed.
"""

from __future__ import annotations

import json
import socket

import pytest
from mldock.runtime.framing import RequestReader

BODY = b"[[1,2]]"  # the toy predictor answers [6]
POST = b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def read_response(sock: socket.socket, buffered: bytearray) -> tuple[bytes, bytes]:
    """One Content-Length response from ``sock``; bytes after it stay in ``buffered``."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {bytes(buffered)!r}")
        buffered += chunk
    end = buffered.index(b"\r\n\r\n")
    head = bytes(buffered[:end])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    del buffered[:end + 4]
    while len(buffered) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed inside a response body")
        buffered += chunk
    body = bytes(buffered[:length])
    del buffered[:length]
    return head, body


def exchange(port: int, raw: bytes) -> tuple[int, bytes, bytes]:
    """(status, head, body) of the first response to ``raw`` sent on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        head, body = read_response(sock, bytearray())
    return int(head.split(b" ")[1]), head, body


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return CHUNKED + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) \
        + b"0\r\n" + trailer + b"\r\n"


ACCEPTED = {
    "content-length": POST + b"Content-Length: 7\r\n\r\n" + BODY,
    "repeated identical content-length": POST + b"Content-Length: 7\r\nContent-Length: 7\r\n\r\n"
                                         + BODY,
    "content-length list of one value": POST + b"Content-Length: 7, 7\r\n\r\n" + BODY,
    "content-length with OWS": POST + b"Content-Length: \t 7 \t\r\n\r\n" + BODY,
    "chunks": chunked(b"[[1,", b"2]]"),
    "upper and lower case hex": CHUNKED + b"7\r\n[[1,2]]\r\n0\r\n\r\n",
    "leading zeros in a chunk size": CHUNKED + b"0007\r\n[[1,2]]\r\n0000\r\n\r\n",
    "chunk extensions": CHUNKED + b"7; hello=there\r\n[[1,2]]\r\n"
                        b'0; random="junk"; some=more\r\n\r\n',
    "whitespace after a chunk size": CHUNKED + b"7   \t \r\n[[1,2]]\r\n0\r\n\r\n",
    "trailer fields": chunked(BODY, trailer=b"Some: header\r\nOther: x\r\n"),
    "transfer-encoding is case-insensitive": POST + b"Transfer-Encoding: Chunked\r\n\r\n"
                                             b"7\r\n[[1,2]]\r\n0\r\n\r\n",
    "empty lines before the request line": b"\r\n\r\n" + POST + b"Content-Length: 7\r\n\r\n"
                                           + BODY,
    "control bytes in a header value": POST + b"Cookie: a\x01b\r\nContent-Length: 7\r\n\r\n"
                                       + BODY,
}


@pytest.mark.parametrize("raw", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_valid_framings_are_read(server, raw):
    status, _, body = exchange(server.port, raw)
    assert (status, json.loads(body)) == (200, [6]), body


def _cl(value: bytes) -> bytes:
    return POST + b"Content-Length: " + value + b"\r\n\r\n" + BODY


REFUSED = {
    # Content-Length: ASCII digits only, one value
    "content-length +7": (_cl(b"+7"), 400),
    "content-length -7": (_cl(b"-7"), 400),
    "content-length 0x7": (_cl(b"0x7"), 400),
    # a non-ASCII digit on purpose: int() would accept it, HTTP must not
    "content-length arabic-indic digit": (_cl("٧".encode()), 400),  # noqa: RUF001
    "content-length superscript (latin-1 isdigit)": (_cl(b"\xb2"), 400),
    "content-length 7_0": (_cl(b"7_0"), 400),
    "content-length with a vertical tab": (_cl(b"\x0b7"), 400),
    "content-length with a form feed after": (_cl(b"7\x0c"), 400),
    "content-length with a no-break space": (_cl(b"\xa07"), 400),
    "content-length 7 7": (_cl(b"7 7"), 400),
    "content-length empty": (_cl(b""), 400),
    "space before the colon": (POST + b"Content-Length : 7\r\n\r\n" + BODY, 400),
    "conflicting content-length": (POST + b"Content-Length: 7\r\nContent-Length: 8\r\n\r\n"
                                   + BODY, 400),
    "conflicting content-length list": (_cl(b"7, 8"), 400),
    "content-length beyond the limit": (_cl(b"9" * 19), 413),
    # Transfer-Encoding
    "transfer-encoding with content-length": (POST + b"Content-Length: 7\r\n"
                                              b"Transfer-Encoding: chunked\r\n\r\n", 400),
    "content-length with transfer-encoding": (POST + b"Transfer-Encoding: chunked\r\n"
                                              b"Content-Length: 7\r\n\r\n", 400),
    "gzip, chunked": (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    "chunked, gzip": (POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
    "gzip": (POST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "chunked twice": (POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                      501),
    "transfer-encoding in HTTP/1.0": (
        b"POST /invocations HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    # chunk size lines
    "chunk size 0x7": (CHUNKED + b"0x7\r\n[[1,2]]\r\n0\r\n\r\n", 400),
    "chunk size -1": (CHUNKED + b"-1\r\n", 400),
    "chunk size +7": (CHUNKED + b"+7\r\n[[1,2]]\r\n0\r\n\r\n", 400),
    "whitespace before a chunk size": (CHUNKED + b" 7\r\n[[1,2]]\r\n0\r\n\r\n", 400),
    "empty chunk size": (CHUNKED + b"\r\n", 400),
    "chunk size not hex": (CHUNKED + b"g\r\n", 400),
    "NUL in a chunk size": (CHUNKED + b"10\x00\r\nxxx", 400),
    "chunk size of 100 digits": (CHUNKED + b"9" * 100 + b"\r\nxxx", 400),
    "chunk size beyond the limit": (CHUNKED + b"ffffffffffffffff\r\n", 413),
    "chunk size line too long": (CHUNKED + b"7;" + b"x" * 5000 + b"\r\n", 400),
    "bare LF after a chunk size": (CHUNKED + b"7\n[[1,2]]\r\n0\r\n\r\n", 400),
    # what follows chunk data must be CRLF, checked byte by byte
    "no CRLF after chunk data": (CHUNKED + b"3\r\nxxx__1a\r\n", 400),
    "CR then not LF": (CHUNKED + b"3\r\nxxx\r_1a\r\n", 400),
    "LF without CR": (CHUNKED + b"3\r\nxxx_\n1a\r\n", 400),
    "chunk longer than its size": (CHUNKED + b"2\r\n[[1,2]]\r\n0\r\n\r\n", 400),
    "malformed trailer": (CHUNKED + b"7\r\n[[1,2]]\r\n0\r\nbad trailer\r\n\r\n", 400),
    "folded trailer": (CHUNKED + b"7\r\n[[1,2]]\r\n0\r\nA: b\r\n c\r\n\r\n", 400),
    # request line and header fields
    "obsolete line folding": (POST + b"X-Long: one\r\n two\r\nContent-Length: 7\r\n\r\n"
                              + BODY, 400),
    "folding on the first field": (b"GET /ping HTTP/1.1\r\n  folded: line\r\n\r\n", 400),
    "tab before the colon": (b"GET /ping HTTP/1.1\r\nfoo\t: line\r\n\r\n", 400),
    "empty header name": (b"GET /ping HTTP/1.1\r\n: line\r\n\r\n", 400),
    "NUL in a header value": (b"GET /ping HTTP/1.1\r\nHost: foo\x00bar\r\n\r\n", 400),
    "garbage after the version": (b"GET /ping HTTP/1.1 xxxxxx\r\nHost: a\r\n\r\n", 400),
    "DEL in the target": (b"GET /p\x7fing HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "8-bit byte in the target": (b"GET /p\xeeing HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "bare LF line endings": (b"GET /ping HTTP/1.1\nHost: a\n\n", 400),
    "HTTP/2.0": (b"GET /ping HTTP/2.0\r\n\r\n", 505),
    "too many header fields": (b"GET /ping HTTP/1.1\r\n"
                               + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n",
                               431),
    "request head over 64 KiB": (b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
                                 431),
}


@pytest.mark.parametrize(("raw", "status"), list(REFUSED.values()), ids=list(REFUSED))
def test_unframeable_requests_are_refused_and_the_connection_closed(server, raw, status):
    got, head, body = exchange(server.port, raw)
    assert got == status, body
    assert b"Connection: close" in head and json.loads(body)["error"]


def test_many_header_fields_within_the_limit_are_fine(server):
    raw = POST + b"".join(b"X-%d: y\r\n" % i for i in range(90)) + b"Content-Length: 7\r\n\r\n"
    assert exchange(server.port, raw + BODY)[0] == 200


def test_pipelined_requests_after_a_chunked_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(chunked(b"[[1,", b"1]]", trailer=b"T: x\r\n")
                     + b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
                     + chunked(b"[[5,5]]") + _cl(b"7"))
        buffered = bytearray()
        answers = [read_response(sock, buffered) for _ in range(4)]
    assert [json.loads(body) for _, body in answers] == [[4], {"status": "ok"}, [20], [6]]


def test_a_request_sent_one_byte_at_a_time(server):
    raw = chunked(b"[[1,", b"2]]", trailer=b"A: b\r\n") + b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(raw)):
            sock.sendall(raw[i:i + 1])
        buffered = bytearray()
        first, second = read_response(sock, buffered), read_response(sock, buffered)
    assert json.loads(first[1]) == [6] and json.loads(second[1]) == {"status": "ok"}


def test_chunked_body_over_the_limit_is_413_before_its_data_is_sent(start_server):
    srv = start_server(MLDOCK_MAX_PAYLOAD_MB="0.001")  # 1048 bytes
    srv.wait_for("/ping", 200)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(CHUNKED + b"400\r\n" + b"a" * 1024 + b"\r\n" + b"400\r\n")
        head, body = read_response(sock, bytearray())  # the second chunk's data never sent
    assert head.startswith(b"HTTP/1.1 413") and "1048 byte limit" in json.loads(body)["error"]


def test_expect_100_continue_then_413_for_a_large_content_length(start_server):
    srv = start_server(MLDOCK_MAX_PAYLOAD_MB="0.001")
    srv.wait_for("/ping", 200)
    raw = POST + b"Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n"
    status, _, body = exchange(srv.port, raw)
    assert status == 413, body  # the first answer: no 100 Continue, no body read


def test_3mb_body_in_1_byte_chunks_while_ping_answers(server):
    """It took 211 s before (the parser rescanned the buffer on every packet) and stalled every
    client; now the upload is framed as it arrives and /ping answers meanwhile. The socket
    timeout is generous on purpose: this is not a timing test."""
    payload = b'{"instances": [[' + b"0," * (3 * 1024 * 1024 // 2) + b'1]]}'
    wire = b"".join(b"1\r\n%c\r\n" % byte for byte in payload)
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as upload:
        upload.sendall(CHUNKED + wire)  # everything but the last chunk
        with socket.create_connection(("127.0.0.1", server.port), timeout=120) as ping:
            ping.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            head, _ = read_response(ping, bytearray())
        assert head.startswith(b"HTTP/1.1 200")
        upload.sendall(b"0\r\n\r\n")
        head, body = read_response(upload, bytearray())
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body) == {"predictions": [2]}


# --- the parser's own work, counted: linear in the bytes received ----------------------------

def _feed_in_pieces(reader: RequestReader, data: bytes, piece: int) -> list:
    requests = []
    for i in range(0, len(data), piece):
        reader.feed(data[i:i + piece])
        while (request := reader.next_request()) is not None:
            requests.append(request)
    return requests


@pytest.mark.parametrize("piece", [1, 7, 1000, 65536])
def test_parser_work_is_linear_for_1_byte_chunks(piece):
    body = b"x" * 300_000  # a parser rescanning per packet would do ~len(wire)² / piece
    wire = CHUNKED + b"".join(b"1\r\n%c\r\n" % byte for byte in body) + b"0\r\n\r\n"
    reader = RequestReader(max_body=len(body))
    [request] = _feed_in_pieces(reader, wire, piece)
    assert request.body == body
    assert reader.work <= 3 * len(wire)


@pytest.mark.parametrize("piece", [1, 3, 4096])
def test_parser_work_is_linear_for_a_slow_head_and_many_requests(piece):
    one = b"GET /ping HTTP/1.1\r\nHost: t\r\n" + b"X-Pad: " + b"p" * 3000 + b"\r\n\r\n"
    wire = one * 50 + POST + b"Content-Length: 100000\r\n\r\n" + b"y" * 100_000
    reader = RequestReader(max_body=100_000)
    requests = _feed_in_pieces(reader, wire, piece)
    assert len(requests) == 51 and requests[-1].body == b"y" * 100_000
    # searching resumes a few bytes back (a CRLF may straddle two packets): a constant factor
    assert reader.work <= 8 * len(wire) and reader.idle
