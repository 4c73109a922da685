"""``mldock ui``: serve the read-only runs page of the project on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Look at runs, metric curves, lineage and endpoints in a browser.")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.callback(invoke_without_command=True)
def ui(port: int = typer.Option(5050, "--port", "-p", min=0, max=65535,
                                help="Port to listen on (0: any free port)."),
       host: str = typer.Option("127.0.0.1", "--host",
                                help="Interface to listen on. Anything but loopback shows the"
                                     " project's runs to the network: only when you mean it."),
       open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
       verbose: bool = typer.Option(False, "--verbose", help="Log every request on stderr."),
       ) -> None:
    """Serve a read-only page of the project's runs at http://127.0.0.1:PORT until Ctrl-C."""
    from mldock.cli.output import info
    from mldock.errors import MldockError
    from mldock.session import Session
    from mldock.training.runner import LOG_NAME
    from mldock.ui.app import UiApp
    from mldock.ui.endpoints import EndpointsView
    from mldock.ui.server import UiServer

    session = Session.open()

    def open_session(env: str | None) -> Session:
        return session if env == session.config.env else Session.open(env or "")

    def log_path(run_id: str) -> Path | None:
        return session.run_dir(run_id) / LOG_NAME

    envs: list[str | None] = [None, *session.config.environments]
    app_ = UiApp(session.tracker, session.project, title=session.project, log_path=log_path,
                 open_store=session.storage_for, endpoints=EndpointsView(envs, open_session))
    if host not in LOOPBACK:
        info(f"warning: serving on {host}: anyone who can reach this machine can read the"
             " project's runs, params and logs (the page has no login)")
    try:
        server = UiServer((host, port), app_)
    except OSError as exc:
        raise MldockError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          hint="choose another port with --port (0 picks a free one)") from None
    info(f"mldock ui: {server.url}/runs (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(f"{server.url}/runs")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
