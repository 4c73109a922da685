"""``config.py``: the options model refuses typos and secrets written into the file."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.config import {{ cookiecutter.__options_name }}


def test_options_reject_typos_and_literal_secrets():
    with pytest.raises(ValueError, match="fsnyc"):
        {{ cookiecutter.__options_name }}.model_validate({"fsnyc": False})
    with pytest.raises(ValueError, match="environment variable"):
        {{ cookiecutter.__options_name }}.model_validate({"token": "s3cr3t"})
    assert {{ cookiecutter.__options_name }}.model_validate({"token": "env:MY_TOKEN"}).token.variable == "MY_TOKEN"
