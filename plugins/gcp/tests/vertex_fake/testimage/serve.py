"""A serving container for the fake's tests: the ``AIP_*`` routes, answering with what it got.

Predict answers ``{"predictions": [{"echo": instance, "deployed": $AIP_DEPLOYED_MODEL_ID}…]}``;
any other POST (raw predict) echoes its body. Health answers 200 once ``READY_AFTER_S`` passed.
"""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
HEALTH = os.environ.get("AIP_HEALTH_ROUTE", "/health")
PREDICT = os.environ.get("AIP_PREDICT_ROUTE", "/predict")


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        ready = time.monotonic() - STARTED >= float(os.environ.get("READY_AFTER_S", "0"))
        if self.path == HEALTH and ready:
            self._answer(200, {"status": "ok"})
        else:
            self._answer(503 if self.path == HEALTH else 404, {"status": "no"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != PREDICT:
            self._answer(404, {"error": self.path})
            return
        data = json.loads(body or b"{}")
        if "instances" not in data:
            self._answer(200, {"raw": data, "storage": os.environ.get("AIP_STORAGE_URI")})
            return
        deployed = os.environ.get("AIP_DEPLOYED_MODEL_ID")
        self._answer(200, {"predictions": [{"echo": item, "deployed": deployed,
                                            "mode": os.environ.get("AIP_MODE")}
                                           for item in data["instances"]]})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["AIP_HTTP_PORT"])), Handler).serve_forever()
