"""Hyperparameters decoded the same way whatever format the platform used."""

from __future__ import annotations

import json

import pytest
from mldock.runtime.hyperparameters import (
    decode_sagemaker,
    decode_value,
    parse_arguments,
    read_env_json,
    read_sagemaker,
    split_reserved,
)


@pytest.mark.parametrize(("text", "value"), [
    ("0.1", 0.1),
    ("10", 10),
    ("-3", -3),
    ("true", True),
    ("false", False),
    ("True", True),
    ("None", None),
    ('["a",1]', ["a", 1]),
    ('{"depth": 3}', {"depth": 3}),
    ('"quoted"', "quoted"),
    ("abc", "abc"),
    ("", ""),
    ("gs://bucket/x", "gs://bucket/x"),
])
def test_decode_value(text, value):
    decoded = decode_value(text)
    assert decoded == value
    assert type(decoded) is type(value)


def test_sagemaker_file_all_strings_decoded_and_internal_keys_skipped(tmp_path):
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps({
        "lr": "0.1", "epochs": "10", "verbose": "true", "layers": '["a",1]', "name": "abc",
        "sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://x",
        "_tuning_objective_metric": "loss"}))
    assert read_sagemaker(path) == {"lr": 0.1, "epochs": 10, "verbose": True,
                                    "layers": ["a", 1], "name": "abc"}


def test_sagemaker_file_missing_is_empty(tmp_path):
    assert read_sagemaker(tmp_path / "absent.json") == {}


def test_decode_sagemaker_keeps_non_string_values():
    assert decode_sagemaker({"a": 3, "sagemaker_region": "x"}) == {"a": 3}


def test_arguments_forms():
    args = ["--lr=0.01", "--epochs", "5", "--shuffle", "--name=abc", "stray", "--tags=[1,2]",
            "--flag2"]
    assert parse_arguments(args) == {"lr": 0.01, "epochs": 5, "shuffle": True, "name": "abc",
                                     "tags": [1, 2], "flag2": True}


def test_argument_value_with_equals_sign():
    assert parse_arguments(["--expr=a=b"]) == {"expr": "a=b"}


def test_reserved_arguments_are_separated():
    reserved, params = split_reserved(parse_arguments(
        ["--input-train=/data/train", "--model-dir=/m", "--lr=0.1", "--checkpoint_dir=/c"]))
    assert reserved == {"input-train": "/data/train", "model-dir": "/m", "checkpoint_dir": "/c"}
    assert params == {"lr": 0.1}


def test_env_json():
    assert read_env_json('{"lr": 0.1, "layers": [1, 2], "name": "x"}') == \
        {"lr": 0.1, "layers": [1, 2], "name": "x"}
    assert read_env_json(None) == {}
    assert read_env_json("  ") == {}
    with pytest.raises(ValueError, match="must be a JSON object"):
        read_env_json("[1, 2]")
