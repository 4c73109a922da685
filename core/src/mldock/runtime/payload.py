"""Request bodies in, predictor results out: JSON, CSV, JSON lines and (with numpy) npy.

The predictor sees one decoded payload whatever the wire format: ``{"instances": X}`` and
``{"inputs": X}`` become ``X``, other JSON stays as is, CSV becomes a list of rows of numbers or
strings, JSON lines a list of records, npy an array. Results are encoded for the client's
``Accept``; numpy arrays and scalars are converted with ``tolist()``/``item()`` so predictors
may return them directly.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from typing import Any

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
JSONL = "application/jsonlines"  # SageMaker batch transform with SplitType=Line

_JSON_ALIASES = {JSON, "text/json"}
_JSONL_ALIASES = {JSONL, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"}


class PayloadError(Exception):
    """A request the server must refuse: ``status`` is 400, 406 or 415."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@functools.cache
def numpy_available() -> bool:
    """Is numpy importable? Checked once, without importing it."""
    from importlib.util import find_spec

    return find_spec("numpy") is not None


def media_type(header: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"`` (empty when absent)."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def is_json_type(kind: str) -> bool:
    """JSON, or no Content-Type, or curl's default form type (``curl -d '{...}'``)."""
    return (not kind or kind in _JSON_ALIASES or kind.endswith("+json")
            or kind == "application/x-www-form-urlencoded")


def supported_types() -> tuple[str, ...]:
    return (JSON, CSV, JSONL, NPY) if numpy_available() else (JSON, CSV, JSONL)


# --- decoding --------------------------------------------------------------------------------

TOO_DEEP = "JSON nested too deeply: flatten the payload (a few levels are enough for any tensor)"


def decode_json(body: bytes) -> Any:
    """The decoded document; a 400 for bad JSON, including JSON too deep for the decoder (whose
    ``RecursionError`` would otherwise surface as a 500)."""
    if not body.strip():
        raise PayloadError(400, "empty request body: send a JSON document")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(400, TOO_DEEP) from None


def _cell(text: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def decode_csv(body: bytes) -> list[list[Any]]:
    try:
        text = body.decode("utf-8-sig")
        rows = [[_cell(cell) for cell in row]
                for row in csv.reader(io.StringIO(text), strict=True) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PayloadError(400, f"malformed CSV: {exc}") from None
    if not rows:
        raise PayloadError(400, "empty request body: send at least one CSV row")
    return rows


def decode_jsonl(body: bytes) -> list[Any]:
    """One JSON document per line -> a list of records (blank lines skipped)."""
    try:
        records = [json.loads(line) for line in body.splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(400, f"malformed JSON lines: {exc}") from None
    except RecursionError:
        raise PayloadError(400, TOO_DEEP) from None
    if not records:
        raise PayloadError(400, "empty request body: send one JSON document per line")
    return records


def decode_npy(body: bytes) -> Any:
    import numpy

    try:
        return numpy.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PayloadError(400, f"malformed npy payload: {exc}") from None


def decode(body: bytes, content_type: str | None) -> tuple[Any, str | None, dict | None]:
    """(payload, JSON envelope used — ``"instances"``, ``"inputs"`` or None — , parameters).

    ``{"instances": X}`` / ``{"inputs": X}`` (optionally with ``"parameters": {...}``) unwrap to
    ``X``; any other JSON is the payload as is. A missing Content-Type is read as JSON.
    """
    kind = media_type(content_type)
    if is_json_type(kind):
        data = decode_json(body)
        if isinstance(data, dict) and len(data) <= 2:
            for envelope in ("instances", "inputs"):
                if envelope in data and set(data) <= {envelope, "parameters"}:
                    parameters = data.get("parameters")
                    return (data[envelope], envelope,
                            parameters if isinstance(parameters, dict) else None)
        return data, None, None
    if kind == CSV:
        return decode_csv(body), None, None
    if kind in _JSONL_ALIASES:
        return decode_jsonl(body), None, None
    if kind == NPY and numpy_available():
        return decode_npy(body), None, None
    raise PayloadError(415, f"unsupported Content-Type {kind!r}: use one of "
                            + ", ".join(supported_types()))


# --- encoding --------------------------------------------------------------------------------

def jsonable(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy arrays/scalars, pandas objects, sets, paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "to_dict"):
        try:
            return obj.to_dict(orient="records")
        except TypeError:
            return obj.to_dict()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"predictor returned a {type(obj).__name__}, which is not JSON serializable")


_dumps = json.JSONEncoder(default=jsonable, separators=(",", ":"), ensure_ascii=False).encode


def encode_json(result: Any) -> bytes:
    return _dumps(result).encode("utf-8")


def encode_csv(result: Any) -> bytes:
    """One line per prediction: rows stay rows, scalars become one-cell rows."""
    if hasattr(result, "tolist"):
        result = result.tolist()
    if not isinstance(result, (list, tuple)):
        result = [result]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for raw in result:
        item = raw.tolist() if hasattr(raw, "tolist") else raw
        if isinstance(item, dict):
            raise PayloadError(406, "the prediction holds objects, which CSV cannot carry:"
                                    " ask for application/json")
        writer.writerow(item if isinstance(item, (list, tuple)) else [item])
    return out.getvalue().encode("utf-8")


def encode_jsonl(result: Any) -> bytes:
    """One JSON document per prediction."""
    if hasattr(result, "tolist"):
        result = result.tolist()
    if not isinstance(result, (list, tuple)):
        result = [result]
    return b"".join(encode_json(item) + b"\n" for item in result)


def encode_npy(result: Any) -> bytes:
    import numpy

    out = io.BytesIO()
    numpy.save(out, numpy.asarray(result), allow_pickle=False)
    return out.getvalue()


def choose_accept(accept: str | None, default: str = JSON) -> str:
    """The response media type for an ``Accept`` header (q-values honoured); 406 if none fits."""
    if not accept:
        return default
    offers: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        kind, _, params = part.partition(";")
        kind = kind.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and q > 0:
            offers.append((-q, index, kind))
    supported = supported_types()
    for _, _, kind in sorted(offers):
        if kind == "*/*":
            return default
        if kind == "application/*" or kind in _JSON_ALIASES or kind.endswith("+json"):
            return JSON
        if kind in ("text/*", CSV):
            return CSV
        if kind in _JSONL_ALIASES:
            return JSONL
        if kind in supported:
            return kind
    raise PayloadError(406, f"cannot answer with {accept!r}: accepted types are "
                            + ", ".join(supported))


def encode(result: Any, kind: str) -> bytes:
    if kind == CSV:
        return encode_csv(result)
    if kind == NPY:
        return encode_npy(result)
    if kind == JSONL:
        return encode_jsonl(result)
    return encode_json(result)
