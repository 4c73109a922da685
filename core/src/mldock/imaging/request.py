"""From a project config to a :class:`~mldock.interfaces.BuildRequest`, and to the image tag.

``mldock build`` hands :func:`plan_build`'s request to the selected builder. ``mldock train`` and
``mldock deploy`` call :func:`image_for` (or :func:`require_image`) to find the image the current
code would produce, so they never run a stale image; when it is missing, the error names the input
that changed since the last build (see :mod:`mldock.imaging.explain`).

The tag depends only on what reaches the image (see :mod:`mldock.imaging.inputs`): ``[storage]``,
``[tracking]``, ``[deploy]``, ``[data]`` and ``[hyperparameters]`` are not read here, so every
``--env`` overlay of those runs the one image ``mldock build`` made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from mldock import __version__
from mldock.errors import ConfigError, NotFoundError
from mldock.imaging.context import (
    DOCKERIGNORE,
    context_entries,
    dockerignore_text,
    ignore_patterns,
    runtime_files,
)
from mldock.imaging.copies import copy_sources
from mldock.imaging.dockerfile import (
    CA_BUNDLE_PATH,
    LABEL_INPUT_HASH,
    LABEL_PROJECT,
    LABEL_VERSION,
    SAGEMAKER_PORT_LABEL,
    DockerfileSpec,
    check_index_url,
    render_dockerfile,
    spec_from_config,
)
from mldock.imaging.explain import changes, read_record
from mldock.imaging.guards import refuse_copied_data
from mldock.imaging.inputs import InputManifest, manifest_for, tag_for

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.interfaces import BuildRequest


@dataclass(frozen=True)
class BuildPlan:
    """A build request and the inputs manifest its tag hashes."""

    request: BuildRequest
    manifest: InputManifest

    @property
    def tag(self) -> str:
        return self.request.tag


def image_repository(config: ResolvedConfig) -> str:
    """``[build] image``, or the project name."""
    return config.model.build.image or config.model.project.name


def plan_build(config: ResolvedConfig) -> BuildPlan:
    """Everything a builder needs, with the tag derived from the hash of all build inputs.

    With mldock's rendered Dockerfile, the context is what that Dockerfile ``COPY``s (derived from
    its text); with a user's Dockerfile (``[build] dockerfile``), the whole project folder counts,
    as ``docker build`` would see it (the project's ``.dockerignore`` plus mandatory excludes).
    """
    from mldock.interfaces import BuildRequest

    build = config.model.build
    spec = None if build.dockerfile else spec_from_config(config)
    dockerfile = _user_dockerfile(config) if spec is None else render_dockerfile(spec)
    include = None if spec is None else copy_sources(dockerfile)
    patterns = ignore_patterns(config.project_dir, include)
    extra_files = runtime_files()
    extra_files[DOCKERIGNORE] = dockerignore_text(patterns).encode("utf-8")
    if build.extra_ca_bundle:
        extra_files[CA_BUNDLE_PATH] = _read_ca_bundle(config, build.extra_ca_bundle)
    build_args: dict[str, str] = {}
    if build.pip_index_url:
        check_index_url(config.path.name, build.pip_index_url)
        build_args["PIP_INDEX_URL"] = build.pip_index_url
    entries = context_entries(config.project_dir, patterns, extra_files, include)
    if spec is not None:
        refuse_copied_data(config, entries)
    manifest = manifest_for(dockerfile=dockerfile, entries=entries, build_args=build_args,
                            platform=build.platform, version=__version__,
                            config_items=_spec_items(spec),
                            line_files=[spec.requirements] if spec and spec.requirements else [])
    digest = manifest.digest()
    # The rendered Dockerfile sets the project, version and SageMaker labels before the code layer;
    # labels given here become build steps after it, so only the input hash (which cannot be inside
    # the file it hashes) is added this way, plus the rest for a user's own Dockerfile.
    labels = {LABEL_INPUT_HASH: digest}
    if spec is None:
        labels.update({SAGEMAKER_PORT_LABEL: "true", LABEL_PROJECT: config.model.project.name,
                       LABEL_VERSION: __version__})
    request = BuildRequest(context_dir=config.project_dir, dockerfile=dockerfile,
                           tag=tag_for(image_repository(config), digest), labels=labels,
                           build_args=build_args, platform=build.platform,
                           extra_files=extra_files, include=include)
    return BuildPlan(request=request, manifest=manifest)


def build_request(config: ResolvedConfig) -> BuildRequest:
    """The request of :func:`plan_build`."""
    return plan_build(config).request


def image_for(config: ResolvedConfig) -> str:
    """The tag the current code and config would build (``iris:1a2b3c4d5e6f``); builds nothing."""
    return plan_build(config).tag


def explain(config: ResolvedConfig, plan: BuildPlan | None = None) -> list[str]:
    """What changed since the last build of this project, one line each (see
    :func:`mldock.imaging.explain.changes`); empty when nothing did. Raises ``LookupError`` when
    there is no record of a last build."""
    plan = plan or plan_build(config)
    record = read_record(config.project_dir)
    if record is None:
        raise LookupError("no record of a previous build")
    return changes(record.manifest, plan.manifest, lambda path: _read_text(config, path))


def missing_image_error(tag: str, config: ResolvedConfig | None = None,
                        plan: BuildPlan | None = None) -> NotFoundError:
    """The error ``train``/``deploy`` raise when the current code's image was not built; with the
    config, it names the first input that changed since the last build."""
    reason = ""
    if config is not None:
        try:
            lines = explain(config, plan)
        except LookupError:
            lines = []
        record = read_record(config.project_dir)
        if lines and record is not None:
            status, _, what = lines[0].partition(": ")
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            reason = f": {what} {status}{more} since the last build, {record.tag}"
        elif record is not None and record.tag == tag:
            reason = ": it was built, then removed from the engine"
    return NotFoundError(f"image {tag} is not built for the current code{reason}",
                         hint="run 'mldock build'; 'mldock build --explain' lists every change")


def require_image(config: ResolvedConfig, exists: Callable[[str], bool]) -> str:
    """The current image tag, or :func:`missing_image_error` when ``exists(tag)`` is false.

    ``exists`` is usually the selected builder's :meth:`~mldock.interfaces.Builder.exists`.
    """
    plan = plan_build(config)
    if not exists(plan.tag):
        raise missing_image_error(plan.tag, config, plan)
    return plan.tag


def _spec_items(spec: DockerfileSpec | None) -> dict[str, str]:
    if spec is None:
        return {}
    items = asdict(spec)
    items["system_packages"] = " ".join(spec.system_packages)
    return {key: "" if value is None else str(value) for key, value in items.items()}


def _read_text(config: ResolvedConfig, relative: str) -> str | None:
    try:
        return (config.project_dir / relative).read_text("utf-8", errors="replace")
    except OSError:
        return None


def _user_dockerfile(config: ResolvedConfig) -> str:
    from mldock.imaging.dockerfile import dockerfile_for

    return dockerfile_for(config)


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
