"""What a Dockerfile reads from its context: the COPY/ADD sources, parsed as docker reads them."""

from __future__ import annotations

from mldock.imaging.copies import WHOLE_CONTEXT, copy_sources, is_read
from mldock.imaging.dockerfile import CA_BUNDLE_PATH, DockerfileSpec, render_dockerfile


def test_rendered_dockerfile_reads_requirements_source_runtime_and_ca_bundle():
    spec = DockerfileSpec(base_image="python:3.11-slim", project="p", train="p.t:train",
                          predictor="p.p:P", source="code/src", requirements="reqs/base.txt",
                          extra_ca_bundle=True)
    assert copy_sources(render_dockerfile(spec)) == (
        ".mldock-build/extra-ca.crt", ".mldock-runtime/bin", ".mldock-runtime/mldock",
        "code/src", "reqs/base.txt")
    assert CA_BUNDLE_PATH in copy_sources(render_dockerfile(spec))


def test_source_folder_dot_is_the_whole_context():
    spec = DockerfileSpec(base_image="b", project="p", train="p.t:train", predictor="p.p:P",
                          source=".")
    assert WHOLE_CONTEXT in copy_sources(render_dockerfile(spec))


def test_flags_json_form_continuations_and_comments():
    dockerfile = (
        "FROM x AS build\n"
        "# COPY commented/ /nope/\n"
        "COPY --chown=1000:1000 --chmod=644 a.txt \\\n"
        "  # a comment inside a continuation\n"
        "  ./b/ /dest/\n"
        'copy ["with space.txt", "c.txt", "/dest/"]\n'
        "COPY --from=build /built /built\n"
        "ADD https://example.com/x.tgz /x.tgz\n"
        "ADD local.tgz /y/\n"
        "RUN cp a.txt /not-a-source\n"
    )
    assert copy_sources(dockerfile) == ("a.txt", "b", "c.txt", "local.tgz", "with space.txt")


def test_is_read_matches_paths_under_sources_and_globs():
    sources = ("src", "requirements.txt", "conf/*.yaml")
    assert is_read("src", sources) and is_read("src/pkg/train.py", sources)
    assert is_read("requirements.txt", sources)
    assert is_read("conf/a.yaml", sources) and is_read("conf/a.yaml/inner", sources)
    assert not is_read("srcs/x.py", sources)  # a sibling with the same prefix is not under src
    assert not is_read("requirements.txt.bak", sources)
    assert not is_read("conf", sources) and not is_read("conf/a.json", sources)
    assert not is_read("README.md", sources)
    assert is_read("anything/at/all", (WHOLE_CONTEXT,))
