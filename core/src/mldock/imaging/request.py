"""From a project config to a :class:`~mldock.interfaces.BuildRequest`, and to the image tag.

``mldock build`` hands :func:`build_request` to the selected builder. ``mldock train`` and
``mldock deploy`` call :func:`image_for` (or :func:`require_image`) to find the image the current
code would produce, so they never run a stale image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mldock import __version__
from mldock.errors import ConfigError, NotFoundError
from mldock.imaging.context import (
    DOCKERIGNORE,
    dockerignore_text,
    ignore_patterns,
    runtime_files,
)
from mldock.imaging.dockerfile import (
    CA_BUNDLE_PATH,
    LABEL_INPUT_HASH,
    LABEL_PROJECT,
    LABEL_VERSION,
    SAGEMAKER_PORT_LABEL,
    check_index_url,
    dockerfile_for,
)
from mldock.imaging.inputs import input_hash, tag_for

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.interfaces import BuildRequest


def image_repository(config: ResolvedConfig) -> str:
    """``[build] image``, or the project name."""
    return config.model.build.image or config.model.project.name


def build_request(config: ResolvedConfig) -> BuildRequest:
    """Everything a builder needs, with the tag derived from the hash of all build inputs."""
    from mldock.interfaces import BuildRequest

    build = config.model.build
    dockerfile = dockerfile_for(config)
    patterns = ignore_patterns(config)
    extra_files = runtime_files()
    extra_files[DOCKERIGNORE] = dockerignore_text(patterns).encode("utf-8")
    if build.extra_ca_bundle:
        extra_files[CA_BUNDLE_PATH] = _read_ca_bundle(config, build.extra_ca_bundle)
    build_args: dict[str, str] = {}
    if build.pip_index_url:
        check_index_url(config.path.name, build.pip_index_url)
        build_args["PIP_INDEX_URL"] = build.pip_index_url
    digest = input_hash(dockerfile=dockerfile, context_dir=config.project_dir, patterns=patterns,
                        extra_files=extra_files, build_args=build_args, platform=build.platform,
                        version=__version__)
    # The rendered Dockerfile sets the project, version and SageMaker labels before the code layer;
    # labels given here become build steps after it, so only the input hash (which cannot be inside
    # the file it hashes) is added this way, plus the rest for a user's own Dockerfile.
    labels = {LABEL_INPUT_HASH: digest}
    if build.dockerfile:
        labels.update({SAGEMAKER_PORT_LABEL: "true", LABEL_PROJECT: config.model.project.name,
                       LABEL_VERSION: __version__})
    return BuildRequest(context_dir=config.project_dir, dockerfile=dockerfile,
                        tag=tag_for(image_repository(config), digest), labels=labels,
                        build_args=build_args, platform=build.platform, extra_files=extra_files)


def image_for(config: ResolvedConfig) -> str:
    """The tag the current code and config would build (``iris:1a2b3c4d5e6f``); builds nothing."""
    return build_request(config).tag


def missing_image_error(tag: str) -> NotFoundError:
    """The error ``train``/``deploy`` raise when the current code's image was not built."""
    return NotFoundError(f"image {tag} is not built for the current code; run 'mldock build'")


def require_image(config: ResolvedConfig, exists: Callable[[str], bool]) -> str:
    """The current image tag, or :func:`missing_image_error` when ``exists(tag)`` is false.

    ``exists`` is usually the selected builder's :meth:`~mldock.interfaces.Builder.exists`.
    """
    tag = image_for(config)
    if not exists(tag):
        raise missing_image_error(tag)
    return tag


def _read_ca_bundle(config: ResolvedConfig, value: str) -> bytes:
    path = config.resolve_path(value)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(config.path.name, "build.extra_ca_bundle",
                          f"cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(config.path.name, "build.extra_ca_bundle",
                          f"{path} holds no PEM certificate",
                          hint="give a PEM bundle of CA certificates (no private keys)")
    if b"PRIVATE KEY-----" in data:
        raise ConfigError(config.path.name, "build.extra_ca_bundle",
                          f"{path} contains a private key; it must never go into an image",
                          hint="give only the CA certificates")
    return data
