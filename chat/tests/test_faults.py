"""Faults under steady traffic, in short: bench/faults.py's scenarios with a small crowd.

Two uvicorn processes on one test-started Redis, members split over both,
each talking every second and reconnecting as the page does. Whatever the
fault, a member that stayed connected loses nothing, one that resumed
within the window loses nothing either (the replay fills the gap), nothing
comes twice, and everyone is back and talking within the deadline.
`make faults` runs the same with more members and prints the figures.
"""

from __future__ import annotations

import argparse

import pytest

from bench import faults

pytestmark = [pytest.mark.server, pytest.mark.redis]


def short(**changes) -> argparse.Namespace:
    args = faults.parse_args(
        ["--members", "30", "--rooms", "2", "--interval", "1", "--before", "2", "--after", "2"]
    )
    return argparse.Namespace(**{**vars(args), **changes})


def assert_nothing_lost(row: dict) -> None:
    assert row["back_within_deadline"] and row["drained"], row
    assert (row["stayed_lost"], row["recovered_lost"], row["not_recovered_lost_untold"]) == (
        0,
        0,
        0,
    ), row
    assert (row["doubled"], row["content_mismatched"]) == (0, 0), row
    assert (row["ghosts"], row["missing"]) == (0, 0), row
    assert row["errors"] == {}, row


async def test_kill_9_of_one_process_loses_nothing_for_anyone(tmp_path):
    row = await faults.run_fault("kill", short(), tmp_path)
    assert_nothing_lost(row)
    # Half the members were on the killed process: all came back, recovered.
    assert row["stayed"] == row["rejoined"] == row["recovered"] == 15, row
    assert row["closes"] == {"1006": 15}, row


async def test_sigterm_of_one_process_loses_nothing_for_anyone(tmp_path):
    row = await faults.run_fault("term", short(), tmp_path)
    assert_nothing_lost(row)
    assert row["stayed"] == row["rejoined"] == row["recovered"] == 15, row
    # The drain closes its members with 1012: the page comes back within a second.
    assert row["closes"] == {"1012": 15}, row


async def test_redis_restart_owns_up_to_what_it_lost_and_loses_nothing_after(tmp_path):
    row = await faults.run_fault("redis", short(redis_down=3.0), tmp_path)
    assert_nothing_lost(row)
    # Redis came back empty: nobody could recover (a new epoch), and each
    # member was told so; from its rejoin on it missed nothing.
    assert row["stayed"] == 0 and row["rejoined"] == row["not_recovered"] == 30, row
    assert set(row["closes"]) == {"4503"} and row["closes"]["4503"] >= 30, row
