"""Sign-in stand-ins: cloud metadata, Entra ID tokens, managed identity, the ACR token exchange.

* ``GET /metadata/endpoints`` lists one custom cloud whose every endpoint is this fake, so
  ``ARM_CLOUD_METADATA_URL`` + ``MLClient(..., cloud=CLOUD)`` sends ARM calls here.
* Managed identity, App Service flavour (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``): the path
  ``DefaultAzureCredential`` takes in a CLI subprocess. It is a real credential of the chain and,
  unlike the client-secret one, MSAL does not first ask ``login.microsoftonline.com`` to validate
  the authority (instance discovery, which no variable turns off).
* Entra ID v2 (OpenID configuration, ``/{tenant}/oauth2/v2.0/token``) for credentials built with
  ``authority=`` and ``disable_instance_discovery=True``.
* ACR: ``POST /oauth2/exchange`` turns an access token the fake issued into
  :data:`ACR_REFRESH_TOKEN`, the password the tests' htpasswd registry accepts for
  :data:`ACR_USER`; ``/oauth2/token`` turns that into a registry access token.

Tokens are unsigned-looking JWTs (``oid``, ``tid``, ``aud``, ``exp``): clients that decode them
without verification (azure-ai-ml reads the object id) find what they expect.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from .routing import ArmError, Request, Response, Router

CLOUD = "MldockFakeCloud"
TENANT = "00000000-0000-0000-0000-0000000000aa"
OBJECT_ID = "00000000-0000-0000-0000-0000000000bb"
IDENTITY_HEADER = "mldock-fake-identity-header"  # a dummy: what App Service puts in the env
ACR_USER = "00000000-0000-0000-0000-000000000000"  # the user ACR expects with a refresh token
ACR_REFRESH_TOKEN = "mldock-fake-acr-refresh-token"  # a dummy, known to the test registry
TOKEN_SECONDS = 3600


def jwt(audience: str, **claims: Any) -> str:
    """An access token shaped like Entra ID's (its signature is not a signature)."""
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    payload = {"aud": audience, "iss": f"https://sts.fake/{TENANT}/", "tid": TENANT,
               "oid": OBJECT_ID, "appid": OBJECT_ID, "iat": now, "nbf": now,
               "exp": now + TOKEN_SECONDS, "jti": uuid.uuid4().hex, **claims}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.ZmFrZQ"


def claims(token: str) -> dict[str, Any] | None:
    """The payload of a token this module made, or None for anything else."""
    try:
        payload = token.split(".")[1]
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    except (IndexError, ValueError):
        return None
    return data if data.get("iss", "").startswith("https://sts.fake/") else None


def cloud_metadata(base_url: str) -> list[dict[str, Any]]:
    """One cloud in ARM's ``metadata/endpoints`` shape, every endpoint pointing at the fake."""
    return [{
        "name": CLOUD,
        "portal": "https://portal.fake.local",
        "resourceManager": base_url + "/",
        "authentication": {"loginEndpoint": base_url + "/", "audiences": [base_url + "/"],
                           "tenant": "common", "identityProvider": "AAD"},
        "suffixes": {"storage": "core.windows.net", "acrLoginServer": "azurecr.io",
                     "keyVaultDns": "vault.azure.net"},
        "media": base_url, "graph": base_url, "graphAudience": base_url,
        "gallery": base_url, "batch": base_url, "sqlManagement": base_url,
        "vmImageAliasDoc": base_url,
    }]


def register(router: Router, fake: Any) -> None:
    router.add("GET", "/metadata/endpoints", _metadata)
    router.add("GET", "/msi/token", _managed_identity)
    router.add("GET", "/common/discovery/instance", _instance_discovery)
    router.add("GET", "/{tenant}/v2.0/.well-known/openid-configuration", _openid)
    router.add("POST", "/{tenant}/oauth2/v2.0/token", _entra_token)
    router.add("POST", "/oauth2/exchange", _acr_exchange)
    router.add("POST", "/oauth2/token", _acr_token)
    router.add("GET", "/oauth2/token", _acr_token)


def _metadata(request: Request) -> Response:
    return Response(200, cloud_metadata(request.base_url))


def _audience(scope: str) -> str:
    return scope.split()[0].removesuffix("/.default")


def _managed_identity(request: Request) -> Response:
    if request.headers.get("x-identity-header") != IDENTITY_HEADER:
        raise ArmError(401, "Unauthorized", "X-IDENTITY-HEADER is missing or wrong.")
    resource = request.query.get("resource", "")
    return Response(200, {"access_token": jwt(resource), "token_type": "Bearer",
                          "expires_on": str(int(time.time()) + TOKEN_SECONDS),
                          "resource": resource})


def _instance_discovery(request: Request) -> Response:
    authorize = request.query.get("authorization_endpoint", "")
    tenant = authorize.split("/")[3] if authorize.count("/") > 3 else "common"
    return Response(200, {
        "tenant_discovery_endpoint":
            f"{request.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1", "metadata": []})


def _openid(request: Request) -> Response:
    tenant, base = request.params["tenant"], request.base_url
    return Response(200, {
        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
        "issuer": f"{base}/{tenant}/v2.0", "tenant_region_scope": "EU",
        "response_types_supported": ["code", "id_token", "token"],
    })


def _entra_token(request: Request) -> Response:
    form = request.form()
    if form.get("grant_type") != "client_credentials" or not form.get("client_id"):
        return Response(400, {"error": "unsupported_grant_type",
                              "error_description": "the fake knows client credentials only"})
    if not (form.get("client_secret") or form.get("client_assertion")):
        return Response(401, {"error": "invalid_client",
                              "error_description": "AADSTS7000215: Invalid client secret."})
    return Response(200, {"token_type": "Bearer", "expires_in": TOKEN_SECONDS,
                          "ext_expires_in": TOKEN_SECONDS,
                          "access_token": jwt(_audience(form.get("scope", "")))})


def _acr_exchange(request: Request) -> Response:
    """ACR's ``/oauth2/exchange``: an Entra ID access token in, an ACR refresh token out."""
    form = request.form()
    if form.get("grant_type") != "access_token" or not form.get("service"):
        return Response(400, {"errors": [{"code": "UNSUPPORTED", "message":
                              "grant_type=access_token and service are required"}]})
    if claims(form.get("access_token", "")) is None:
        return Response(401, {"errors": [{"code": "UNAUTHORIZED",
                                          "message": "the access token is not valid"}]})
    return Response(200, {"refresh_token": ACR_REFRESH_TOKEN})


def _acr_token(request: Request) -> Response:
    """ACR's ``/oauth2/token``: a refresh token and a scope in, a registry access token out."""
    form = request.form() if request.body else request.query
    if form.get("refresh_token") != ACR_REFRESH_TOKEN:
        return Response(401, {"errors": [{"code": "UNAUTHORIZED",
                                          "message": "the refresh token is not valid"}]})
    return Response(200, {"access_token": jwt(form.get("service", "acr"),
                                              scope=form.get("scope", ""))})
