"""The rules behind the hostile-config checks, table by table (the CLI cases are in
``test_hostile_config.py``): what a secret key looks like, what redaction masks, which image and
package names are valid."""

from __future__ import annotations

import pytest
from mldock.config.grammar import image_reference_problem, package_problem
from mldock.config.secrets import (
    find_secret,
    is_secret_key,
    printable,
    redact_data,
    redact_text,
)

SECRET_KEYS = ["password", "db_password", "DB_PASSWD", "clientSecret", "api_key", "apiKey",
               "API_TOKEN", "hfToken", "access_key_id", "secret_access_key", "token", "sas",
               "connection_string", "account_key", "private_key", "credentials", "passphrase"]
ORDINARY_KEYS = ["max_tokens", "pad_token", "tokenizer", "num_tokens", "key", "kms_key_id",
                 "n_estimators", "sasl_mechanism", "kansas", "keyword", "token_length"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ORDINARY_KEYS)
def test_ordinary_keys(key):
    assert not is_secret_key(key)


def test_find_secret_paths():
    assert find_secret({"a": {"api_token": "env:X"}}) is None
    assert find_secret({"a": {"api_token": {"env": "X"}}}) is None
    assert find_secret({"use_auth_token": True}) is None
    assert find_secret({"a": [{"b": [["x", {"password": "p"}]]}]})[0] == (
        "a", "0", "b", "0", "1", "password")
    assert find_secret({"u": ["s3://k:p@b/x"]})[0] == ("u", "0")
    assert find_secret({"u": "ssh://git@host/repo"}) is None  # a user name is not a secret


def test_redaction():
    assert redact_text("at http://bob:pw@h:1/x and s3://a:b@c") == (
        "at http://bob:***@h:1/x and s3://a:***@c")
    assert redact_text("no uri here: a:b@c") == "no uri here: a:b@c"
    assert redact_data({"password": "p", "token": "env:T", "n": [1, "http://u:p@h"],
                        "pin_secret": 1234, "flag_secret": True}) == {
        "password": "***", "token": "env:T", "n": [1, "http://u:***@h"], "pin_secret": "***",
        "flag_secret": True}


def test_printable_escapes_controls_only():
    assert printable("a\nb\x1b[31mc\td é") == "a\\nb\\x1b[31mc\\td é"


@pytest.mark.parametrize("image", ["python:3.11-slim", "ubuntu", "a/b/c:1", "localhost/x",
                                   "my-registry.io:5000/team/img_x__y.z-w:v1",
                                   "x@sha256:" + "0" * 64, "[fe80::1]:5000/x"])
def test_valid_image_references(image):
    assert image_reference_problem(image) is None


@pytest.mark.parametrize("image", ["", "Python:3", "a b", "x;y", "x:", "x:-tag", "-x", "x//y",
                                   "x@sha256:short", "x:" + "t" * 129,
                                   "python:3.11\n", "a/" + "b" * 300])
def test_invalid_image_references(image):
    assert image_reference_problem(image) is not None


@pytest.mark.parametrize("name", ["libgomp1", "g++", "curl=7.88.1-10", "libc6:amd64",
                                  "python3.11", "pkg=1:2.0~rc1-3"])
def test_valid_debian_names(name):
    assert package_problem(name) is None


@pytest.mark.parametrize("name", ["a", "Curl", "curl; rm -rf /", "-x", "x y", "x=", "x=$(id)",
                                  "curl\n", "curl\nRUN id"])
def test_invalid_debian_names(name):
    assert package_problem(name) is not None
