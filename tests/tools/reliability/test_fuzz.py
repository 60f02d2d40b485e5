"""Property tests of every input b25 reads from outside (issue 16): each ``b25 fuzz`` target run
for a few hundred generated inputs (``b25 fuzz --inputs N`` runs them for as many as asked), and
proof that the properties are not vacuous: with a defect put back, the fuzzer finds it."""

from __future__ import annotations

import re

import msgspec
import pytest

from procs.execution import journal as J
from procs.tools.reliability import fuzz_targets as F
from procs.tools.reliability.fuzz import run_target
from procs.tools.reliability.fuzz_targets import TARGETS
from procs.venue.binance import orders

INPUTS = {"ring": 300, "sim_rest": 400, "config_text": 200, "market_data": 200}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_when_fed_generated_inputs_then_no_crash_and_every_property_holds(name: str) -> None:
    r = run_target(TARGETS[name], INPUTS.get(name, 300), start_seed=16)
    assert r.crashes == 0, r.failure
    assert r.inputs == INPUTS.get(name, 300)


def test_journal_target_when_the_checksum_is_left_out_then_it_finds_the_misread(monkeypatch) -> None:
    """The journal property is not vacuous: frames without their crc32 misread a damaged tail."""

    def unchecked(_journal_type: type, rec: J.JournalRecord) -> bytearray:  # the frame format before the checksum
        payload = msgspec.msgpack.encode(rec)
        return bytearray(len(payload).to_bytes(4, "little") + payload)

    monkeypatch.setattr(F, "_frame", unchecked)
    r = run_target(F.TARGETS["journal"], 3000, start_seed=16)
    assert r.crashes == 1 and "never written" in r.failure, r.failure
    assert J.CHECKED  # the writer's frames carry it


def test_user_stream_target_when_numbers_are_not_checked_then_it_finds_the_bad_report(monkeypatch) -> None:
    """The venue properties are not vacuous: an adapter that passes any text on as a number (as
    it did before) hands the engine a price it cannot read."""
    monkeypatch.setattr(orders, "_DECIMAL", re.compile(r".*", re.S))
    r = run_target(F.TARGETS["venue_user_stream"], 1000, start_seed=16)
    assert r.crashes == 1 and "passed as a number" in r.failure, r.failure


def test_open_algo_orders_target_when_numbers_are_not_checked_then_it_finds_the_bad_report(monkeypatch) -> None:
    """The algo decoders are held to the same contract: a trigger price that is not a number (as
    algo_report passed one on before) is found."""
    monkeypatch.setattr(orders, "_DECIMAL", re.compile(r".*", re.S))
    r = run_target(F.TARGETS["venue_open_algo_orders"], 5000, start_seed=16)
    assert r.crashes == 1 and "passed as a number" in r.failure, r.failure
