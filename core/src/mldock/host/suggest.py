"""Messages for names nobody provides: the known names, a close match, which package to install."""

from __future__ import annotations

import difflib

FIRST_PARTY: dict[str, str] = {
    # backend names and URI schemes of mldock's own plugin packages. Checked against what each
    # installed package really registers (core/tests/host/test_suggest.py), both ways.
    "s3": "mldock-s3",
    "sagemaker": "mldock-aws",
    "azureml": "mldock-azure",
    "az": "mldock-azure",
    "azblob": "mldock-azure",
    "gs": "mldock-gcp",
    "gcs": "mldock-gcp",
    "vertex": "mldock-gcp",
    "mlflow": "mldock-mlflow",
    "mlflow+http": "mldock-mlflow",
    "mlflow+https": "mldock-mlflow",
}


def unknown_name_message(kind: str, name: str, known: list[str]) -> tuple[str, str]:
    """Return (message, hint) for an unknown ``kind`` (e.g. "deployer", "storage scheme")."""
    known_text = ", ".join(sorted(known)) if known else "none"
    message = f"unknown {kind} {name!r}; known: {known_text}"
    package = FIRST_PARTY.get(name)
    if package:
        return message, f"{name!r} is provided by {package}: pip install {package}"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return message, f"did you mean {close[0]!r}?"
    return message, "run 'mldock plugins list' to see what is installed"
