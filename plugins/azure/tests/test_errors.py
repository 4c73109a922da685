"""Azure's exceptions → one-line MldockErrors, from real SDK exception objects.

Every exception here is raised by the real SDK code path: a loopback HTTP server answers with the
status, headers and body Azure sends (bodies copied from the services' documented error shapes),
and azure-storage-blob's client, or azure-core's pipeline with the ARM error handling azure-ai-ml's
generated clients use, turns it into the exception a user would get.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError
from mldock_azure import errors

SUB = "00000000-0000-0000-0000-000000000000"
WS_ID = (f"/subscriptions/{SUB}/resourceGroups/ml-rg/providers/"
         "Microsoft.MachineLearningServices/workspaces/ml-ws")


class Canned(ThreadingHTTPServer):
    """Answers every request with the response set in :attr:`answer`."""

    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"")


class _Handler(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        status, headers, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _reply

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def canned():
    server = Canned(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def storage_error(canned, status: int, code: str, message: str, *, head: bool = False):
    """What azure-storage-blob raises for this answer (HEAD: header only, like the service)."""
    from azure.storage.blob import BlobClient

    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}\nRequestId:5f6b1c2e-001e-0042-0bd5-6b2a0a000000\n"
            f"Time:2026-11-30T10:00:00.0000000Z</Message></Error>").encode()
    canned.answer = (status, {"x-ms-error-code": code, "Content-Type": "application/xml"}, body)
    client = BlobClient(f"http://127.0.0.1:{canned.server_address[1]}/devstoreaccount1",
                        "models", "blobs/sha256/ab/cdef", retry_total=0)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the SDK's own exception is the point
        client.get_blob_properties() if head else client.download_blob().readall()
    return caught.value


def arm_error(canned, status: int, code: str, message: str):
    """What azure-ai-ml's generated ARM clients raise: map_error, then ARMErrorFormat."""
    from azure.core import PipelineClient
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        map_error,
    )
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    canned.answer = (status, {"Content-Type": "application/json",
                              "x-ms-failure-cause": "gateway"}, body)
    base = f"http://127.0.0.1:{canned.server_address[1]}"
    client = PipelineClient(base)
    response = client.send_request(HttpRequest("GET", f"{base}{WS_ID}?api-version=2024-10-01"))
    error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError,
                 409: ResourceExistsError}
    try:
        map_error(status_code=response.status_code, response=response, error_map=error_map)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    except HttpResponseError as exc:
        return exc


def one_line(error: MldockError) -> str:
    text = str(error)
    assert "\n" not in text, text
    assert "Traceback" not in text and "RequestId" not in text, text
    return text


# --- credentials --------------------------------------------------------------------------------
def test_no_credentials_says_how_to_log_in():
    from azure.identity import CredentialUnavailableError

    exc = CredentialUnavailableError(
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n\tEnvironmentCredential: EnvironmentCredential authentication"
        " unavailable.")
    error = errors.describe(exc, action="push the image")
    assert error.message == "cannot push the image: no Azure credentials found"
    assert "az login" in error.hint and "AZURE_CLIENT_SECRET" in error.hint
    storage = errors.describe(exc, action="store 'm'", role=errors.STORAGE_ROLE)
    assert 'connection_string = "env:NAME"' in storage.hint


def test_identity_refusal_is_credentials_refused():
    from azure.core.exceptions import ClientAuthenticationError

    exc = ClientAuthenticationError(
        "ClientSecretCredential.get_token failed: Authentication failed: AADSTS7000215: Invalid"
        " client secret provided.")
    error = errors.describe(exc, action="get a token")
    assert "Azure refused the credentials" in one_line(error)
    assert "az login" in error.hint


def test_storage_authentication_failed_blames_the_key(canned):
    exc = storage_error(canned, 403, "AuthenticationFailed",
                        "Server failed to authenticate the request. Make sure the value of"
                        " Authorization header is formed correctly including the signature.")
    assert type(exc).__name__ == "ClientAuthenticationError"
    error = errors.describe(exc, action="read 'model'", resource="az://models/iris")
    assert "Azure refused the credentials (AuthenticationFailed)" in one_line(error)
    assert "key, SAS or token is wrong or expired" in error.hint


def test_arm_expired_token_asks_for_the_right_tenant(canned):
    exc = arm_error(canned, 401, "InvalidAuthenticationTokenTenant",
                    "The access token is from the wrong issuer 'https://sts.windows.net/x/'.")
    error = errors.describe(exc, action="reach workspace 'ml-ws'")
    assert "refused the credentials (InvalidAuthenticationTokenTenant)" in one_line(error)
    assert "--tenant" in error.hint


# --- authorization: the role is named --------------------------------------------------------
def test_storage_permission_mismatch_names_the_blob_role(canned):
    exc = storage_error(canned, 403, "AuthorizationPermissionMismatch",
                        "This request is not authorized to perform this operation using this"
                        " permission.")
    error = errors.describe(exc, action="store 'model'", resource="az://models/iris")
    assert one_line(error).startswith("access denied: cannot store 'model' on az://models/iris")
    assert "'Storage Blob Data Contributor'" in error.hint


def test_storage_firewall_is_mentioned(canned):
    exc = storage_error(canned, 403, "AuthorizationFailure",
                        "This request is not authorized to perform this operation.")
    assert "firewall" in errors.describe(exc, action="list").hint


@pytest.mark.parametrize(("operation", "role"), [
    ("Microsoft.MachineLearningServices/workspaces/jobs/write", "AzureML Data Scientist"),
    ("Microsoft.ContainerRegistry/registries/push/write", "AcrPush"),
    ("Microsoft.Storage/storageAccounts/listKeys/action", "Storage Blob Data Contributor"),
    ("Microsoft.Resources/deployments/write", "Contributor"),
])
def test_arm_authorization_failed_names_role_and_scope(canned, operation, role):
    message = (f"The client 'dev@example.com' with object id '11111111-2222-3333-4444-"
               f"555555555555' does not have authorization to perform action '{operation}' over"
               f" scope '{WS_ID}' or the scope is invalid. If access was recently granted,"
               " please refresh your credentials.")
    exc = arm_error(canned, 403, "AuthorizationFailed", message)
    error = errors.describe(exc, action="submit the training job")
    assert one_line(error)
    assert error.message == f"access denied: cannot submit the training job ({operation})"
    assert f"'{role}' on {WS_ID}" in error.hint


def test_caller_may_name_the_role(canned):
    exc = arm_error(canned, 403, "Forbidden", "Access denied")
    error = errors.describe(exc, action="push", role=errors.REGISTRY_ROLE)
    assert "'AcrPush'" in error.hint


# --- not found --------------------------------------------------------------------------------
def test_container_not_found(canned):
    exc = storage_error(canned, 404, "ContainerNotFound", "The specified container does not"
                        " exist.")
    error = errors.describe(exc, action="store 'model'")
    assert isinstance(error, NotFoundError)
    assert one_line(error).startswith("cannot store 'model': the container does not exist")
    assert "az storage container create" in error.hint
    assert not errors.is_missing(exc)


def test_blob_not_found_from_a_head_request(canned):
    exc = storage_error(canned, 404, "BlobNotFound", "The specified blob does not exist.",
                        head=True)
    assert errors.error_code(exc) == "BlobNotFound"
    assert errors.is_missing(exc)
    error = errors.describe(exc, action="read", resource="az://models/x/blob")
    assert isinstance(error, NotFoundError)
    assert one_line(error).startswith("cannot read: az://models/x/blob does not exist")


@pytest.mark.parametrize(("code", "message", "key"), [
    ("ResourceNotFound", ("The Resource 'Microsoft.MachineLearningServices/workspaces/ml-ws'"
                          " under resource group 'ml-rg' was not found."), "workspace"),
    ("ResourceGroupNotFound", "Resource group 'ml-rg' could not be found.", "resource_group"),
    ("SubscriptionNotFound", f"The subscription '{SUB}' could not be found.", "subscription_id"),
    ("UserError", "Compute cpu-cluster not found in workspace ml-ws", "compute"),
])
def test_workspace_side_not_found_names_the_key(canned, code, message, key):
    exc = arm_error(canned, 404, code, message)
    error = errors.describe(exc, action="submit the job")
    assert isinstance(error, NotFoundError)
    assert "does not exist" in one_line(error)
    assert f"[deploy.azureml] {key}" in error.hint


# --- quota, busy, unreachable, SDK-side ---------------------------------------------------------
@pytest.mark.parametrize(("status", "code", "message"), [
    (400, "QuotaExceeded", ("Operation could not be completed as it results in exceeding"
                            " approved standardDSv2Family Cores quota.")),
    (400, "UserError", ("Not enough quota available for Standard_DS3_v2 in SubscriptionId"
                        f" {SUB}. Current usage/limit: 4/6. Additional needed: 8.")),
    (409, "OperationNotAllowed", "The operation exceeds quota limits of Core."),
])
def test_quota_exhausted(canned, status, code, message):
    exc = arm_error(canned, status, code, message)
    error = errors.describe(exc, action="create the deployment")
    assert "an Azure quota is exhausted" in one_line(error)
    assert "instance type" in error.hint


def test_operation_not_allowed_without_quota_is_not_quota(canned):
    exc = arm_error(canned, 409, "OperationNotAllowed", "The deployment is being updated.")
    assert "quota" not in str(errors.describe(exc, action="update"))


def test_server_busy_is_unavailable(canned):
    exc = storage_error(canned, 503, "ServerBusy", "The server is currently unable to receive"
                        " requests. Please retry your request.")
    error = errors.describe(exc, action="store 'model'")
    assert isinstance(error, BackendUnavailableError)
    assert "ServerBusy" in one_line(error)


def test_unreachable_endpoint_names_it():
    from azure.core.exceptions import ServiceRequestError
    from azure.storage.blob import BlobClient
    from mldock.testing.processes import free_port

    url = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    client = BlobClient(url, "models", "x", retry_total=0)
    with pytest.raises(ServiceRequestError) as caught:
        client.get_blob_properties()
    error = errors.describe(caught.value, action="read 'model'", endpoint=url)
    assert isinstance(error, BackendUnavailableError)
    assert one_line(error)
    assert error.message == f"cannot read 'model': {url} is not reachable (connection refused)"


def test_unknown_host_says_it_does_not_resolve():
    from azure.core.exceptions import ServiceRequestError
    from azure.storage.blob import BlobClient

    client = BlobClient("http://mldock-no-such-account.invalid", "c", "x", retry_total=0)
    with pytest.raises(ServiceRequestError) as caught:
        client.get_blob_properties()
    error = errors.describe(caught.value, action="read")
    assert "the host name does not resolve" in one_line(error)
    assert "account" in error.hint


def test_azure_ml_validation_is_a_usage_error():
    from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, ValidationException

    exc = ValidationException(message="instance_count must be positive\nmore detail",
                              no_personal_data_message="instance_count must be positive",
                              target=ErrorTarget.JOB, error_category=ErrorCategory.USER_ERROR)
    error = errors.describe(exc, action="submit the job")
    assert isinstance(error, UsageError)
    assert one_line(error)
    assert error.message == "cannot submit the job: instance_count must be positive"


# --- translated() --------------------------------------------------------------------------------
def test_translated_turns_azure_errors_into_mldock_errors(canned):
    exc = storage_error(canned, 404, "ContainerNotFound", "The specified container does not"
                        " exist.")
    with pytest.raises(NotFoundError) as caught, errors.translated("list", resource="az://c"):
        raise exc
    assert caught.value.__cause__ is exc


def test_translated_lets_bugs_through():
    with pytest.raises(KeyError), errors.translated("list"):
        raise KeyError("a bug, not an Azure error")


def test_translated_keeps_mldock_errors_and_wraps_os_errors(tmp_path):
    original = MldockError("already one line")
    with pytest.raises(MldockError) as caught, errors.translated("x"):
        raise original
    assert caught.value is original
    with pytest.raises(MldockError, match="cannot fetch: No such file"), \
            errors.translated("fetch"):
        (tmp_path / "absent").read_bytes()
