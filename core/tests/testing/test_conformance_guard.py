"""The conformance kit is closed: a plugin's test class cannot replace, skip or re-flag its tests.

Each test writes a plugin's test module with ``pytester`` and runs pytest on it with the kit's
plugin enabled (``-p mldock.testing``), the way a plugin's suite runs. The contract is the tracker
contract on a real SQLite tracker built through a record's factory (fast, no server), narrowed with
``-k`` to the one or two contract tests each case needs.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

HEADER = '''
import pytest
from mldock.local.tracking import SqliteTracker
from mldock.records import FactoryContext, TrackerRecord
from mldock.testing import TrackerContract, expected_failure, registered_record


class ListsOldestFirst(SqliteTracker):
    """A tracker with a real bug: list_runs in the wrong order."""

    def list_runs(self, *args, **kwargs):
        return list(reversed(super().list_runs(*args, **kwargs)))


def broken_record(capabilities=("artifacts", "concurrent-writers")):
    return TrackerRecord(name="broken", summary="lists runs oldest first",
                         factory=lambda context: ListsOldestFirst(context.project_dir / "r.db"),
                         capabilities=frozenset(capabilities))


class Base(TrackerContract):
    @pytest.fixture
    def tracker(self, tmp_path):
        tracker = self.record.build(FactoryContext(uri="sqlite:///runs.db", project_dir=tmp_path))
        yield tracker
        tracker.close()
'''

LIST_TEST = "test_list_runs_newest_first"


def run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    """Write HEADER + ``body`` as a plugin's test module and run pytest on it with the kit."""
    pytester.makepyfile(test_plugin=HEADER + textwrap.dedent(body))
    return pytester.runpytest("-p", "mldock.testing", "-p", "no:cacheprovider", "-rsxXf", *args)


def test_an_override_of_a_contract_test_is_refused(pytester: pytest.Pytester) -> None:
    """A subclass that replaces a failing contract test with its own passing one does not pass:
    the module fails to import, naming the test and the allowed way out."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()

            def {LIST_TEST}(self, tracker):
                """Our backend lists oldest first; pretend that is fine."""
    ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*overrides contract test TrackerContract.{LIST_TEST}*expected_failure(reason=...)*"])


def test_the_unoverridden_contract_catches_the_bug(pytester: pytest.Pytester) -> None:
    """The same broken backend, left to the contract, fails (the guard protects a real check)."""
    result = run(pytester, '''
        class TestBroken(Base):
            record = broken_record()
    ''', "-k", LIST_TEST)
    result.assert_outcomes(failed=1)


def test_an_expected_failure_override_passes_as_xfail(pytester: pytest.Pytester) -> None:
    """``@expected_failure(reason=...)`` is the allowed override: the contract test still runs
    (through super()), fails, and is reported as an expected failure with the reason."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()

            @expected_failure(reason="our service sorts by name", raises=AssertionError)
            def {LIST_TEST}(self, tracker):
                super().{LIST_TEST}(tracker)
    ''', "-k", LIST_TEST)
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*our service sorts by name*"])
    assert result.ret == 0


def test_a_plain_strict_xfail_with_reason_is_allowed(pytester: pytest.Pytester) -> None:
    """pytest's own ``xfail(reason=..., strict=True)`` is accepted like expected_failure."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()

            @pytest.mark.xfail(reason="known ordering bug", strict=True)
            def {LIST_TEST}(self, tracker):
                super().{LIST_TEST}(tracker)
    ''', "-k", LIST_TEST)
    result.assert_outcomes(xfailed=1)


def test_an_expected_failure_that_passes_fails(pytester: pytest.Pytester) -> None:
    """Strict: once the backend is fixed, the leftover override turns red (XPASS strict)."""
    result = run(pytester, f'''
        class TestFixed(Base):
            record = registered_record("tracker", "sqlite")

            @expected_failure(reason="was broken once")
            def {LIST_TEST}(self, tracker):
                super().{LIST_TEST}(tracker)
    ''', "-k", LIST_TEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*was broken once*"])


@pytest.mark.parametrize("decorator", [
    "@pytest.mark.xfail(strict=True)",
    "@pytest.mark.xfail(reason='no strict')",
    "@pytest.mark.xfail(reason='   ', strict=True)",
    "@pytest.mark.xfail(True, reason='conditional', strict=True)",
    "@pytest.mark.xfail(reason='never runs', strict=True, run=False)",
    "@pytest.mark.skip(reason='not for us')",
    "@pytest.mark.skipif(True, reason='not for us')",
])
def test_other_overrides_are_refused(pytester: pytest.Pytester, decorator: str) -> None:
    """An xfail without a reason, not strict, conditional or not run, and any skip, are refused."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()

            {decorator}
            def {LIST_TEST}(self, tracker):
                super().{LIST_TEST}(tracker)
    ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*overrides contract test TrackerContract.{LIST_TEST}*"])


def test_deleting_a_contract_test_is_refused(pytester: pytest.Pytester) -> None:
    """``test_x = None`` (hiding a contract test) is an override like any other."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()
            {LIST_TEST} = None
    ''')
    result.assert_outcomes(errors=1)


def test_expected_failure_needs_a_reason(pytester: pytest.Pytester) -> None:
    """An empty reason is refused where the decorator is written."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()

            @expected_failure(reason="")
            def {LIST_TEST}(self, tracker):
                super().{LIST_TEST}(tracker)
    ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*expected_failure needs a reason*"])


@pytest.mark.parametrize("where", ["class", "module"])
def test_skip_marks_on_the_class_or_module_are_refused(pytester: pytest.Pytester,
                                                      where: str) -> None:
    """A skip mark on the test class, or on its module before it, would skip every contract test."""
    mark = "pytestmark = pytest.mark.skip(reason='later')"
    body = f'''
        {mark if where == "module" else ""}
        class TestBroken(Base):
            record = broken_record()
            {mark if where == "class" else ""}
    '''
    result = run(pytester, body)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*a skip mark on its {where} would skip contract tests*"])


def test_skip_marks_added_from_outside_fail_the_test(pytester: pytest.Pytester) -> None:
    """A skip mark the class cannot see (added by a conftest hook) makes the contract test an error
    through the kit's pytest plugin, while the plugin's own tests may still be skipped."""
    pytester.makeconftest('''
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.skip(reason="too slow today"))
    ''')
    result = run(pytester, '''
        class TestBroken(Base):
            record = broken_record()

        def test_plugin_own():
            pass
    ''', "-k", f"{LIST_TEST} or plugin_own")
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines([f"*contract test {LIST_TEST} of TestBroken carries a skip mark*"])
    assert result.ret != 0


def test_a_skip_inside_an_override_fails(pytester: pytest.Pytester) -> None:
    """An allowed override whose body skips (instead of running the contract) fails: only the kit
    skips a contract test."""
    result = run(pytester, f'''
        class TestBroken(Base):
            record = broken_record()

            @expected_failure(reason="cannot sort")
            def {LIST_TEST}(self, tracker):
                pytest.skip("not today")
    ''', "-k", LIST_TEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*contract test {LIST_TEST} was skipped by test_plugin*"])


def test_an_override_of_a_parametrized_test_keeps_its_parameters(pytester: pytest.Pytester
                                                                 ) -> None:
    """An allowed override of a parametrized contract test runs once per contract parameter."""
    result = run(pytester, '''
        class TestFixed(Base):
            record = registered_record("tracker", "sqlite")

            @expected_failure(reason="pretend", raises=ZeroDivisionError)
            def test_finish_sets_terminal_status(self, tracker, status):
                1 / 0
    ''', "-k", "test_finish_sets_terminal_status")
    result.assert_outcomes(xfailed=3)


def test_flags_come_from_the_record(pytester: pytest.Pytester) -> None:
    """A capability the record does not declare skips its test, saying so; a declared one runs."""
    result = run(pytester, '''
        class TestNoArtifacts(Base):
            record = broken_record(capabilities=("concurrent-writers",))
    ''', "-k", "test_artifacts_roundtrip or test_threads_logging_at_once")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*broken does not declare capability 'artifacts' in its record*"])


def test_hand_set_flags_are_refused(pytester: pytest.Pytester) -> None:
    """``supports_artifacts = True`` on the class is refused: the record says what is supported."""
    result = run(pytester, '''
        class TestBroken(Base):
            record = broken_record(capabilities=())
            supports_artifacts = True
    ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*sets supports_artifacts by hand*'artifacts'*record*"])


def test_narrowing_with_a_reason_skips_with_it(pytester: pytest.Pytester) -> None:
    """``narrowed = {capability: reason}`` turns a test off, and the skip says why."""
    result = run(pytester, '''
        class TestNarrow(Base):
            record = registered_record("tracker", "sqlite")
            narrowed = {"nan-metrics": "the service drops NaN values"}
    ''', "-k", "test_nan_metric_kept")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*narrows capability 'nan-metrics': the service drops NaN values*"])


@pytest.mark.parametrize(("narrowed", "problem"), [
    ('{"nan-metrics": ""}', "narrows capability 'nan-metrics' without a reason"),
    ('{"teleport": "x"}', "narrows unknown capability 'teleport'"),
])
def test_bad_narrowings_are_refused(pytester: pytest.Pytester, narrowed: str, problem: str
                                    ) -> None:
    result = run(pytester, f'''
        class TestNarrow(Base):
            record = registered_record("tracker", "sqlite")
            narrowed = {narrowed}
    ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{problem}*"])


def test_a_record_is_required(pytester: pytest.Pytester) -> None:
    """Without a record the flags have no source: every test fails, saying what to set."""
    result = run(pytester, '''
        from mldock.local.tracking import SqliteTracker

        class TestNoRecord(TrackerContract):
            @pytest.fixture
            def tracker(self, tmp_path):
                return SqliteTracker(tmp_path / "r.db")
    ''', "-k", "test_created_run_is_running")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestNoRecord sets no record*registered_record('tracker'*"])


def test_a_record_of_another_concern_is_refused(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
        class TestWrong(Base):
            record = registered_record("storage", "local")
    ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*is not a tracker record*"])
