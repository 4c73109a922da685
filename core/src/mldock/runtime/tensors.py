"""Open Inference Protocol v2 (KServe, Triton, Azure) tensors to and from predictor values.

A request carries ``inputs: [{name, shape, datatype, data}]`` with ``data`` flat (row-major) or
already nested. The predictor receives one input as a nested list shaped by ``shape`` (like a JSON
payload), several inputs as ``{name: nested list}``. Its result becomes one output tensor
(``output-0`` unless the request named its outputs), or one per key when it returns a dict.
"""

from __future__ import annotations

import math
from typing import Any

from mldock.runtime.payload import PayloadError

DATATYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                       "INT64", "FP16", "FP32", "FP64", "BYTES"})


def _flatten(data: Any) -> list[Any]:
    """Row-major values of nested lists; iterative, so no nesting depth can exhaust the stack."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _reshape(flat: list[Any], shape: list[int]) -> Any:
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _convert(values: list[Any], datatype: str, name: str) -> list[Any]:
    try:
        if datatype == "BOOL":
            return [bool(v) for v in values]
        if datatype.startswith(("INT", "UINT")):
            return [int(v) for v in values]
        if datatype.startswith("FP"):
            return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise PayloadError(400, f"input {name!r}: data does not match {datatype}: {exc}") from None
    return values


def decode_request(body: Any) -> tuple[Any, dict[str, Any], list[str]]:
    """(payload, parameters, requested output names) from a decoded v2 infer request."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) \
            or not body["inputs"]:
        raise PayloadError(
            400, "a v2 infer request needs 'inputs': [{name, shape, datatype, data}]")
    tensors: dict[str, Any] = {}
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict):
            raise PayloadError(400, f"inputs[{index}] must be an object")
        name = tensor.get("name") or f"input-{index}"
        shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise PayloadError(400, f"input {name!r}: 'shape' must be a list of non-negative ints")
        if datatype not in DATATYPES:
            raise PayloadError(400, f"input {name!r}: unknown datatype {datatype!r}")
        if data is None:
            raise PayloadError(400, f"input {name!r}: 'data' is missing")
        flat = _convert(_flatten(data), datatype, name)
        if len(flat) != math.prod(shape):
            raise PayloadError(400, f"input {name!r}: {len(flat)} values do not fill shape"
                                    f" {shape}")
        tensors[name] = _reshape(flat, shape)
    payload = next(iter(tensors.values())) if len(tensors) == 1 else tensors
    given = body.get("parameters")
    parameters: dict[str, Any] = given if isinstance(given, dict) else {}
    wanted = [str(o["name"]) for o in body.get("outputs") or [] if isinstance(o, dict)
              and o.get("name")]
    return payload, parameters, wanted


def _shape_of(value: Any) -> list[int]:
    shape: list[int] = []
    while isinstance(value, (list, tuple)):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _datatype_of(flat: list[Any]) -> str:
    if flat and all(isinstance(v, bool) for v in flat):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        return "FP64"
    return "BYTES"


def _numpy_datatype(dtype: Any) -> str:
    kind, bits = dtype.kind, dtype.itemsize * 8
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return {"i": "INT", "u": "UINT", "f": "FP"}[kind] + str(bits)
    return "BYTES"


def to_tensor(name: str, value: Any) -> dict[str, Any]:
    """One output tensor from an array, a (nested) list or a scalar."""
    if hasattr(value, "dtype") and hasattr(value, "shape") and hasattr(value, "ravel"):
        datatype = _numpy_datatype(value.dtype)
        data = value.ravel().tolist()
        if datatype == "BYTES":
            data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data]
        return {"name": name, "shape": list(value.shape) or [1], "datatype": datatype,
                "data": data}
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        value = [value]
    shape = _shape_of(value)
    flat = _flatten(list(value))
    if len(flat) != math.prod(shape):
        raise TypeError(f"output {name!r} is a ragged list, not a tensor")
    datatype = _datatype_of(flat)
    if datatype == "BYTES":
        flat = [v if isinstance(v, str) else str(v) for v in flat]
    return {"name": name, "shape": shape, "datatype": datatype, "data": flat}


def encode_response(result: Any, model_name: str, request_id: str | None,
                    wanted: list[str]) -> dict[str, Any]:
    if isinstance(result, dict):
        outputs = [to_tensor(str(key), value) for key, value in result.items()
                   if not wanted or key in wanted]
    else:
        outputs = [to_tensor(wanted[0] if wanted else "output-0", result)]
    response: dict[str, Any] = {"model_name": model_name, "outputs": outputs}
    if request_id is not None:
        response["id"] = request_id
    return response
