"""The name registry's contract, in-process and on a real redis-server alike.

How a registry's `feed` coalesces its rooms is the feed's contract
(test_presence_feed_contract.py); what only Redis does (races between
processes, expiry, outages) is in test_presence_redis.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from chat.presence.base import Presence


@pytest.fixture
def presence(make_registry) -> Presence:
    """A fresh registry of each kind; the Redis one without its upkeep loop."""
    return make_registry()


async def test_claim_release_members_counts(presence):
    assert (await presence.claim(room="lobby", name="Seiya", member="m1")).members == ["Seiya"]
    assert not (await presence.claim(room="lobby", name="SEIYA", member="m2")).won
    claim = await presence.claim(room="lobby", name="Shiryu", member="m2")
    assert claim.members == ["Seiya", "Shiryu"]
    await presence.claim(room="other", name="Seiya", member="m3")
    assert await presence.counts() == {"lobby": 2, "other": 1}
    # Only the holder frees a name.
    assert await presence.release(room="lobby", name="Seiya", member="m2") is None
    assert (await presence.release(room="lobby", name="seiya", member="m1")).count == 1
    assert await presence.members(room="lobby") == ["Shiryu"]
    assert (await presence.release(room="lobby", name="Shiryu", member="m2")).count == 0
    assert (await presence.release(room="other", name="Seiya", member="m3")).count == 0
    assert await presence.counts() == {}
    assert await presence.members(room="lobby") == []


async def test_members_keep_join_order_across_releases(presence):
    for index, name in enumerate(["a", "b", "c"]):
        await presence.claim(room="r", name=name, member=f"m{index}")
    await presence.release(room="r", name="a", member="m0")
    assert (await presence.claim(room="r", name="A", member="m3")).members == ["b", "c", "A"]


async def test_release_removes_exactly_that_name(presence):
    """The member list is one string (in Redis, or JSON in-process): a name inside another stays."""
    names = ["Anna", "Ann", "nn", "Ann Lee", "Olá 👋"]
    for index, name in enumerate(names):
        await presence.claim(room="r", name=name, member=f"m{index}")
    await presence.release(room="r", name="ANN", member="m1")
    assert await presence.members(room="r") == ["Anna", "nn", "Ann Lee", "Olá 👋"]
    await presence.release(room="r", name="Anna", member="m0")
    await presence.release(room="r", name="olá 👋", member="m4")
    assert await presence.members(room="r") == ["nn", "Ann Lee"]


async def test_names_that_json_escapes_keep_their_place(presence):
    """The names are kept JSON-encoded: quotes, backslashes and commas stay names."""
    names = ["nn", '"nn"', 'say "hi", \\o/', "a,b", "\\", "Olá 👋"]
    for index, name in enumerate(names):
        claim = await presence.claim(room="r", name=name, member=f"m{index}")
        assert claim.count == index + 1
        assert claim.members == names[: index + 1]
    await presence.release(room="r", name="nn", member="m0")
    await presence.release(room="r", name="\\", member="m4")
    assert await presence.members(room="r") == ['"nn"', 'say "hi", \\o/', "a,b", "Olá 👋"]


async def test_a_claim_keeps_the_list_it_was_given(presence):
    """Each joiner's list is a snapshot: later joins and leaves do not change it."""
    first = await presence.claim(room="r", name="a", member="m0")
    second = await presence.claim(room="r", name="b", member="m1")
    await presence.release(room="r", name="a", member="m0")
    third = await presence.claim(room="r", name="c", member="m2")
    assert (first.members, second.members, third.members) == (["a"], ["a", "b"], ["b", "c"])
    assert (first.count, second.count, third.count) == (1, 2, 2)


async def test_ping_answers_while_the_store_is_up(presence):
    """The health probe (chat.health) pings a registry that declares "ping"; every one answers."""
    await presence.ping()
    await presence.claim(room="r", name="a", member="m0")
    await presence.ping()


async def test_shared_is_declared_by_the_registries_that_share_their_names(make_registry):
    """ "shared": a registry elsewhere (another process) sees the same names."""
    here, there = make_registry(), make_registry()
    assert set(here.extensions) <= {"ping", "shared"}, "only extensions the chat knows"
    await here.claim(room="r", name="a", member="m0")
    shared = "shared" in here.extensions
    assert await there.members(room="r") == (["a"] if shared else [])
    assert (await there.claim(room="r", name="A", member="m1")).won is not shared


async def test_aclose_stops_what_the_registry_started(make_registry):
    before = asyncio.all_tasks()
    presence = make_registry()
    await presence.claim(room="r", name="a", member="m0")
    await presence.release(room="r", name="a", member="m0")
    await presence.aclose()
    assert asyncio.all_tasks() - before == set()
    # Closed twice (shutdown after a test's own aclose): no error.
    await presence.aclose()


# Written as escapes: the point of each is that it looks like the Latin letter.
CYRILLIC_I = "\u0456"
GREEK_ETA = "\u0397"


async def test_a_look_alike_of_a_present_name_is_taken(presence):
    await presence.claim(room="lobby", name="Seiya", member="m1")
    await presence.claim(room="lobby", name="Hyoga", member="m2")
    for look_alike in ["Se" + CYRILLIC_I + "ya", GREEK_ETA + "yoga", "HYOGA", "Sei\u200bya"]:
        assert not (await presence.claim(room="lobby", name=look_alike, member="m3")).won
    # Look-alikes in another room do not clash, nor do names that only seem close.
    assert (await presence.claim(room="other", name="Se" + CYRILLIC_I + "ya", member="m4")).won
    assert (await presence.claim(room="lobby", name="Seiya2", member="m5")).won
    assert await presence.members(room="lobby") == ["Seiya", "Hyoga", "Seiya2"]
    assert await presence.counts() == {"lobby": 3, "other": 1}


async def test_the_relayed_name_is_the_one_typed(presence):
    typed = "Se" + CYRILLIC_I + "ya"
    assert (await presence.claim(room="lobby", name=typed, member="m1")).members == [typed]
    assert not (await presence.claim(room="lobby", name="Seiya", member="m2")).won
    assert await presence.members(room="lobby") == [typed]


async def test_releasing_a_name_frees_its_look_alikes(presence):
    await presence.claim(room="lobby", name="Shun0", member="m1")
    assert not (await presence.claim(room="lobby", name="ShunO", member="m2")).won
    assert (await presence.release(room="lobby", name="Shun0", member="m1")).count == 0
    assert (await presence.claim(room="lobby", name="ShunO", member="m2")).won
    assert not (await presence.claim(room="lobby", name="Shun0", member="m3")).won


async def test_a_release_spelt_in_another_case_frees_the_look_of_the_name_claimed(presence):
    """A release may spell the name in a case with another skeleton ("SEIYA")."""
    await presence.claim(room="lobby", name="Seiya", member="m1")
    assert (await presence.release(room="lobby", name="SEIYA", member="m1")).count == 0
    assert (await presence.claim(room="lobby", name="Se" + CYRILLIC_I + "ya", member="m2")).won
    assert await presence.release(room="lobby", name="se" + CYRILLIC_I + "ya", member="m2")
    assert await presence.counts() == {}


async def test_a_refused_look_alike_frees_nothing(presence):
    """Only the holder frees a name, and a lost claim leaves the holder's keys in place."""
    await presence.claim(room="lobby", name="Seiya", member="m1")
    assert not (await presence.claim(room="lobby", name="Se" + CYRILLIC_I + "ya", member="m2")).won
    assert await presence.release(room="lobby", name="Se" + CYRILLIC_I + "ya", member="m2") is None
    assert await presence.release(room="lobby", name="Seiya", member="m2") is None
    assert not (await presence.claim(room="lobby", name="SEIYA", member="m3")).won
    assert not (await presence.claim(room="lobby", name="Se" + CYRILLIC_I + "ya", member="m3")).won


async def test_live_members_with_join_time_and_address(presence):
    before = datetime.now(UTC) - timedelta(seconds=1)
    await presence.claim(room="lobby", name="Seiya", member="m1", address="203.0.113.7")
    await presence.claim(room="lobby", name="Shiryu", member="m2", address="2001:db8::1")
    await presence.claim(room="physics", name="Olá 👋", member="m3")
    after = datetime.now(UTC) + timedelta(seconds=1)
    everyone = await presence.live_members()
    assert [(m.room, m.name, m.member, m.address) for m in everyone] == [
        ("lobby", "Seiya", "m1", "203.0.113.7"),
        ("lobby", "Shiryu", "m2", "2001:db8::1"),
        ("physics", "Olá 👋", "m3", ""),
    ]
    for live in everyone:
        assert before <= live.joined_at <= after and live.joined_at.tzinfo is not None
    assert [m.name for m in await presence.live_members(room="physics")] == ["Olá 👋"]
    assert await presence.live_members(room="empty") == []
    await presence.release(room="lobby", name="seiya", member="m1")
    assert [m.name for m in await presence.live_members(room="lobby")] == ["Shiryu"]
    # A name claimed again is a new join, from its own address.
    await presence.claim(room="lobby", name="SEIYA", member="m4", address="198.51.100.1")
    again = (await presence.live_members(room="lobby"))[-1]
    assert (again.name, again.member, again.address) == ("SEIYA", "m4", "198.51.100.1")
    for room, name, member in [
        ("lobby", "Shiryu", "m2"),
        ("lobby", "SEIYA", "m4"),
        ("physics", "Olá 👋", "m3"),
    ]:
        await presence.release(room=room, name=name, member=member)
    assert await presence.live_members() == []


async def test_a_room_with_a_limit_refuses_a_claim_once_full(presence):
    assert (await presence.claim(room="r", name="a", member="m0", limit=2)).won
    assert (await presence.claim(room="r", name="b", member="m1", limit=2)).won
    full = await presence.claim(room="r", name="c", member="m2", limit=2)
    assert (full.won, full.full) == (False, True)
    taken = await presence.claim(room="r", name="A", member="m2", limit=2)
    assert (taken.won, taken.full) == (False, False)  # a taken name is said first
    assert await presence.members(room="r") == ["a", "b"]
    assert await presence.counts() == {"r": 2}
    assert (await presence.claim(room="r", name="c", member="m2")).won  # no limit
    await presence.release(room="r", name="a", member="m0")
    await presence.release(room="r", name="b", member="m1")
    assert (await presence.claim(room="r", name="d", member="m3", limit=2)).members == ["c", "d"]
