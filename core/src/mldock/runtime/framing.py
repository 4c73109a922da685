"""HTTP/1.1 request framing: bytes in, complete requests out, in time linear in the bytes received.

Why a state machine that keeps its place: the previous parser re-read the whole buffer from the
first chunk on every packet, so a 1 MB body sent in 1-byte chunks cost 18 s of CPU and stalled
every other client of the worker. Here each byte is searched once: the reader remembers where
its search for the end of a line stopped, consumed bytes are skipped by an offset (the buffer is
compacted only when the consumed part outweighs the rest), and chunk data is copied once into
the body. ``work`` counts bytes searched and copied, so tests can check linearity without timing.

Framing rules follow RFC 9112 and, for the edge cases, h11's readers and tests; where the RFC
lets a server choose, this one refuses what another HTTP processor could read differently
(request smuggling): obsolete line folding, ``Transfer-Encoding`` together with
``Content-Length``, a ``Content-Length`` that is not ASCII digits, conflicting lengths, any
transfer coding but a lone ``chunked``, bytes other than CRLF after a chunk's data.
"""

from __future__ import annotations

import re

MAX_HEAD = 64 * 1024  # request line + header fields, and separately the trailer section
MAX_FIELDS = 100  # header fields per request (http.client's limit too)
MAX_CHUNK_LINE = 4096  # chunk size + extensions
MAX_BLANK_LINES = 16  # empty lines tolerated before a request line (RFC 9112 §2.2)

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\r\n]*[^\x00\r\n \t])?)[ \t]*")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?")
_DIGITS = re.compile(r"[0-9]{1,30}")  # more is not a size, just a 400

# where the reader is in the current request
_HEAD, _LENGTH, _SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(7)


class HttpError(Exception):
    """Ends a request with ``status`` and a JSON ``{"error": message}`` body."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class Request:
    """One parsed request. ``path`` has the query string removed; header names are lower-case."""

    __slots__ = ("body", "chunked", "headers", "keep_alive", "length", "method", "path", "query",
                 "target", "version")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str]):
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.version = version
        self.headers = headers
        self.body = b""
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        self.length = 0
        self.chunked = False


def _fields(lines: list[bytes], limit_message: str) -> list[tuple[str, str]]:
    """(lower-case name, value) pairs; refuses folding, bad names, control bytes, too many."""
    if len(lines) > MAX_FIELDS:
        raise HttpError(431, f"{limit_message}: more than {MAX_FIELDS} header fields")
    fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding is not accepted: send each header"
                                 " field on one line")
        match = _FIELD.fullmatch(line)
        if match is None:
            raise HttpError(400, f"malformed header line {line[:60].decode('latin-1')!r}")
        fields.append((match[1].decode("ascii").lower(), match[2].decode("latin-1")))
    return fields


def _content_length(values: list[str]) -> int:
    """One length from every ``Content-Length`` value (identical repeats are allowed)."""
    lengths = {part.strip(" \t") for value in values for part in value.split(",")}
    if len(lengths) != 1:
        raise HttpError(400, "conflicting Content-Length headers")
    text = lengths.pop()
    if not _DIGITS.fullmatch(text):
        raise HttpError(400, f"malformed Content-Length {text[:30]!r}: it must be ASCII digits")
    return int(text)


def parse_head(head: bytes) -> Request:
    """A :class:`Request` (body not read) from the bytes before the blank line."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(400, "malformed request line")
    version = match[3].decode("ascii")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, f"{version} is not supported; use HTTP/1.1")
    fields = _fields(lines[1:], "request head too large")
    headers: dict[str, str] = {}
    lengths, codings = [], []
    for name, value in fields:
        if name == "content-length":
            lengths.append(value)
        elif name == "transfer-encoding":
            codings.append(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    request = Request(match[1].decode("ascii"), match[2].decode("latin-1"), version, headers)
    if codings:
        if lengths:
            raise HttpError(400, "both Transfer-Encoding and Content-Length are set")
        if version == "HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if [c.strip(" \t").lower() for c in headers["transfer-encoding"].split(",")] \
                != ["chunked"]:
            raise HttpError(501, f"unsupported Transfer-Encoding {headers['transfer-encoding']!r}:"
                                 " only chunked is accepted")
        request.chunked = True
    elif lengths:
        request.length = _content_length(lengths)
    return request


class RequestReader:
    """Feed it bytes with :meth:`feed`; take complete requests with :meth:`next_request`."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.work = 0  # bytes searched or copied so far: stays proportional to bytes fed
        self._buf = bytearray()
        self._pos = 0  # first byte not yet consumed
        self._scan = 0  # where the search for the current line ending resumes
        self._state = _HEAD
        self._request: Request | None = None
        self._body = bytearray()
        self._left = 0  # bytes of the current chunk (or Content-Length body) still to come
        self._trailer: list[bytes] = []
        self._trailer_size = 0
        self._steps = {_HEAD: self._read_head, _LENGTH: self._read_length, _SIZE: self._read_size,
                       _DATA: self._read_data, _DATA_END: self._read_data_end,
                       _TRAILER: self._read_trailer}

    @property
    def idle(self) -> bool:
        """No request started and nothing buffered."""
        return self._state == _HEAD and self._pos == len(self._buf)

    @property
    def request(self) -> Request | None:
        """The request whose head is read and whose body is still arriving, if any."""
        return self._request

    def feed(self, data: bytes) -> None:
        buf = self._buf
        if self._pos and self._pos * 2 >= len(buf):  # amortized: moves at most what was consumed
            del buf[:self._pos]
            self._scan -= self._pos
            self._pos = 0
        buf += data

    def _line(self, limit: int, what: str) -> int:
        """The offset of the CRLF ending the line at ``_pos``, or -1 until it arrives."""
        buf, start = self._buf, max(self._scan, self._pos)
        end = buf.find(b"\r\n", start, self._pos + limit + 2)
        self.work += (end if end >= 0 else len(buf)) - start
        if end >= 0:
            self._scan = end + 2
            return end
        if len(buf) - self._pos > limit + 1:
            raise HttpError(431 if self._state == _HEAD else 400, f"{what} is longer than"
                                                                    f" {limit} bytes")
        self._scan = max(self._pos, len(buf) - 1)  # a CR at the end may start the CRLF
        return -1

    def next_request(self) -> Request | None:
        """The next complete request (its body read), or None until more bytes arrive.

        Raises :class:`HttpError` for a request that cannot be framed; the connection must then
        be closed, since where the next request starts is unknown.
        """
        steps = self._steps
        while self._state != _DONE:
            if not steps[self._state]():
                return None
        return self._finish()

    def _read_head(self) -> bool:
        buf, blank = self._buf, 0
        while buf.startswith(b"\r\n", self._pos):  # tolerate empty lines between requests
            blank += 1
            if blank > MAX_BLANK_LINES:
                raise HttpError(400, "too many empty lines before the request line")
            self._pos += 2
        start, head_start = max(self._scan, self._pos), self._pos
        end = buf.find(b"\r\n\r\n", start, head_start + MAX_HEAD + 4)
        self.work += (end if end >= 0 else len(buf)) - start
        if end < 0:
            if len(buf) - head_start > MAX_HEAD:
                raise HttpError(431, "request head is larger than 64 KiB")
            if buf.find(b"\n\n", max(start - 1, head_start)) >= 0:  # else it would wait forever
                raise HttpError(400, "malformed request head: lines must end with CRLF")
            self.work += len(buf) - start
            self._scan = max(head_start, len(buf) - 3)
            return False
        request = parse_head(bytes(buf[head_start:end]))
        self._pos = self._scan = end + 4
        self._request = request
        if request.chunked:
            self._state = _SIZE
        else:
            if request.length > self.max_body:
                raise HttpError(413, f"request body of {request.length} bytes is larger than"
                                     f" the {self.max_body} byte limit")
            self._state = _LENGTH
        return True

    def _read_length(self) -> bool:
        request = self._current()
        end = self._pos + request.length
        if len(self._buf) < end:
            return False
        request.body = bytes(self._buf[self._pos:end])
        self.work += request.length
        self._pos = self._scan = end
        self._state = _DONE
        return True

    def _read_size(self) -> bool:
        end = self._line(MAX_CHUNK_LINE, "a chunk size line")
        if end < 0:
            return False
        match = _CHUNK_LINE.fullmatch(self._buf, self._pos, end)
        if match is None:
            line = bytes(self._buf[self._pos:min(end, self._pos + 30)])
            raise HttpError(400, f"malformed chunk size {line.decode('latin-1')!r}: it must be"
                                 " hexadecimal digits")
        size = int(match[1], 16)
        self._pos = end + 2
        if size == 0:
            self._state = _TRAILER
            return True
        if len(self._body) + size > self.max_body:
            raise HttpError(413, f"request body is larger than the {self.max_body} byte limit")
        self._left, self._state = size, _DATA
        return True

    def _read_data(self) -> bool:
        take = min(self._left, len(self._buf) - self._pos)
        if take:
            self._body += self._buf[self._pos:self._pos + take]
            self.work += take
            self._pos += take
            self._left -= take
        if self._left:
            return False
        self._left, self._state = 2, _DATA_END
        return True

    def _read_data_end(self) -> bool:
        """The CRLF after chunk data, checked byte by byte as it arrives (h11's footer rule)."""
        buf = self._buf
        if self._left == 2 and buf.startswith(b"\r\n", self._pos):  # the usual case, at once
            self._pos += 2
            self._left = 0
        while self._left and self._pos < len(buf):
            if buf[self._pos] != b"\r\n"[2 - self._left]:
                raise HttpError(400, "malformed chunk: its data is not followed by CRLF")
            self._pos += 1
            self._left -= 1
        if self._left:
            return False
        self._scan, self._state = self._pos, _SIZE
        return True

    def _read_trailer(self) -> bool:
        """Trailer fields (checked, then dropped: nothing here reads them) up to a blank line."""
        while True:
            end = self._line(MAX_HEAD, "a trailer field")
            if end < 0:
                return False
            line = bytes(self._buf[self._pos:end])
            self._pos = end + 2
            if not line:
                _fields(self._trailer, "trailer section too large")
                self._state = _DONE
                return True
            self._trailer_size += len(line) + 2
            self._trailer.append(line)
            if self._trailer_size > MAX_HEAD or len(self._trailer) > MAX_FIELDS:
                raise HttpError(431, "the trailer section is too large")

    def _current(self) -> Request:
        """The request being read: only called in states that follow a parsed head."""
        if self._request is None:
            raise RuntimeError("body state without a request head")
        return self._request

    def _finish(self) -> Request:
        request = self._current()
        if request.chunked:
            request.body = bytes(self._body)
            self._body = bytearray()
            self._trailer, self._trailer_size = [], 0
        self._request, self._state, self._scan = None, _HEAD, self._pos
        return request
