"""OAuth for the fake: service-account keys, the token endpoint, and checking bearer tokens.

The real google-auth flow runs unchanged: a key file whose ``token_uri`` is ``<fake>/token`` makes
``google.oauth2.service_account.Credentials`` sign a JWT (RS256) and POST it; the fake checks the
signature with the public half it was given when the key was made, the issuer, the audience and
the expiry, then answers one fixed access token (``fake.access_token``: tests can give the same
value to a registry as the ``oauth2accesstoken`` password). API calls may also carry a
self-signed JWT (what GAPIC clients send for service accounts); it is verified the same way.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vertex_fake.errors import ApiError
from vertex_fake.routing import Request, Response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class TrustedKey:
    email: str
    public_key: Any  # cryptography RSAPublicKey


def new_access_token() -> str:
    """A token that looks like Google's (``ya29.`` prefix) and is unique to one fake."""
    return "ya29.fake-" + secrets.token_urlsafe(24)


def write_service_account(fake: Any, path: Path, project: str,
                          email: str | None = None) -> dict[str, Any]:
    """Make a throwaway RSA key, trust its public half in ``fake``, write the key file JSON.

    Returns the key file's content (``private_key`` included: it is a test's own throwaway).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = uuid.uuid4().hex
    email = email or f"mldock-test@{project}.iam.gserviceaccount.com"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account", "project_id": project, "private_key_id": key_id,
        "private_key": pem, "client_email": email, "client_id": str(uuid.uuid4().int)[:21],
        "auth_uri": f"{fake.url}/o/oauth2/auth", "token_uri": f"{fake.url}/token",
        "universe_domain": "googleapis.com",
    }
    fake.trusted_keys[key_id] = TrustedKey(email, key.public_key())
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return info


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(fake: Any, token: str) -> dict[str, Any]:
    """The claims of an RS256 JWT signed by a key ``fake`` trusts; ValueError says why not."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        head, body, signature = token.split(".")
        header = json.loads(_b64decode(head))
        claims: dict[str, Any] = json.loads(_b64decode(body))
    except ValueError as exc:
        raise ValueError("not a JWT") from exc
    if header.get("alg") != "RS256":
        raise ValueError(f"unsupported algorithm {header.get('alg')!r}")
    trusted = fake.trusted_keys.get(header.get("kid"))
    if trusted is None:
        raise ValueError(f"unknown key id {header.get('kid')!r}")
    try:
        trusted.public_key.verify(_b64decode(signature), f"{head}.{body}".encode(),
                                  padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise ValueError("bad signature") from exc
    if claims.get("iss") != trusted.email:
        raise ValueError(f"issuer {claims.get('iss')!r} is not the key's account")
    now = time.time()
    if not claims.get("iat", now + 1) <= now + 60 < claims.get("exp", 0) + 60:
        raise ValueError("expired or not yet valid")
    return claims


def token_endpoint(fake: Any, request: Request) -> Response:
    """``POST /token``: the JWT-bearer grant of a service account, as oauth2.googleapis.com."""
    form = {k: v[0] for k, v in urllib.parse.parse_qs(request.body.decode()).items()}
    if form.get("grant_type") != JWT_BEARER:
        return _oauth_error("unsupported_grant_type", "Invalid grant_type: "
                            f"{form.get('grant_type', '')}")
    try:
        claims = verify_jwt(fake, form.get("assertion", ""))
    except ValueError as exc:
        return _oauth_error("invalid_grant", f"Invalid JWT Signature. ({exc})")
    # google-auth signs service-account grants for Google's token endpoint whatever token_uri
    # the key file names (service_account._GOOGLE_OAUTH2_TOKEN_ENDPOINT); both are accepted
    if claims.get("aud") not in (f"{fake.url}/token", "https://oauth2.googleapis.com/token"):
        return _oauth_error("invalid_grant", f"Invalid JWT: audience {claims.get('aud')!r}")
    if not claims.get("scope"):
        return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience"
                            " provided.")
    fake.token_grants.append(claims)
    return Response.json({"access_token": fake.access_token, "expires_in": 3599,
                          "token_type": "Bearer"})


def _oauth_error(error: str, description: str) -> Response:
    return Response.json({"error": error, "error_description": description}, status=400)


def check_bearer(fake: Any, headers: dict[str, str]) -> None:
    """Refuse (401) a bearer the fake did not issue nor can verify; no header is anonymous
    (accepted unless ``fake.require_auth``)."""
    value = headers.get("authorization", "")
    if not value:
        if fake.require_auth:
            raise _unauthenticated("Request is missing required authentication credential.")
        return
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthenticated("Request had invalid authentication credentials.")
    if token == fake.access_token:
        return
    try:
        verify_jwt(fake, token)
    except ValueError as exc:
        raise _unauthenticated("Request had invalid authentication credentials. Expected OAuth"
                               f" 2 access token ({exc}).") from exc


def _unauthenticated(message: str) -> ApiError:
    return ApiError("UNAUTHENTICATED", message,
                    [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                      "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com",
                      "metadata": {}}])


ROUTES = [("POST", "/token", token_endpoint)]
