"""Online prediction: ``:predict`` and ``:rawPredict`` reach the deployed model's container.

The deployed model is drawn with the endpoint's ``trafficSplit`` weights. ``:predict`` parses the
body into ``PredictRequest``, forwards ``{"instances", "parameters"}`` to the container's predict
route and answers ``PredictResponse`` (``predictions``, ``deployedModelId``, ``model``…).
``:rawPredict`` forwards the body as is and answers the container's bytes; the GAPIC client's
form (``{"httpBody": {"contentType", "data"}}``) is unwrapped and its answer wrapped the same
way. A container's error status comes back as Vertex AI relays it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from vertex_fake import traffic
from vertex_fake.api_endpoints import servers
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request, Response

BASE = "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}"


def _target(fake: Any, request: Request, permission: str) -> tuple[Any, Any, Any]:
    """``(endpoint, deployed model, server)`` that serves this request."""
    name = f"{fake.parent(request.params, permission)}/endpoints/{request.params['endpoint']}"
    with fake.lock:
        endpoint = fake.endpoint(name)
        chosen = traffic.pick(endpoint.traffic_split)
        deployed = next((d for d in endpoint.deployed_models if d.id == chosen), None)
        server = servers(fake).get(chosen or "")
    if deployed is None or server is None:
        raise ApiError("FAILED_PRECONDITION", f"Endpoint {name} has no deployed model that"
                       " receives traffic.")
    return endpoint, deployed, server


def _relay(status: int, body: bytes) -> ApiError:
    text = body.decode("utf-8", "replace")[:2000]
    google = "INVALID_ARGUMENT" if status < 500 else "INTERNAL"
    return ApiError(google, f"{{\"error\": {json.dumps(text)}, \"code\": {status}}}",
                    http_status=status if status >= 400 else 500)


def predict(fake: Any, request: Request) -> dict[str, Any]:
    from google.cloud.aiplatform_v1 import types

    parsed = request.message(types.PredictRequest)
    if not parsed.instances:
        raise invalid("instances must be set.", "instances")
    _, deployed, server = _target(fake, request, "aiplatform.endpoints.predict")
    payload = {key: value for key, value in request.json().items()
               if key in ("instances", "parameters")}
    status, _, body = server.post(json.dumps(payload).encode())
    if status != 200:
        raise _relay(status, body)
    try:
        predictions = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError("INTERNAL", "The model's answer has no \"predictions\": "
                       f"{body[:300]!r}") from exc
    model = fake.model(deployed.model)
    answer = {"predictions": predictions, "deployedModelId": deployed.id, "model": model.name,
              "modelDisplayName": model.display_name, "modelVersionId": model.version_id}
    types.PredictResponse.from_json(json.dumps(answer))  # the shape the SDK will parse
    return answer


def raw_predict(fake: Any, request: Request) -> Response:
    wrapped = _gapic_body(request)
    body = base64.b64decode(wrapped.get("data", "")) if wrapped is not None else request.body
    content_type = (wrapped.get("contentType", "application/json") if wrapped is not None
                    else request.headers.get("content-type", "application/json"))
    _, deployed, server = _target(fake, request, "aiplatform.endpoints.predict")
    status, headers, answer = server.post(body, content_type)
    if status >= 400:
        raise _relay(status, answer)
    answer_type = headers.get("content-type") or headers.get("Content-Type") or \
        "application/json"
    extra = {"X-Vertex-AI-Deployed-Model-Id": deployed.id}
    if wrapped is not None:
        return Response(200, json.dumps({"contentType": answer_type, "data": base64.b64encode(
            answer).decode()}).encode(), headers=extra)
    return Response(200, answer, content_type=answer_type, headers=extra)


def _gapic_body(request: Request) -> dict[str, Any] | None:
    """The ``httpBody`` of a GAPIC ``RawPredictRequest`` body, or None for a raw body."""
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        return None
    if isinstance(data, dict) and set(data) == {"httpBody"} and isinstance(data["httpBody"],
                                                                          dict):
        from google.cloud.aiplatform_v1 import types

        request.message(types.RawPredictRequest)  # a 400 for fields the service would refuse
        found: dict[str, Any] = data["httpBody"]
        return found
    return None


ROUTES = [
    ("POST", BASE + ":predict", predict),
    ("POST", BASE + ":rawPredict", raw_predict),
]
