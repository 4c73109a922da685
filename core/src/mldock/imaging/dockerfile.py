"""Render the project's Dockerfile from its config (or read the user's own).

Layer order is chosen for fast rebuilds: things that change rarely first (base image, system
packages, CA bundle, Python dependencies), then the mldock runtime (changes with mldock's version),
then the project's code (changes on every edit). A code-only change therefore rebuilds one ``COPY``
layer and reuses the dependency layer from the engine's cache.

The image follows ``CONTAINER-CONTRACT.md``: exec-form ``ENTRYPOINT ["mldock-runtime"]`` so SIGTERM
reaches the runtime, no ``CMD`` (the runtime serves or trains by environment), ``train``/``serve``
shims on ``PATH``, ``EXPOSE 8080``, the SageMaker bind-to-port label, and nothing under
``/opt/ml`` (the platforms mount it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mldock import __version__
from mldock.config.grammar import image_reference_problem, package_problem
from mldock.errors import ConfigError, MldockError
from mldock.runtime.names import ENV_PREDICTOR, ENV_PROJECT, ENV_TRAIN

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig

# Paths inside the build context that mldock adds (never taken from the project folder).
RUNTIME_DIR = ".mldock-runtime"
"""Runtime package (``mldock/``) and shims (``bin/``) copied from the installed mldock."""
BUILD_DIR = ".mldock-build"
"""Build-only files: the Dockerfile mldock hands to the builder and the extra CA bundle."""
DOCKERFILE_PATH = f"{BUILD_DIR}/Dockerfile"
CA_BUNDLE_PATH = f"{BUILD_DIR}/extra-ca.crt"

# Paths inside the image.
PROGRAM_DIR = "/opt/program"
RUNTIME_ROOT = "/opt/mldock"
CA_DIR = "/usr/local/share/mldock"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PORT = 8080

SAGEMAKER_PORT_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
LABEL_PROJECT = "mldock.project"
LABEL_INPUT_HASH = "mldock.input-hash"
LABEL_VERSION = "mldock.version"



@dataclass(frozen=True)
class DockerfileSpec:
    """Everything the rendered Dockerfile depends on, already validated.

    Attributes:
        base_image: the ``FROM`` image.
        project: the project name (``MLDOCK_PROJECT``).
        train: ``module:function`` of the training function (``MLDOCK_TRAIN``).
        predictor: ``module:object`` of the predictor (``MLDOCK_PREDICTOR``).
        source: the source folder, relative to the context, POSIX form (``src``).
        requirements: the requirements file relative to the context, or ``None`` for no
            dependency layer.
        system_packages: apt packages to install.
        extra_ca_bundle: whether ``CA_BUNDLE_PATH`` is in the context and must be trusted.
        pip_index_url: whether to declare the ``PIP_INDEX_URL`` build argument.
    """

    base_image: str
    project: str
    train: str
    predictor: str
    source: str = "src"
    requirements: str | None = None
    system_packages: tuple[str, ...] = field(default_factory=tuple)
    extra_ca_bundle: bool = False
    pip_index_url: bool = False


def render_dockerfile(spec: DockerfileSpec) -> str:
    """The Dockerfile text for ``spec``; the same spec always renders the same bytes."""
    lines = [
        "# Rendered by mldock from mldock.toml. To use your own, set [build] dockerfile.",
        f"FROM {spec.base_image}",
        "",
        f"LABEL {SAGEMAKER_PORT_LABEL}=true",
        "ENV PYTHONUNBUFFERED=1 \\",
        "    PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    if spec.extra_ca_bundle:
        bundle = f"{CA_DIR}/ca-bundle.crt"
        extra = f"{CA_DIR}/extra-ca.crt"
        lines += [
            "",
            "# Extra CA bundle (TLS-intercepting proxy): trusted by pip, requests and OpenSSL.",
            f"COPY {CA_BUNDLE_PATH} {extra}",
            (f"RUN if [ -f {SYSTEM_CA_BUNDLE} ]; then"
             f" {{ cat {SYSTEM_CA_BUNDLE}; echo; cat {extra}; }} > {bundle};"
             f" else cp {extra} {bundle}; fi"),
            f"ENV PIP_CERT={bundle} \\",
            f"    REQUESTS_CA_BUNDLE={bundle} \\",
            f"    SSL_CERT_FILE={bundle}",
        ]
    if spec.system_packages:
        lines += [
            "",
            "# System packages.",
            "RUN apt-get update \\",
            " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\",
            "      " + " ".join(spec.system_packages) + " \\",
            " && rm -rf /var/lib/apt/lists/*",
        ]
    lines += ["", f"WORKDIR {PROGRAM_DIR}"]
    if spec.requirements:
        target = f"{PROGRAM_DIR}/{PurePosixPath(spec.requirements).name}"
        lines += ["", "# Dependencies: before the code, so a code change reuses this layer."]
        if spec.pip_index_url:
            lines.append("ARG PIP_INDEX_URL")
        lines += [
            f"COPY {_docker_path(spec.requirements)} {target}",
            f"RUN python -m pip install --no-cache-dir -r {target}",
        ]
    env = {
        "PYTHONPATH": f"{RUNTIME_ROOT}:{PROGRAM_DIR}/src",
        ENV_PROJECT: spec.project,
        ENV_TRAIN: spec.train,
        ENV_PREDICTOR: spec.predictor,
    }
    lines += [
        "",
        "# The mldock runtime and the train/serve shims.",
        f"COPY {RUNTIME_DIR}/mldock/ {RUNTIME_ROOT}/mldock/",
        f"COPY {RUNTIME_DIR}/bin/ /usr/local/bin/",
        f"RUN python -m compileall -q {RUNTIME_ROOT}",
        "ENV " + " \\\n    ".join(f"{key}={json.dumps(value)}" for key, value in env.items()),
        (f"LABEL {LABEL_PROJECT}={json.dumps(spec.project)}"
         f" {LABEL_VERSION}={json.dumps(__version__)}"),
        f"EXPOSE {PORT}",
        # No CMD: without a command the runtime decides by environment (a training job trains,
        # anything else serves); SageMaker SDK 3.x local mode starts training with no command.
        'ENTRYPOINT ["mldock-runtime"]',
        "",
        "# The project's code, last: a code change rebuilds this one layer and nothing after it.",
        f"COPY {_docker_path(spec.source)}/ {PROGRAM_DIR}/src/",
    ]
    return "\n".join(lines) + "\n"


def spec_from_config(config: ResolvedConfig) -> DockerfileSpec:
    """Validate the ``[project]`` and ``[build]`` values the Dockerfile uses."""
    project = config.model.project
    build = config.model.build
    file = config.path.name
    base = build.base_image
    if "base_image" not in build.model_fields_set:
        base = f"python:{project.python_version}-slim"
    # the config model checked what the user wrote; the default is derived here, so check it too
    problem = image_reference_problem(base)
    if problem:
        raise ConfigError(file, "build.base_image", f"{problem}: {base!r}")
    for package in build.system_packages:
        problem = package_problem(package)
        if problem:
            raise ConfigError(file, "build.system_packages", problem,
                              hint="use plain names like 'libgomp1' or 'curl=7.88.1-10'")
    source = _relative(config, project.source, "project.source", want_dir=True)
    requirements = None
    if project.requirements:
        requirements = _relative(config, project.requirements, "project.requirements",
                                 want_dir=False)
    if build.pip_index_url:
        check_index_url(file, build.pip_index_url)
    return DockerfileSpec(
        base_image=base, project=project.name, train=project.train, predictor=project.predictor,
        source=source, requirements=requirements, system_packages=tuple(build.system_packages),
        extra_ca_bundle=bool(build.extra_ca_bundle), pip_index_url=bool(build.pip_index_url))


def dockerfile_for(config: ResolvedConfig) -> str:
    """The Dockerfile to build: the user's (``[build] dockerfile``) or the rendered one."""
    custom = config.model.build.dockerfile
    if custom:
        path = config.resolve_path(custom)
        try:
            return path.read_text("utf-8")
        except FileNotFoundError:
            raise ConfigError(config.path.name, "build.dockerfile", f"file not found: {path}",
                              hint="fix the path or remove the key to use mldock's Dockerfile"
                              ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(config.path.name, "build.dockerfile",
                              f"cannot read {path}: {exc}") from None
    return render_dockerfile(spec_from_config(config))


def check_index_url(file: str, url: str) -> None:
    """Refuse an index URL that is not http(s) or that carries credentials (they would end up in
    the image history); private indexes authenticate through the engine's or pip's own config."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(file, "build.pip_index_url", "must be an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(file, "build.pip_index_url",
                          "must not contain credentials (they would be stored in the image"
                          " history)", hint="give the index URL without 'user:password@'")


def _relative(config: ResolvedConfig, value: str, key: str, *, want_dir: bool) -> str:
    """``value`` as a POSIX path relative to the project folder, which must exist inside it."""
    root = config.project_dir.resolve()
    path = config.resolve_path(value).resolve()
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise ConfigError(config.path.name, key, f"{value!r} is outside the project folder",
                          hint="the build context is the project folder") from None
    kind = "folder" if want_dir else "file"
    if not (path.is_dir() if want_dir else path.is_file()):
        raise ConfigError(config.path.name, key, f"{kind} not found: {value}")
    text = relative.as_posix()
    if any(ch in text for ch in "\n\"'\\$ "):
        raise MldockError(f"{key} = {value!r}: path contains characters a Dockerfile cannot copy",
                          hint="rename it using letters, digits, '.', '_', '-' and '/'")
    return text


def _docker_path(relative: str) -> str:
    return "." if relative in ("", ".") else relative
