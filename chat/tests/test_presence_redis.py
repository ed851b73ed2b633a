"""RedisPresence against a real redis-server; two instances stand in for two processes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

import pytest
import redis

from chat.presence.base import Expired
from chat.presence.redis import PREFIX
from chat.redis.errors import REDIS_ERRORS

pytestmark = pytest.mark.redis

# Short enough to keep the suite fast, long enough that a loaded machine
# refreshes a live member in time.
TTL = 1.0
# With its own upkeep running, a registry must ride out a loaded machine's
# scheduling hiccups: a member expires only after three missed beats.
UPKEEP_TTL = 1.5
DEADLINE = 10.0


@pytest.fixture
def presence_ttl() -> float:
    return TTL


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds, failing after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.05)


def unnumbered(expired: list[Expired]) -> list[Expired]:
    """The members found expired, without the serials of their leaves (test_heard_already)."""
    return [dataclasses.replace(gone, serial=0) for gone in expired]


async def test_name_race_between_processes_has_one_winner(make_presence):
    first, second = make_presence(), make_presence()
    claims = [
        registry.claim(room="lobby", name=name, member=f"{index}")
        for index, (registry, name) in enumerate(
            [(first, "Seiya"), (second, "seiya"), (first, "SEIYA"), (second, "Seiya")] * 5
        )
    ]
    results = await asyncio.gather(*claims)
    assert sum(claim.won for claim in results) == 1
    assert await first.counts() == {"lobby": 1}


async def test_a_look_alike_race_between_processes_has_one_winner(make_presence):
    """Each claim checks and takes both keys in one script: no two clashing names win."""
    first, second = make_presence(), make_presence()
    look_alikes = ["Seiya", "Se\u0456ya", "SEIYA", "Sei\u200bya", "se\u0456ya"]
    claims = [
        registry.claim(room="lobby", name=name, member=f"{index}")
        for index, (registry, name) in enumerate(
            [(registry, name) for name in look_alikes for registry in (first, second)] * 4
        )
    ]
    results = await asyncio.gather(*claims)
    assert sum(claim.won for claim in results) == 1
    assert await first.counts() == {"lobby": 1}


async def test_a_swept_member_frees_its_look_alikes(make_presence):
    dead, alive = make_presence(), make_presence()
    await dead.claim(room="lobby", name="Shun0", member="g1")
    assert not (await alive.claim(room="lobby", name="ShunO", member="a1")).won
    found: list[Expired] = []

    async def swept() -> bool:
        found.extend(await alive.sweep())
        return bool(found)

    await eventually(swept, "the silent member expires")
    assert (await alive.claim(room="lobby", name="ShunO", member="a1")).won


async def test_the_sweep_frees_an_entry_written_without_a_skeleton(make_presence, redis_server):
    """A process of an earlier release, during a rolling upgrade, wrote "<member>\\t<json>"."""
    presence = make_presence()
    checker = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        checker.hset(PREFIX + "room:lobby", "ikki", 'old1\t"Ikki"')
        checker.set(PREFIX + "names:lobby", '\n"Ikki"\n')
        checker.hincrby(PREFIX + "counts", "lobby", 1)
        checker.zadd(PREFIX + "deadlines", {"lobby\tikki\told1": 0})
    finally:
        checker.close()
    assert unnumbered(await presence.sweep()) == [
        Expired(room="lobby", name="Ikki", member="old1", count=0)
    ]
    assert await presence.counts() == {}
    assert (await presence.claim(room="lobby", name="Ikki", member="new1")).won


async def test_a_silent_process_expires_once_and_frees_its_names(make_presence):
    dead, alive = make_presence(), make_presence()
    await alive.claim(room="lobby", name="Alive", member="a1")
    ghost = await dead.claim(room="lobby", name='"Ghost"', member="g1")
    await alive.refresh()
    assert await alive.sweep() == []
    found: list[Expired] = []

    async def swept() -> bool:
        assert await alive.refresh() == []
        found.extend(await alive.sweep())
        return bool(found)

    await eventually(swept, "the silent member expires")
    assert unnumbered(found) == [Expired(room="lobby", name='"Ghost"', member="g1", count=1)]
    # Its leave is numbered after its join, as a release's would be.
    assert found[0].serial > ghost.serial
    assert await alive.sweep() == []
    assert await alive.members(room="lobby") == ["Alive"]
    assert (await alive.claim(room="lobby", name='"ghost"', member="a2")).won
    # The stalled process finds out that its member was swept.
    assert await dead.refresh() == ["g1"]
    assert await dead.refresh() == []


async def test_a_member_that_left_is_not_evicted(make_presence):
    presence, sweeper = make_presence(), make_presence()
    await presence.claim(room="lobby", name="Brief", member="b1")
    await presence.release(room="lobby", name="Brief", member="b1")
    await presence.claim(room="lobby", name="Kept", member="k1")
    assert await presence.refresh() == []
    assert await sweeper.sweep() == []


async def test_upkeep_keeps_members_alive_and_announces_the_dead(make_presence):
    announced: list[Expired] = []

    async def on_expired(expired) -> None:
        announced.extend(expired)

    alive = make_presence(ttl=UPKEEP_TTL, upkeep=True, on_expired=on_expired)
    dead = make_presence(ttl=UPKEEP_TTL)
    await alive.claim(room="lobby", name="Alive", member="a1")
    await dead.claim(room="lobby", name="Ghost", member="g1")

    async def ghost_announced() -> bool:
        return bool(announced)

    await eventually(ghost_announced, "the upkeep announces the silent member")
    assert unnumbered(announced) == [Expired(room="lobby", name="Ghost", member="g1", count=1)]
    # Outliving several TTLs is the point here, so this waits on the clock.
    await asyncio.sleep(2 * UPKEEP_TTL)
    assert await alive.members(room="lobby") == ["Alive"]


async def test_redis_outage_raises_then_recovers(make_presence, redis_server):
    presence = make_presence()
    await presence.claim(room="lobby", name="Before", member="b1")
    await presence.ping()
    redis_server.stop()
    with pytest.raises(REDIS_ERRORS):
        await presence.ping()
    with pytest.raises(REDIS_ERRORS):
        await presence.claim(room="lobby", name="During", member="d1")
    redis_server.start()
    await presence.ping()
    # Nothing on disk: the registry starts empty, and works.
    assert (await presence.claim(room="lobby", name="After", member="a1")).members == ["After"]


async def test_a_burst_of_claims_shares_one_connection(make_presence, redis_server):
    """A reconnect storm leaves no crowd of connections behind (docs/performance.md)."""
    presence = make_presence()
    claims = await asyncio.gather(
        *(presence.claim(room="r", name=f"n{n}", member=f"m{n}") for n in range(200))
    )
    assert sorted(claim.count for claim in claims) == list(range(1, 201))
    checker = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        checker.client_setname("checker")
        others = [client for client in checker.client_list() if client["name"] != "checker"]
    finally:
        checker.close()
    assert len(others) == 1, others


async def test_claims_work_after_redis_forgets_its_scripts(make_presence, redis_server):
    """A restarted Redis has no scripts cached: EVALSHA fails, EVAL stands in."""
    presence = make_presence()
    await presence.claim(room="r", name="a", member="m0")
    checker = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        checker.script_flush()
    finally:
        checker.close()
    assert (await presence.claim(room="r", name="b", member="m1")).members == ["a", "b"]
    assert (await presence.release(room="r", name="a", member="m0")).count == 1


async def test_every_process_sees_the_live_members_and_a_swept_one_goes(
    make_presence, redis_server
):
    one, two, dead = make_presence(), make_presence(), make_presence()
    await one.claim(room="lobby", name="One", member="p1.a", address="203.0.113.1")
    await two.claim(room="lobby", name="Two", member="p2.a", address="203.0.113.2")
    await dead.claim(room="lobby", name="Ghost", member="p3.a", address="203.0.113.3")
    seen = [(m.name, m.member, m.address) for m in await two.live_members()]
    assert seen == [
        ("One", "p1.a", "203.0.113.1"),
        ("Two", "p2.a", "203.0.113.2"),
        ("Ghost", "p3.a", "203.0.113.3"),
    ]

    async def swept() -> bool:
        await one.refresh()
        await two.refresh()
        return bool(await one.sweep())

    await eventually(swept, "the silent member expires")
    assert [m.name for m in await two.live_members(room="lobby")] == ["One", "Two"]
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        # Nothing of the swept member is left behind.
        assert sorted(client.hkeys("chat:presence:joined:lobby")) == ["one", "two"]
    finally:
        client.close()


async def test_an_entry_without_a_join_time_is_still_a_live_member(make_presence, redis_server):
    """A member claimed by a release that kept no join times (a rolling restart)."""
    presence = make_presence()
    await presence.claim(room="lobby", name="New", member="p1.a", address="203.0.113.1")
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        client.hset("chat:presence:room:lobby", "old", 'p0.a\t"Old"')
    finally:
        client.close()
    old = [m for m in await presence.live_members() if m.name == "Old"]
    assert [(m.member, m.address, m.joined_at.year) for m in old] == [("p0.a", "", 1970)]


def output_bytes(checker: redis.Redis) -> int:
    return int(checker.info("stats")["total_net_output_bytes"])


async def test_a_join_in_a_large_room_brings_only_the_new_names(make_presence, redis_server):
    """Redis sends a process the names added since its copy, not the whole room."""
    presence = make_presence(coalesce_above=10)
    for n in range(400):
        await presence.claim(room="big", name=f"member-with-a-long-name-{n:04}", member=f"m{n}")
    checker = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        # What one INFO reply adds to the count: it is counted once written.
        start = output_bytes(checker)
        info = output_bytes(checker) - start
        start = output_bytes(checker)
        claim = await presence.claim(room="big", name="Late", member="late")
        sent = output_bytes(checker) - start - info
    finally:
        checker.close()
    members = claim.members
    assert members is not None and len(members) == 401 and members[-1] == "Late"
    whole = len(claim.members_json)
    assert whole > 12_000
    # The reply: the count, the epoch, the offset, one name, the flags.
    assert sent < 300, f"{sent} bytes for one join, the list being {whole}"


async def test_every_join_lists_the_room_as_redis_has_it(make_presence):
    """Two processes joining and leaving a large room: each list exact at its claim."""
    first, second = make_presence(coalesce_above=3), make_presence(coalesce_above=3)
    registries = [first, second]
    held: list[tuple[int, str]] = []
    for step in range(120):
        registry = registries[step % 2 if step % 7 else (step // 7) % 2]
        if step % 5 == 4 and held:
            index, name = held.pop((step * 31) % len(held))
            assert await registries[index].release(room="r", name=name, member=name)
            continue
        name = f"n{step}"
        claim = await registry.claim(room="r", name=name, member=name)
        held.append((registries.index(registry), name))
        assert claim.members == await first.members(room="r") == [name for _, name in held]


async def test_joins_sent_together_each_list_the_room_up_to_their_own(make_presence):
    """Claims pipelined on one connection share a copy; each reply still lists its own moment."""
    first, second = make_presence(coalesce_above=3), make_presence(coalesce_above=3)
    for n in range(5):
        await first.claim(room="r", name=f"seed{n}", member=f"s{n}")
    claims = await asyncio.gather(
        *(
            registry.claim(room="r", name=f"n{n}", member=f"m{n}")
            for n in range(60)
            for registry in [(first, second)[n % 2]]
        )
    )
    final = await first.members(room="r")
    assert len(final) == 65
    for n, claim in enumerate(claims):
        members = claim.members
        assert members is not None and members == final[: len(members)]
        assert members[-1] == f"n{n}"


async def test_a_lost_serial_counter_starts_again_above_every_serial_given(
    make_presence, redis_server
):
    """Members who stayed compare serials with their claims': a counter flushed
    or evicted must not start again at 1, or they would drop the joins after."""
    presence = make_presence()
    before = await presence.claim(room="lobby", name="Seiya", member="m1")
    checker = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        assert checker.delete(PREFIX + "serial") == 1
    finally:
        checker.close()
    after = await presence.claim(room="lobby", name="Shiryu", member="m2")
    released = await presence.release(room="lobby", name="Seiya", member="m1")
    assert before.serial < after.serial < released.serial
