"""b25 chaos (issue 16): a short campaign in CI, 20 SIGKILLs and SIGSTOPs on a supervised stack;
the long one (``b25 chaos --kills 100``) is documented in the README."""

from __future__ import annotations

import argparse
import json

import pytest

from procs.tools.reliability.chaos import TARGETS, Campaign, add_arguments, parse

CLEAN = ("lost", "doubled", "orphaned", "state_mismatches", "position_mismatches", "book_mismatches",
         "tracebacks", "shm_left")


def args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("argv, field", [
    (["--targets", "market_data,teller"], "--targets"), (["--signals", "KILL,HUP"], "--signals"),
    (["--interval", "3,1"], "--interval"), (["--interval", "fast"], "--interval"), (["--kills", "-1"], "--kills"),
])
def test_arguments_when_bad_then_refused_naming_the_option(argv, field):
    with pytest.raises(ValueError, match=field):
        parse(args(*argv))


@pytest.mark.proc
def test_campaign_when_20_faults_then_nothing_lost_doubled_orphaned_or_mismatched(tmp_path, instance):
    report = Campaign(tmp_path, 20, list(TARGETS), ["KILL", "STOP"], (0.5, 2.0), seed=16, instance=instance).run()
    summary = json.dumps({k: report[k] for k in (*CLEAN, "frozen_risk", "details", "exit_codes")})[:3000]
    assert report["faults"] == 20, summary
    assert {k: report[k] for k in CLEAN} == dict.fromkeys(CLEAN, 0), summary
    assert report["frozen_risk"]["not_denied"] == 0, summary
    assert report["orders"] > 0 and report["fills"] > 0, summary  # it traded through the faults
    assert report["ok"], summary
