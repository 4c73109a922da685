"""Each way a Google call goes wrong becomes one line saying what failed and what to do.

The exceptions are the real ones: api-core builds them from HTTP responses carrying the JSON error
bodies Google's services send (Cloud Storage's ``errors`` list, the ``google.rpc`` details of
Vertex AI and Artifact Registry), exactly as google-cloud-storage and aiplatform's REST transport
do; gRPC-style errors carry a real ``google.rpc.ErrorInfo`` message. Missing credentials are
provoked for real through google-auth's own default chain.
"""

from __future__ import annotations

import json

import pytest
import requests
from google.api_core import exceptions as gax
from google.rpc import error_details_pb2
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError
from mldock_gcp.clients import CredentialChain
from mldock_gcp.errors import describe, is_missing, role_for, translated

VERTEX = "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1"
GCS = "https://storage.googleapis.com/upload/storage/v1/b/my-bucket/o?uploadType=resumable"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def http_error(status: int, error: dict, *, method: str = "POST",
               url: str = f"{VERTEX}/customJobs") -> gax.GoogleAPICallError:
    """What api-core raises for this HTTP answer (the path every REST client takes)."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"error": {"code": status, **error}}).encode()
    response.request = requests.Request(method, url).prepare()
    return gax.from_http_response(response)


def one_line(error: MldockError) -> MldockError:
    assert "\n" not in str(error)
    assert "Traceback" not in str(error)
    return error


# --- permission denied: the role is named -----------------------------------------------------


def test_vertex_permission_denied_names_the_permission_and_role():
    exc = http_error(403, {
        "message": "Permission 'aiplatform.customJobs.create' denied on resource"
                   " '//aiplatform.googleapis.com/projects/my-proj/locations/us-central1'"
                   " (or it may not exist).",
        "status": "PERMISSION_DENIED",
        "details": [{"@type": ERROR_INFO, "reason": "IAM_PERMISSION_DENIED",
                     "domain": "aiplatform.googleapis.com",
                     "metadata": {"permission": "aiplatform.customJobs.create",
                                  "resource": "projects/my-proj/locations/us-central1"}}]})
    error = one_line(describe(exc, action="start the training job"))
    assert error.message == ("permission denied: cannot start the training job (missing"
                             " aiplatform.customJobs.create)")
    assert "grant the caller roles/aiplatform.user" in error.hint
    assert error.exit_code == 1


def test_storage_permission_denied_is_read_from_the_prose():
    """Cloud Storage's JSON API puts no ErrorInfo in its body: the permission is in the text."""
    text = ("ci-runner@my-proj.iam.gserviceaccount.com does not have storage.objects.create"
            " access to the Google Cloud Storage object. Permission 'storage.objects.create'"
            " denied on resource (or it may not exist).")
    exc = http_error(403, {"message": text, "errors": [
        {"message": text, "domain": "global", "reason": "forbidden"}]}, url=GCS)
    assert isinstance(exc, gax.Forbidden)
    error = one_line(describe(exc, action="store 'runs/1/model'",
                              resource="gs://my-bucket/iris"))
    assert "missing storage.objects.create" in error.message
    assert "roles/storage.objectAdmin on gs://my-bucket/iris" in error.hint
    assert "upload_id" not in str(error) and "uploadType" not in str(error)  # no URL echoed


def test_artifact_registry_upload_denied_names_the_writer_role():
    exc = http_error(403, {
        "message": "Permission \"artifactregistry.repositories.uploadArtifacts\" denied on"
                   " resource \"projects/my-proj/locations/us/repositories/mldock\" (or it may"
                   " not exist)", "status": "PERMISSION_DENIED"},
        url="https://artifactregistry.googleapis.com/v1/projects/my-proj")
    error = describe(exc, action="push the image")
    assert "roles/artifactregistry.writer" in error.hint
    create = http_error(403, {"message": "Permission 'artifactregistry.repositories.create'"
                              " denied on resource", "status": "PERMISSION_DENIED"})
    assert "roles/artifactregistry.admin" in describe(create, action="create it").hint


def test_a_role_the_service_names_itself_wins():
    exc = http_error(403, {
        "message": "Caller does not have required permission to use project my-proj. Grant the"
                   " caller the roles/serviceusage.serviceUsageConsumer role, or a custom role"
                   " with the serviceusage.services.use permission",
        "status": "PERMISSION_DENIED",
        "details": [{"@type": ERROR_INFO, "reason": "USER_PROJECT_DENIED",
                     "domain": "googleapis.com",
                     "metadata": {"service": "aiplatform.googleapis.com",
                                  "consumer": "projects/my-proj"}}]})
    assert "roles/serviceusage.serviceUsageConsumer" in describe(exc, action="list jobs").hint


def test_grpc_permission_denied_with_a_real_error_info():
    info = error_details_pb2.ErrorInfo(reason="IAM_PERMISSION_DENIED",
                                       domain="aiplatform.googleapis.com",
                                       metadata={"permission": "aiplatform.endpoints.deploy"})
    exc = gax.PermissionDenied("Permission denied", details=[info], error_info=info)
    error = describe(exc, action="deploy the model")
    assert "missing aiplatform.endpoints.deploy" in error.message
    assert "roles/aiplatform.user" in error.hint


def test_denied_without_a_permission_falls_back_to_the_service():
    exc = http_error(403, {"message": "The caller does not have permission",
                           "status": "PERMISSION_DENIED",
                           "details": [{"@type": ERROR_INFO, "reason": "ACCESS_DENIED",
                                        "domain": "aiplatform.googleapis.com"}]})
    assert "roles/aiplatform.user" in describe(exc, action="create an endpoint").hint
    bare = http_error(403, {"message": "Forbidden"}, url=GCS)
    assert "roles/storage.objectAdmin" in describe(bare, action="x", resource="gs://b/p").hint


@pytest.mark.parametrize(("permission", "role"), [
    ("storage.objects.get", "roles/storage.objectAdmin"),
    ("storage.buckets.get", "roles/storage.legacyBucketReader"),
    ("storage.buckets.create", "roles/storage.admin"),
    ("aiplatform.endpoints.predict", "roles/aiplatform.user"),
    ("artifactregistry.repositories.downloadArtifacts", "roles/artifactregistry.reader"),
    ("iam.serviceAccounts.actAs", "roles/iam.serviceAccountUser"),
    ("logging.logEntries.list", "roles/logging.viewer"),
    ("aiplatform.googleapis.com", "roles/aiplatform.user"),
    ("storage", "roles/storage.objectAdmin"),
    ("bigquery.tables.get", None),
])
def test_role_for(permission, role):
    assert role_for(permission) == role


# --- API not enabled ------------------------------------------------------------------------


def test_service_disabled_names_the_api_and_the_command():
    exc = http_error(403, {
        "message": "Vertex AI API has not been used in project 123456789 before or it is"
                   " disabled. Enable it by visiting https://console.developers.google.com/apis/"
                   "api/aiplatform.googleapis.com/overview?project=123456789 then retry.",
        "status": "PERMISSION_DENIED",
        "details": [{"@type": ERROR_INFO, "reason": "SERVICE_DISABLED",
                     "domain": "googleapis.com",
                     "metadata": {"service": "aiplatform.googleapis.com",
                                  "serviceTitle": "Vertex AI API",
                                  "consumer": "projects/123456789",
                                  "containerInfo": "123456789"}}]})
    error = one_line(describe(exc, action="start the training job"))
    assert error.message == ("cannot start the training job: Vertex AI API"
                             " (aiplatform.googleapis.com) is not enabled in project 123456789")
    assert "gcloud services enable aiplatform.googleapis.com --project 123456789" in error.hint


def test_service_disabled_from_the_prose_alone():
    """Cloud Storage's older error body: reason accessNotConfigured, no ErrorInfo."""
    text = ("Artifact Registry API has not been used in project my-proj before or it is"
            " disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
            "artifactregistry.googleapis.com/overview?project=my-proj then retry.")
    exc = http_error(403, {"message": text, "errors": [
        {"message": text, "domain": "usageLimits", "reason": "accessNotConfigured"}]})
    error = describe(exc, action="create the repository")
    assert "artifactregistry.googleapis.com is not enabled in project my-proj" in error.message
    assert "gcloud services enable artifactregistry.googleapis.com --project my-proj" \
        in error.hint


# --- quota ------------------------------------------------------------------------------------


def test_quota_exceeded_names_the_metric():
    exc = http_error(429, {
        "message": "Quota exceeded for quota metric 'Custom model training CPUs' and limit"
                   " 'Custom model training CPUs per region' of service"
                   " 'aiplatform.googleapis.com' for consumer 'project_number:123'.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": ERROR_INFO, "reason": "RATE_LIMIT_EXCEEDED",
                     "domain": "googleapis.com",
                     "metadata": {"service": "aiplatform.googleapis.com",
                                  "quota_metric": "aiplatform.googleapis.com/"
                                                  "custom_model_training_cpus",
                                  "quota_limit_value": "24"}}]})
    assert isinstance(exc, gax.TooManyRequests)
    error = one_line(describe(exc, action="start the training job"))
    assert "quota exceeded aiplatform.googleapis.com/custom_model_training_cpus" \
        in error.message
    assert "--service=aiplatform.googleapis.com" in error.hint
    grpc = gax.ResourceExhausted("The following quota metrics exceed quota limits: x")
    assert "quota exceeded" in describe(grpc, action="deploy").message


# --- not found --------------------------------------------------------------------------------


def test_missing_bucket_is_named_with_the_create_command():
    exc = http_error(404, {"message": "The specified bucket does not exist.", "errors": [
        {"message": "The specified bucket does not exist.", "domain": "global",
         "reason": "notFound"}]}, method="GET", url="https://storage.googleapis.com/b/x/o")
    error = describe(exc, action="store 'm'", resource="gs://no-such-bucket/iris/m")
    assert isinstance(error, NotFoundError) and error.exit_code == 4
    assert error.message == "bucket 'no-such-bucket' does not exist (needed to store 'm')"
    assert "gcloud storage buckets create gs://no-such-bucket" in error.hint
    assert not is_missing(exc)


def test_missing_object_is_not_a_missing_bucket():
    exc = http_error(404, {"message": "No such object: my-bucket/iris/refs/x", "errors": [
        {"message": "No such object: my-bucket/iris/refs/x", "domain": "global",
         "reason": "notFound"}]}, method="GET")
    error = describe(exc, action="read 'x'", resource="gs://my-bucket/iris/refs/x")
    assert isinstance(error, NotFoundError)
    assert error.message == "cannot read 'x': gs://my-bucket/iris/refs/x does not exist"
    assert is_missing(exc)


def test_missing_project_is_named():
    exc = http_error(403, {
        "message": "Permission denied on resource project no-such-proj.",
        "status": "PERMISSION_DENIED",
        "details": [{"@type": ERROR_INFO, "reason": "CONSUMER_INVALID",
                     "domain": "googleapis.com",
                     "metadata": {"service": "aiplatform.googleapis.com",
                                  "consumer": "projects/no-such-proj"}}]})
    error = describe(exc, action="list endpoints")
    assert isinstance(error, NotFoundError)
    assert "project 'no-such-proj' does not exist" in error.message
    assert "gcloud projects list" in error.hint


def test_missing_vertex_resource():
    exc = http_error(404, {"message": "CustomJob projects/1/locations/us-central1/customJobs/9"
                                      " not found.", "status": "NOT_FOUND"}, method="GET")
    error = describe(exc, action="read the job", resource="custom job 9")
    assert isinstance(error, NotFoundError)
    assert error.message == "cannot read the job: custom job 9 does not exist"
    project = http_error(404, {"message": "Project 'projects/gone-proj' not found.",
                               "status": "NOT_FOUND"}, method="GET")
    assert "project 'gone-proj' does not exist" in describe(project, action="x").message


# --- credentials, busy and unreachable services -----------------------------------------------


def test_no_credentials_for_real(monkeypatch, tmp_path):
    """google-auth's own default chain, on a machine with nothing configured."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # no metadata server probe
    with pytest.raises(MldockError) as info:
        CredentialChain().identity()
    error = one_line(info.value)
    assert error.message == ("cannot find Google Cloud credentials: no Google Cloud credentials"
                             " found")
    assert "gcloud auth application-default login" in error.hint


def test_malformed_key_file_for_real(monkeypatch, tmp_path):
    from mldock.config.plugin_config import SecretRef

    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    monkeypatch.setenv("MY_KEY", str(key))
    with pytest.raises(MldockError) as info:
        CredentialChain(SecretRef("MY_KEY")).identity()
    assert "MY_KEY" in info.value.message and "not a valid Google credential" in info.value.message
    monkeypatch.setenv("MY_KEY", str(tmp_path / "absent.json"))
    with pytest.raises(MldockError) as info:
        CredentialChain(SecretRef("MY_KEY")).identity()
    assert "absent.json" in one_line(info.value).message


def test_refused_and_expired_credentials():
    from google.auth import exceptions as gauth

    expired = gauth.RefreshError("('invalid_grant: Token has been expired or revoked.',"
                                 " {'error': 'invalid_grant'})")
    assert "credentials have expired" in describe(expired, action="push").message
    unauthorized = http_error(401, {"message": "Request had invalid authentication credentials.",
                                    "status": "UNAUTHENTICATED"})
    error = describe(unauthorized, action="push")
    assert "were refused" in error.message and "gcloud auth" in error.hint


def test_busy_service_and_closed_port():
    busy = http_error(503, {"message": "The service is currently unavailable.",
                            "status": "UNAVAILABLE"})
    error = describe(busy, action="read the job")
    assert isinstance(error, BackendUnavailableError) and error.exit_code == 3
    assert "answered 503" in error.message
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailableError) as info, \
            translated("list artifacts", resource="gs://b/p"):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert "not reachable for gs://b/p" in info.value.message
    assert "STORAGE_EMULATOR_HOST" in info.value.hint


def test_corrupt_download_and_local_disk():
    from google.cloud.storage.exceptions import DataCorruption

    error = describe(DataCorruption(None, "Checksum mismatch while downloading"),
                     action="fetch 'm'", resource="gs://b/blobs/ab")
    assert "gs://b/blobs/ab failed its checksum check" in error.message
    with pytest.raises(MldockError) as info, translated("write the model"):
        open("/proc/no/such/dir/file", "w")  # noqa: SIM115 - the real OSError
    assert "/proc/no/such/dir/file" in info.value.message


def test_translated_keeps_mldock_errors_and_interrupts():
    original = NotFoundError("x")
    with pytest.raises(NotFoundError) as info, translated("a"):
        raise original
    assert info.value is original
    with pytest.raises(KeyboardInterrupt), translated("a"):
        raise KeyboardInterrupt
    with pytest.raises(MldockError, match=r"^cannot a: RuntimeError: boom$"), translated("a"):
        raise RuntimeError("boom")
