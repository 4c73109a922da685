"""What a job input or a deployment's model may name besides storage: a registered model
(``azureml:<name>:<version>`` or its ARM id) or another job's output
(``azureml://jobs/<job>/outputs/<output>``), resolved as the service does to the storage URI
behind it (a model version's ``modelUri``, a job output's ``uri``), which
:meth:`.storage.BlobSide.locate` then places in Azurite.
"""

from __future__ import annotations

import re
from typing import Any

from .routing import ArmError

MODEL_REFERENCE = re.compile(r"^azureml:(?P<name>[^:/]+):(?P<version>[^:/]+)$")
MODEL_ID = re.compile(r"/workspaces/[^/]+/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/?$",
                      re.IGNORECASE)
JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)/?(?P<rest>.*)$")
MAX_DEPTH = 4  # a model registered from a job output that is itself a reference, at most


def resolve(fake: Any, workspace: str, uri: str) -> str:
    """The storage URI ``uri`` stands for in ``workspace`` (an ARM id); ``uri`` itself when it
    is storage already. An unknown model or job, or an output the job does not have, is ARM's
    404 naming it."""
    for _ in range(MAX_DEPTH):
        model = MODEL_REFERENCE.match(uri) or MODEL_ID.search(uri)
        job = JOB_OUTPUT.match(uri)
        if model:
            resource = f"{workspace}/models/{model['name']}/versions/{model['version']}"
            found = fake.store.require(resource, "Microsoft.MachineLearningServices/models")
            uri = str(found["properties"]["modelUri"])
        elif job:
            found = fake.store.require(f"{workspace}/jobs/{job['job']}",
                                       "Microsoft.MachineLearningServices/jobs")
            output = (found["properties"].get("outputs") or {}).get(job["output"])
            if not output or not output.get("uri"):
                raise ArmError(404, "ResourceNotFound", f"Job {job['job']!r} has no output"
                               f" {job['output']!r}.")
            uri = str(output["uri"]).rstrip("/") + ("/" + job["rest"] if job["rest"] else "/")
        else:
            return uri
    return uri
