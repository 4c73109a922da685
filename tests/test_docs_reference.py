"""The generated references match the code, and the getting-started page shows commands that work.

The site's CLI reference and plugin options are written at build time by ``docs/_gen`` from the
installed program. These tests check the result from the other side: they walk the command tree,
the error classes, the ``exit_code=`` literals in the sources and the backend records themselves,
and fail when the built pages miss something.
"""

from __future__ import annotations

import html
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "core" / "src" / "mldock", *sorted((REPO / "plugins").glob("*/src/*"))]


@pytest.fixture(scope="module", name="site")
def site_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is in the dev dependency group"
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([mkdocs, "build", "--strict", "-q", "-d", str(out)], cwd=REPO,
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page, tags removed and whitespace folded."""
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    raw = raw[raw.index('role="main"'):]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def command_tree() -> list[tuple[str, Any]]:
    """``("mldock runs list", command)`` for every visible command, groups loaded."""
    import typer
    from mldock.cli.main import build_command

    found = []

    def visit(command: Any, path: str) -> None:
        found.append((path, command))
        ctx = typer.Context(command, info_name=path)
        for name in getattr(command, "list_commands", lambda _ctx: [])(ctx):
            sub = command.get_command(ctx, name)
            if getattr(sub, "hidden", False):
                continue
            visit(sub.load() if hasattr(sub, "load") else sub, f"{path} {name}")

    visit(build_command(), "mldock")
    return found


def sections(text: str, paths: list[str]) -> dict[str, str]:
    """Split the reference's text at each command's ``Usage:`` line."""
    marks = sorted((text.index(f"Usage: {p} ["), p) for p in paths)
    return {p: text[start:(marks[i + 1][0] if i + 1 < len(marks) else len(text))]
            for i, (start, p) in enumerate(marks)}


def test_cli_reference_lists_every_command_and_option(site: Path) -> None:
    text = page_text(site, "cli-reference")
    tree = command_tree()
    assert len(tree) > 15  # the walk itself works: groups and their subcommands are there
    by_path = sections(text, [path for path, _ in tree])
    missing = []
    for path, command in tree:
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            names = [*param.opts, *param.secondary_opts] if param.param_type_name == "option" \
                else [param.metavar or param.name]
            for name in names:
                if name not in by_path[path]:
                    missing.append(f"{path} {name}")
            if param.param_type_name == "option" and param.help:
                first_words = " ".join(param.help.replace("\\[", "[").split()[:4])
                if first_words not in by_path[path]:
                    missing.append(f"{path} {names[0]} help")
    assert missing == []


def _literal_exit_codes() -> set[int]:
    """Exit codes the sources set: ``exit_code=N`` (or ``= N``), ``Exit(N)``, ``sys.exit(N)``."""
    codes: set[int] = set()
    pattern = re.compile(r"(?:exit_code\s*=\s*|Exit\(|sys\.exit\()(\d+)\b")
    for root in SOURCES:
        for path in root.rglob("*.py"):
            if "runtime" in path.parts:  # the in-container runtime's codes are the platforms'
                continue
            codes.update(int(m) for m in pattern.findall(path.read_text(encoding="utf-8")))
    return codes


def test_cli_reference_lists_every_exit_code(site: Path) -> None:
    from mldock import errors

    text = page_text(site, "cli-reference")
    table = text[text.index("Exit codes"):text.index("Commands")]
    documented = {int(code) for code in re.findall(r"(?:^|\s)(\d{1,3}) (?=\S)", table)}
    classes = {cls.exit_code for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.MldockError)}
    used = classes | _literal_exit_codes() | {0, 130}
    assert {1, 2, 3, 4, 130} <= used  # the scan itself works
    assert used - documented == set(), f"exit codes missing from the reference: {used - documented}"
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, errors.MldockError):
            assert name in table


def test_plugin_options_list_every_field_of_every_backend(site: Path) -> None:
    from mldock.host import get_host

    text = page_text(site, "plugins")
    registry = get_host().registry
    models = 0
    for concern, section in (("builder", "build"), ("storage", "storage"),
                             ("tracker", "tracking"), ("deployer", "deploy")):
        for name, registered in registry.records(concern).items():
            assert f"[{section}.{name}]" in text
            model = registered.record.load_config_model()
            if model is None:
                continue
            models += 1
            part = text[text.index(f"[{section}.{name}] in mldock.toml"):]
            for field_name, field in model.model_fields.items():
                assert field_name in part, f"{name}: {field_name}"
                if not field.is_required() and isinstance(field.default, int | str) \
                        and not isinstance(field.default, bool) and field.default != "":
                    row = part[part.index(f" {field_name} "):][:300]
                    assert str(field.default) in row, f"{name}.{field_name} default"
    assert models >= 3  # s3, sagemaker and mlflow at least


def _shell_blocks(page: str) -> list[tuple[str, str]]:
    """``(marker before the block, body)`` for each ```sh block of a markdown page."""
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    return [(m["marker"] or "", m["body"]) for m in re.finditer(
        r"(?:<!-- (?P<marker>[\w:-]+) -->\n)?```sh\n(?P<body>.*?)```", text, re.S)]


def _mldock_lines(script: str) -> list[list[str]]:
    """The ``mldock`` command lines of a shell script, each as its words (``$(…)`` unfolded)."""
    found = []
    for raw in script.splitlines():
        code = raw.split(" #")[0].strip()
        inner = re.findall(r"\$\((mldock [^)]*)\)", code)
        outer = re.sub(r"\$\((mldock [^)]*)\)", "RUN", code)
        for command in [*inner, outer]:
            words = shlex.split(command)
            if words and words[0] == "mldock":
                found.append(words)
    return found


def test_getting_started_local_block_is_the_main_job() -> None:
    blocks = dict(_shell_blocks("getting-started.md"))
    assert "getting-started:local" in blocks
    page = _mldock_lines(blocks["getting-started:local"])
    script = [w for w in _mldock_lines((REPO / "scripts" / "main-job.sh").read_text())
              if "undeploy" not in w or w == ["mldock", "undeploy"]]
    # main-job.sh also undeploys in a trap; the page and the script otherwise run the same lines
    assert [w for w in page if w] == [w for w in script if w != ["mldock", "undeploy"]] + \
        [["mldock", "undeploy"]]


def _check_words(tree: dict[str, Any], words: list[str]) -> str | None:
    """Why the CLI would refuse ``words`` (an unknown option), or ``None``."""
    path, command, rest = "mldock", tree["mldock"], words[1:]
    while rest:
        word = rest.pop(0)
        if word.startswith("-"):
            name = word.split("=")[0]
            param = next((p for p in command.params if name in (*p.opts, *p.secondary_opts)), None)
            if param is None:
                return f"{path}: no option {name}"
            if not param.is_flag and "=" not in word:
                rest.pop(0)
        elif f"{path} {word}" in tree:
            path, command = f"{path} {word}", tree[f"{path} {word}"]
    return None


@pytest.mark.parametrize("page", ["getting-started.md", "index.md", "writing-a-plugin.md"])
def test_commands_shown_in_the_docs_exist(page: str) -> None:
    tree = dict(command_tree())
    lines = [words for _, body in _shell_blocks(page) for words in _mldock_lines(body)]
    problems = [f"{' '.join(w)}: {why}" for w in lines if (why := _check_words(tree, w))]
    assert problems == []
    if page == "getting-started.md":
        assert len(lines) > 20  # the extraction itself works


def test_check_words_refuses_an_unknown_option() -> None:
    tree = dict(command_tree())
    assert _check_words(tree, ["mldock", "train", "--no-such-option"])
    assert _check_words(tree, ["mldock", "--env", "aws", "train", "-p", "a=1"]) is None
