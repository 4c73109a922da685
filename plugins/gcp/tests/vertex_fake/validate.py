"""What Vertex AI refuses before it creates anything: the checks every route module shares.

Each check raises a 400 INVALID_ARGUMENT naming the field as the service does
(``custom_job.display_name``). The rules are the documented ones (display names, labels,
machine types, container images, Cloud Storage URIs, KMS keys, networks); the fake cannot know
which machine types a region really offers nor which quota a project has: see the package
docstring for what it does not check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from vertex_fake.errors import invalid

MAX_DISPLAY_NAME = 128
MAX_LABELS = 64
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
MACHINE_TYPE = re.compile(
    r"(n1|n2|n2d|e2|c2|c2d|c3|m1|m2|a2|a3|g2|ct5lp|ct5p|cloud-tpu)-[a-z0-9-]+")
IMAGE_URI = re.compile(r"[a-z0-9.-]+(:\d+)?/[A-Za-z0-9._/-]+"
                       r"(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})?"
                       r"|[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?")
GCS_URI = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?")
KMS_KEY = re.compile(r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+")
NETWORK = re.compile(r"projects/\d+/global/networks/[^/]+")
SERVICE_ACCOUNT = re.compile(r"[a-z0-9-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com"
                             r"|[0-9]+-compute@developer\.gserviceaccount\.com")


def display_name(value: str, field: str) -> None:
    if not value:
        raise invalid(f"{field} must be set.", field)
    if len(value.encode()) > MAX_DISPLAY_NAME:
        raise invalid(f"{field} is too long: {len(value.encode())} bytes, at most"
                      f" {MAX_DISPLAY_NAME}.", field)


def labels(values: Mapping[str, str], field: str) -> None:
    """At most 64; keys start with a lowercase letter; both only lowercase, digits, _ and -."""
    if len(values) > MAX_LABELS:
        raise invalid(f"{field}: at most {MAX_LABELS} labels, got {len(values)}.", field)
    for key, value in values.items():
        if not LABEL_KEY.fullmatch(key):
            raise invalid(f"{field}: label key {key!r} is invalid (lowercase letters, digits,"
                          " '_' and '-', starting with a letter, at most 63).", field)
        if not LABEL_VALUE.fullmatch(value):
            raise invalid(f"{field}: label value {value!r} of {key!r} is invalid (lowercase"
                          " letters, digits, '_' and '-', at most 63).", field)


def machine_type(value: str, field: str) -> None:
    if not value:
        raise invalid(f"{field} must be set.", field)
    if not MACHINE_TYPE.fullmatch(value):
        raise invalid(f"Machine type \"{value}\" is not supported.", field)


def image_uri(value: str, field: str) -> None:
    if not value:
        raise invalid(f"{field} must be set.", field)
    if not IMAGE_URI.fullmatch(value):
        raise invalid(f"{field}: \"{value}\" is not a valid container image URI.", field)


def gcs_uri(value: str, field: str, *, required: bool = False) -> None:
    if not value:
        if required:
            raise invalid(f"{field} must be set.", field)
        return
    if not GCS_URI.fullmatch(value):
        raise invalid(f"{field}: \"{value}\" is not a valid Cloud Storage URI (gs://bucket/…).",
                      field)


def optional(pattern: re.Pattern[str], value: str, field: str, what: str) -> None:
    """``value``, when set, must fully match ``pattern`` (a KMS key, a network…)."""
    if value and not pattern.fullmatch(value):
        raise invalid(f"{field}: \"{value}\" is not a valid {what}.", field)


def encryption(spec: object, field: str) -> None:
    """An ``EncryptionSpec`` when given: a KMS key name."""
    key = getattr(spec, "kms_key_name", "") if spec is not None else ""
    optional(KMS_KEY, key, f"{field}.kms_key_name", "Cloud KMS key name")
