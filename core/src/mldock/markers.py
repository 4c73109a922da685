"""The pluggy markers of mldock: ``hookspec`` for core, ``hookimpl`` for plugins."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "mldock"
"""The pluggy project name and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
