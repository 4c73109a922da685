"""``mldock ui``: a read-only page to look at runs, metric curves, lineage and endpoints.

Everything here runs only for ``mldock ui``: the CLI imports it lazily, so ``mldock --help`` pays
nothing for it. The server is the standard library's threaded HTTP server (no dependency to install
or keep in step, and the page is a handful of JSON routes and static files); the charts are drawn by
uPlot, vendored under ``static/vendor/uplot`` (50 kB, MIT, draws 100,000 points in milliseconds), so
the page works offline and from the wheel alone. The data come through the
:class:`~mldock.interfaces.Tracker` interface only, so any tracker plugin is shown the same way.
"""

from __future__ import annotations

__all__: list[str] = []
