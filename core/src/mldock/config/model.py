"""The pydantic model of ``mldock.toml``'s core sections.

Backend sections (``[build.docker]``, ``[storage.s3]``, ``[tracking.mlflow]``,
``[deploy.sagemaker]``) are the extra tables of each concern's section; the loader validates each
with the model the backend's record supplies.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mldock.config.grammar import image_reference_problem, index_url_problem, package_problem
from mldock.tuning.spec import TuneSection

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
OBJECT_REF = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
CHANNEL = r"^[a-z][a-z0-9_]{0,62}$"
ENV_NAME = r"^[a-z][a-z0-9_-]{0,39}$"

SCALARS = (str, int, float, bool)


class Section(BaseModel):
    """A core section: unknown scalar keys are errors; unknown tables are backend sections."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def backend_sections(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class ProjectSection(BaseModel):
    """``[project]``: what the project is and where its code is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROJECT_NAME, description="image and experiment name")
    train: str = Field(pattern=OBJECT_REF, description="training function, 'module:function'")
    predictor: str = Field(pattern=OBJECT_REF, description="predictor, 'module:object'")
    source: str = Field(default="src", description="folder holding the project's packages")
    requirements: str | None = Field(default=None, description="requirements file for the image")
    python_version: str = Field(default="3.11", pattern=r"^3\.\d{1,2}$")


class BuildSection(Section):
    """``[build]``: how the one image is built."""

    builder: str = "docker"
    image: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._/-]*$",
                              description="image repository name; default: the project name")
    base_image: str = "python:3.11-slim"
    dockerfile: str | None = Field(default=None, description="a Dockerfile to use instead")
    platform: str = "linux/amd64"
    pip_index_url: str | None = None
    extra_ca_bundle: str | None = Field(
        default=None, description="a CA bundle file added to the image (TLS-intercepting proxies)")
    system_packages: list[str] = Field(default_factory=list)

    @field_validator("base_image")
    @classmethod
    def _base_image(cls, value: str) -> str:
        problem = image_reference_problem(value)
        if problem:
            raise ValueError(problem + " (e.g. 'python:3.11-slim' or 'registry:5000/team/base:1')")
        return value

    @field_validator("system_packages")
    @classmethod
    def _packages(cls, value: list[str]) -> list[str]:
        for package in value:
            problem = package_problem(package)
            if problem:
                raise ValueError(problem + " (use plain names like 'libgomp1' or"
                                 " 'curl=7.88.1-10')")
        return value

    @field_validator("pip_index_url")
    @classmethod
    def _index_url(cls, value: str | None) -> str | None:
        problem = index_url_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


class StorageSection(Section):
    """``[storage]``: where artifacts live; the URI's scheme picks the backend."""

    uri: str = ".mldock/artifacts"

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: give a folder or a URI such as 's3://bucket/x'")
        return value


class TrackingSection(Section):
    """``[tracking]``: where runs are recorded; the URI's scheme picks the backend."""

    uri: str = "sqlite:///.mldock/runs.db"
    backend: str | None = Field(default=None, description="backend name, overriding the scheme")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: give a URI such as 'sqlite:///.mldock/runs.db'")
        if value.startswith("sqlite:") and not value.partition(":")[2].lstrip("/").strip():
            raise ValueError("names no database file: use 'sqlite:///PATH', e.g."
                             " 'sqlite:///.mldock/runs.db'")
        return value


class DeploySection(Section):
    """``[deploy]``: where training jobs and endpoints run."""

    deployer: str = "local"
    endpoint: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")


class MldockConfig(BaseModel):
    """A whole resolved config (after the environment overlay)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: ProjectSection
    build: BuildSection = Field(default_factory=BuildSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    tracking: TrackingSection = Field(default_factory=TrackingSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, str] = Field(default_factory=dict)
    tune: TuneSection | None = None  # hyperparameter search: mldock.tuning.spec

    @field_validator("hyperparameters")
    @classmethod
    def _hyper_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if not re.fullmatch(r"^[A-Za-z_][A-Za-z0-9_.-]*$", key):
                raise ValueError(f"invalid hyperparameter name {key!r}")
            if key.startswith("sagemaker_"):
                raise ValueError(f"{key!r}: names starting with 'sagemaker_' are reserved")
            flat = (isinstance(item, SCALARS)
                    or (isinstance(item, list) and all(isinstance(v, SCALARS) for v in item))
                    or (isinstance(item, dict)
                        and all(isinstance(v, SCALARS) for v in item.values())))
            if not flat:
                raise ValueError(f"hyperparameter {key!r} must be a string, number, boolean, or a"
                                 " flat list or table of them")
        return value

    @field_validator("data")
    @classmethod
    def _channel_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, uri in value.items():
            if not re.fullmatch(CHANNEL, key):
                raise ValueError(f"invalid data channel name {key!r}: use lowercase letters,"
                                 " digits and '_'")
            if not uri.strip():
                raise ValueError(f"data channel {key!r} has an empty location")
        return value


TOP_LEVEL_KEYS = frozenset(MldockConfig.model_fields) | {"env"}
