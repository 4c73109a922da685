"""The repository's top-level pytest set-up, shared by core's, the plugins' and the e2e tests.

The conformance kit (``mldock.testing``) lives in an installed package, so pytest would not rewrite
its asserts: registering it here, before anything imports it, gives contract failures the same
detailed messages as ordinary tests. Then the opt-in test harness (free ports, server processes, a
registry, moto, MLflow, GCS and Azure emulators) is enabled for every suite: ``pytest_plugins`` is
only honoured in the top-level conftest, so this is the one place for it.
"""

import pytest

pytest.register_assert_rewrite("mldock.testing")

pytest_plugins = ["mldock.testing", "mldock.testing.fixtures"]  # the kit's guard hooks, the harness
