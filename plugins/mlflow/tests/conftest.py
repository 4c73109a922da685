"""Real MLflow tracking servers on 127.0.0.1 for the plugin's tests, from mldock's test harness.

The harness (``mldock.testing.fixtures``, enabled in the repository's root conftest) provides, once
per session:

* ``mlflow_server``: ``mlflow server`` with a SQLite backend store and served artifacts in a
  temporary directory, one worker, job execution off (ready in seconds instead of ~17 s);
* ``mlflow_auth_server``: the same with ``--app-name basic-auth`` (needs ``mlflow[auth]``), started
  only by the tests that use it; its admin is ``.admin_user`` / ``.admin_password``;
* ``unused_port``: a loopback port nothing listens on.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_client_environment(mlflow_client_environment):
    """The tracker hands settings and credentials to MLflow's client through os.environ: every
    test starts without them, and what it set is undone, so no test sees another's credentials."""
    return mlflow_client_environment
