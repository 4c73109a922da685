"""A training replica for the fake's tests: report what Vertex AI set, then exit as told.

Prints one ``ENV {json}`` line (the Vertex variables it received), ``mldock-metric`` lines,
waits ``SLEEP_S`` seconds, writes ``FAIL_MESSAGE`` to stderr and exits with ``EXIT_CODE``.
"""

import json
import os
import sys
import time

NAMES = ("CLOUD_ML_JOB_ID", "CLUSTER_SPEC", "TF_CONFIG", "AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR",
         "AIP_TENSORBOARD_LOG_DIR", "STORAGE_EMULATOR_HOST", "EXTRA")
print("ENV " + json.dumps({name: os.environ.get(name) for name in NAMES}))
print("ARGS " + json.dumps(sys.argv[1:]))
print('mldock-metric {"name": "loss", "value": 0.5, "step": 1}')
time.sleep(float(os.environ.get("SLEEP_S", "0")))
if os.environ.get("FAIL_MESSAGE"):
    print(os.environ["FAIL_MESSAGE"], file=sys.stderr)
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
