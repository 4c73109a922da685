"""Errors that reach the user as one clear line and a non-zero exit code.

Every error a user can cause (bad config, unknown backend, stopped engine, missing credentials)
is an :class:`MldockError`. The CLI prints ``error: <message>`` (plus ``hint`` when set) and exits
with ``exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class MldockError(Exception):
    """An error meant for the user: a message saying what is wrong and what to do."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(MldockError):
    """Bad command-line arguments or input data."""

    exit_code = 2


class ConfigError(MldockError):
    """The project configuration is invalid: names the file, the key path and the problem."""

    exit_code = 2

    def __init__(self, file: str, key: str | None, problem: str, *, hint: str | None = None):
        from mldock.config.secrets import printable

        # a key from the file may hold newlines or terminal escapes: never print them raw
        key = printable(key) if key else key
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}", hint=hint)
        self.file = file
        self.key = key
        self.problem = problem


class PluginError(MldockError):
    """A plugin misbehaved: failed to load, registered a bad record, or clashed with another."""


class BackendConflictError(PluginError):
    """Two plugins registered the same backend name or URI scheme; raised only where it is used."""


class UnknownBackendError(MldockError):
    """A backend name or URI scheme that no installed plugin provides."""

    exit_code = 2


class BackendUnavailableError(MldockError):
    """A service a backend needs is not reachable (Docker engine stopped, server down)."""

    exit_code = 3


class NotFoundError(MldockError):
    """A run, image, deployment or artifact that does not exist."""

    exit_code = 4
