"""Google's exceptions turned into mldock's one-line errors: what failed, and what to do.

Every Google request the package makes runs inside :func:`translated`, so a user never sees a
google-auth or google-api-core traceback. The Google libraries are imported only when an error has
to be described.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mldock.errors import BackendUnavailableError, MldockError, NotFoundError

CREDENTIALS_HINT = ("run 'gcloud auth application-default login', set"
                    " GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or name one"
                    " with credentials_file ="
                    ' "env:VARIABLE" in mldock.toml')


def describe(exc: BaseException, *, action: str, resource: str | None = None) -> MldockError:
    """The MldockError for ``exc``, raised while trying to ``action`` (reads after "cannot")."""
    if isinstance(exc, MldockError):
        return exc
    from google.api_core import exceptions as gax
    from google.auth import exceptions as gauth

    if isinstance(exc, gauth.DefaultCredentialsError):
        return MldockError(f"cannot {action}: no Google Cloud credentials found",
                           hint=CREDENTIALS_HINT)
    if isinstance(exc, gauth.RefreshError):
        return MldockError(f"cannot {action}: the Google Cloud credentials were refused"
                           f" ({_first_line(exc)})", hint=CREDENTIALS_HINT)
    if isinstance(exc, (gauth.TransportError, gax.ServiceUnavailable, ConnectionError)):
        return BackendUnavailableError(f"cannot {action}: Google Cloud is not reachable"
                                       f" ({_first_line(exc)})",
                                       hint="check the network, the proxy settings and the"
                                            " endpoint in mldock.toml")
    if isinstance(exc, gax.NotFound):
        what = resource or "the resource"
        return NotFoundError(f"cannot {action}: {what} does not exist", hint="check the name"
                             " and the project in mldock.toml")
    if isinstance(exc, gax.GoogleAPICallError):
        return MldockError(f"cannot {action}: {_first_line(exc)}")
    if isinstance(exc, FileNotFoundError | IsADirectoryError | ValueError):
        return MldockError(f"cannot {action}: {_first_line(exc)}", hint=CREDENTIALS_HINT)
    return MldockError(f"cannot {action}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextlib.contextmanager
def translated(action: str, *, resource: str | None = None) -> Iterator[None]:
    """Run a block of Google calls; any failure leaves it as one :class:`MldockError`."""
    try:
        yield
    except MldockError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise describe(exc, action=action, resource=resource) from exc
