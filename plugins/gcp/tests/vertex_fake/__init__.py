"""A local fake of the Google Cloud APIs mldock-gcp calls, driven by the real SDKs in tests.

Vertex AI has no emulator. This package answers its REST API (and Cloud Logging's, Artifact
Registry's, Resource Manager's and the OAuth token endpoint) on 127.0.0.1 from a small state
machine, parses every request body into the API's own message types (an unknown field, a wrong
type or a bad enum is a 400 INVALID_ARGUMENT, as the service answers), checks what the service
would refuse, and runs the containers on the real Docker engine the way Vertex AI does.

Fixtures (``plugins/gcp/tests/conftest.py``)
--------------------------------------------
``vertex_fake``            the session's :class:`VertexFake` (started; stopped at the end, with
                           every container it started). Not reset between tests: resources get
                           unique numeric ids; name your display names/labels uniquely.
``gcp_service_account``    ``(path, info)`` of a throwaway service-account key file whose
                           ``token_uri`` is the fake's ``/token`` (the real google-auth flow
                           signs a JWT, the fake verifies it and issues ``fake.access_token``).
``gcp_sandbox`` (autouse)  hides the developer's ADC: ``CLOUDSDK_CONFIG`` to an empty folder,
                           ``GOOGLE_APPLICATION_CREDENTIALS`` and project variables unset.
``gcp_env``                the environment variables a CLI subprocess needs (a dict to pass).
``gcp_config_block``       ``gcp_config_block(bucket)`` → the ``[env.gcp]`` TOML text pointing at
                           the fake and the GCS emulator.
``gcp_registry``           the harness's htpasswd registry with user ``oauth2accesstoken`` and
                           password ``fake.access_token`` (Artifact Registry stand-in).
``vertex_clients``         GAPIC clients on the fake (REST transport, anonymous credentials):
                           ``vertex_clients.job``, ``.model``, ``.endpoint``, ``.prediction``.

The fake (``VertexFake``)
-------------------------
``url`` / ``api_endpoint``   ``http://127.0.0.1:PORT`` (the SDK's ``api_endpoint``).
``project`` / ``project_number``  the one project (answers name resources with the *number*,
                           as Vertex AI does; requests may use either). Locations: ``locations``.
``custom_job(id)``, ``model(id)``, ``endpoint(id)``, ``batch_job(id)``  the stored
                           ``aiplatform_v1`` message (id or full name); ``list(collection)``.
``fail_next(pattern, http_status, google_status, message, details, times=1)``  answer the next
                           request whose ``"<VERB> <path>"`` matches the regex with that error;
                           ``errors.error_info(reason, domain, **metadata)`` builds details.
``journal`` / ``requests_to(regex)``  every request received ``(verb, path, body)``.
``log_entries()``          Cloud Logging entries of job containers.
``require_auth``           refuse anonymous requests (401).
``internal_errors``        tracebacks of handler bugs (the fixture fails the test).

What it serves
--------------
* ``POST /token`` (JWT-bearer grant of a service-account key; self-signed JWTs accepted too).
* Vertex AI v1 under ``/v1/projects/P/locations/L/``: ``customJobs`` (create runs one container
  per replica with ``CLUSTER_SPEC``/``TF_CONFIG``/``AIP_*``; get, list, ``:cancel``, delete),
  ``models:upload`` (operation), models get/list/delete, ``endpoints`` create/get/list/patch/
  delete, ``:deployModel`` (starts the serving container; done when its health route answers),
  ``:undeployModel``, ``:predict``, ``:rawPredict`` (raw body, or the GAPIC ``httpBody`` form),
  ``batchPredictionJobs`` (JSONL/CSV from the GCS emulator → ``predictions_00001.jsonl``; get,
  list, ``:cancel``, delete), ``operations/*`` (get, ``:wait``; also under ``/ui/``).
  List calls take ``filter`` (comparisons joined by AND), ``pageSize``, ``pageToken``.
* Cloud Logging ``POST /v2/entries:list``: job replicas' lines (``resource.labels.job_id``).
* Artifact Registry ``/v1/projects/P/locations/L/repositories[?repositoryId=]`` (create is an
  operation), Resource Manager ``GET /v3/projects/P``, Service Usage
  ``GET /v1/projects/P/services/S`` (``fake.disabled_services`` answers DISABLED).
* Knobs: ``deploy_timeout_s`` (health wait), ``operation_delay_s`` (operations finish after it,
  so clients really poll), ``require_auth``.

What it cannot check
--------------------
IAM (every caller may do everything, unless a fault says otherwise), quotas, autoscaling (one
serving container per deployed model whatever the replica counts; a batch job runs one), which
machine types and accelerators a region really has, Cloud Storage FUSE (``/gcs/…`` is not
mounted: containers reach the emulator through ``STORAGE_EMULATOR_HOST``), VPC networks, CMEK,
Spot preemption.
"""

from vertex_fake.errors import ApiError, error_info
from vertex_fake.fake import PROJECT, PROJECT_NUMBER, SESSION_LABEL, VertexFake

__all__ = ["PROJECT", "PROJECT_NUMBER", "SESSION_LABEL", "ApiError", "VertexFake", "error_info"]
