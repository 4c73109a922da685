"""mkdocs hook: fills the generated parts of pages from the installed code at build time.

A page holds a marker comment where generated text goes:

- ``<!-- mldock:cli-reference -->``: every command and option (``cli_reference.py``);
- ``<!-- mldock:exit-codes -->``: the exit codes, from ``mldock.errors`` and the CLI;
- ``<!-- mldock:plugin-options -->``: every backend's options (``plugin_options.py``);
- ``<!-- mldock:include PATH -->``: a file of the repository (``CONTRIBUTING.md``), its
  ``docs/`` links made relative to the site.

Generating at build time, from the same objects the program uses, is what keeps these pages from
drifting; ``tests/test_docs_reference.py`` checks the result against the code independently.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

# found through the path set just above (mkdocs loads a hook by path, not as a package member)
import cli_reference  # type: ignore[import-not-found]  # noqa: E402
import plugin_options  # type: ignore[import-not-found]  # noqa: E402

_INCLUDE = re.compile(r"<!-- mldock:include (?P<path>[\w./-]+) -->")


def _include(match: re.Match[str]) -> str:
    text = (REPO / match["path"]).read_text(encoding="utf-8")
    text = re.sub(r"^# .*\n", "", text, count=1)  # the page has its own title
    return text.replace("](docs/", "](")


def render(markdown: str) -> str:
    """``markdown`` with every marker replaced by its generated text."""
    generators = {
        "<!-- mldock:cli-reference -->": cli_reference.cli_reference,
        "<!-- mldock:exit-codes -->": cli_reference.exit_codes_table,
        "<!-- mldock:plugin-options -->": plugin_options.plugin_options,
    }
    for marker, generate in generators.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return _INCLUDE.sub(_include, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs event: runs for each page before it is converted to HTML."""
    return render(markdown)
