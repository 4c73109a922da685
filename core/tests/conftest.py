"""Shared set-up for core's tests.

The conformance kit's contract classes live in an installed package, not in test files, so pytest
would not rewrite their asserts; registering it here (before any test module imports it) gives their
failures the same detailed messages as ordinary tests.
"""

import pytest

pytest.register_assert_rewrite("mldock.testing")
