"""Built-in plugin ``core-templates``: the project templates (``sklearn``, ``pytorch``, ``xgboost``,
``minimal``) and the ``plugin`` package template."""

from __future__ import annotations

from pathlib import Path

from mldock.markers import hookimpl
from mldock.records import TemplateRecord

TEMPLATES = {
    "sklearn": "scikit-learn classifier on a small tabular data set (the default)",
    "pytorch": "PyTorch network trained data-parallel (DDP) on one or several hosts",
    "xgboost": "gradient-boosted trees (XGBoost) on tabular data, with early stopping",
    "minimal": "train/predict skeleton with no framework",
    "plugin": "an mldock plugin package: an artifact store with conformance tests",
}


def template_root() -> Path:
    """Where the templates are: inside the installed package, or the repository's cookiecutter/."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "cookiecutter"
        if (candidate / "sklearn").is_dir():
            return candidate
    return packaged


@hookimpl
def mldock_templates() -> list[TemplateRecord]:
    root = template_root()
    return [TemplateRecord(name=name, summary=summary, location=str(root / name))
            for name, summary in TEMPLATES.items()]
