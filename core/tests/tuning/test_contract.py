"""The tuning contract on a deployer that passes it, and on one it must catch."""

from __future__ import annotations

import pytest
from mldock.records import DeployerRecord
from mldock.testing import TuningContract, TuningReadback

from .fake_tuner import SUPPORT, FakeTuner, read_back

RECORD = DeployerRecord(name="faketune", summary="a fake tuner",
                        factory=lambda context: FakeTuner(),
                        capabilities=frozenset({"training", "tuning"}), tuning=SUPPORT)


class TestFakeTuner(TuningContract):
    record = RECORD

    @pytest.fixture
    def deployer(self):
        return self.record.build(None)

    @pytest.fixture
    def trial_image(self):
        return "registry.test/tuned@sha256:" + "0" * 64

    def read_back(self, deployer, result) -> TuningReadback:
        return read_back(result.job_id)


class FlippedTuner(FakeTuner):
    flip_direction = True


def test_the_contract_catches_an_inverted_direction():
    """A contract test that cannot fail is worth nothing: the inverted direction is caught."""
    contract = TestFakeTuner()
    with pytest.raises(AssertionError):
        contract.test_created_job_holds_the_request(FlippedTuner(), "img@sha256:" + "1" * 64)


def test_the_contract_catches_a_strategy_table_that_lies():
    """A record that declares hyperband while its deployer refuses it fails the contract."""
    lying = DeployerRecord(name="liar", summary="x", factory=lambda c: FakeTuner(),
                           capabilities=frozenset({"tuning"}),
                           tuning=type(SUPPORT)(strategies=frozenset({"hyperband", "random"})))

    class Liar(TestFakeTuner):
        record = lying

    from mldock.errors import MldockError

    with pytest.raises(MldockError):
        Liar().test_declared_strategies_are_taken(FakeTuner(), "img", "hyperband")
