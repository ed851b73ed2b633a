"""Who a ban or a kick applies to, and what moderation says of a connection: pure rules."""

from __future__ import annotations

from ipaddress import ip_network
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import protocol
from chat.conf import ChatConfig, RoomSettings
from chat.moderation import verdicts
from chat.sanctions import (
    MAX_CLOSE_REASON_BYTES,
    ActiveBan,
    KickOrder,
    address_in,
    client_address,
    close_reason,
    find_ban,
    format_network,
    names_match,
    parse_network,
)

NOW = 1_700_000_000.0


def ban(**fields) -> ActiveBan:
    defaults = {"id": 1, "name": "", "network": None, "room": "", "reason": "", "expires_at": None}
    return ActiveBan(**{**defaults, **fields})


def test_names_match_as_names_clash_by_case_or_by_look():
    assert names_match("Seiya", "SEIYA")
    assert names_match("Straße", "STRASSE")  # case folding, not lowercasing
    assert names_match("Seiya", "Se\u0456ya")  # a Cyrillic i (U+0456)
    assert names_match("Shun0", "ShunO")
    assert not names_match("Seiya", "Shiryu")


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("203.0.113.7", "203.0.113.7/32"),
        (" 203.0.113.0/24 ", "203.0.113.0/24"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_parse_network_takes_addresses_and_networks(text, network):
    assert parse_network(text) == ip_network(network)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("203.0.113.300", "is not an IP address or network"),
        ("example.org", "is not an IP address or network"),
        ("203.0.113.0/33", "is not an IP address or network"),
        ("", "is not an IP address or network"),
        ("203.0.113.7/24", "has host bits set: the network is 203.0.113.0/24"),
        ("2001:db8::1/32", "has host bits set: the network is 2001:db8::/32"),
    ],
)
def test_parse_network_refuses_with_a_sentence(text, says):
    with pytest.raises(ValueError, match=says):
        parse_network(text)


def test_format_network_writes_a_single_address_as_itself():
    assert format_network(ip_network("203.0.113.7/32")) == "203.0.113.7"
    assert format_network(ip_network("203.0.113.0/24")) == "203.0.113.0/24"
    assert format_network(ip_network("2001:db8::/32")) == "2001:db8::/32"


def test_address_in_a_network():
    network = ip_network("203.0.113.0/24")
    assert address_in("203.0.113.250", network)
    assert address_in("::ffff:203.0.113.9", network)  # a dual-stack socket's IPv4 client
    assert not address_in("203.0.114.1", network)
    assert not address_in("2001:db8::1", network)
    assert not address_in("", network)
    assert not address_in("not an address", network)
    assert address_in("2001:db8:ffff::2", ip_network("2001:db8::/32"))


def test_client_address_from_the_scope():
    assert client_address({"client": ["203.0.113.7", 51000]}) == "203.0.113.7"
    assert client_address({"client": None}) == ""
    assert client_address({}) == ""


def test_a_name_ban_applies_at_the_join_and_an_address_ban_before():
    by_name = ban(name="Ikki")
    assert not by_name.applies(room="lobby", name=None, address="203.0.113.7", now=NOW)
    assert by_name.applies(room="lobby", name="IKKI", address="", now=NOW)
    by_address = ban(network=ip_network("203.0.113.0/24"))
    assert by_address.applies(room="lobby", name=None, address="203.0.113.7", now=NOW)
    assert not by_address.applies(room="lobby", name="Ikki", address="198.51.100.1", now=NOW)


def test_a_ban_with_a_name_and_an_address_bans_either():
    both = ban(name="Ikki", network=ip_network("203.0.113.0/24"))
    assert both.applies(room="lobby", name="Ikki", address="198.51.100.1", now=NOW)
    assert both.applies(room="lobby", name="Shun", address="203.0.113.1", now=NOW)
    assert not both.applies(room="lobby", name="Shun", address="198.51.100.1", now=NOW)


def test_a_ban_of_one_room_and_a_ban_until_a_time():
    one_room = ban(name="Ikki", room="physics")
    assert one_room.applies(room="physics", name="Ikki", address="", now=NOW)
    assert not one_room.applies(room="lobby", name="Ikki", address="", now=NOW)
    timed = ban(name="Ikki", expires_at=NOW + 60)
    assert timed.applies(room="lobby", name="Ikki", address="", now=NOW + 59.9)
    assert not timed.applies(room="lobby", name="Ikki", address="", now=NOW + 60)


def test_find_ban_returns_the_first_that_applies():
    bans = [ban(id=1, name="Shun"), ban(id=2, name="Ikki"), ban(id=3, name="ikki")]
    assert find_ban(bans, room="lobby", name="IKKI", address="", now=NOW).id == 2
    assert find_ban(bans, room="lobby", name="Hyoga", address="", now=NOW) is None


def test_close_reason_keeps_a_short_reason_and_cuts_a_long_one_on_a_character():
    assert close_reason("Spam") == "Spam"
    assert close_reason("a" * 123) == "a" * 123
    assert close_reason("a" * 124) == "a" * 123
    # 2-byte characters: 61 of them fill 122 bytes; the 62nd would not fit.
    assert close_reason("é" * 100) == "é" * 61
    # A 4-byte emoji straddling the limit is left out whole.
    assert close_reason("a" * 121 + "😀b") == "a" * 121


@given(st.text(max_size=200))
def test_close_reason_is_the_longest_prefix_that_fits(text):
    reason = close_reason(text)
    assert text.startswith(reason)
    assert len(reason.encode()) <= MAX_CLOSE_REASON_BYTES
    if reason != text:
        assert len(text[: len(reason) + 1].encode()) > MAX_CLOSE_REASON_BYTES


def test_a_kick_by_name_or_by_connection():
    by_name = KickOrder(id=1, room="lobby", name="ikki")
    assert by_name.applies(room="lobby", name="Ikki", member="specific.a!1")
    assert not by_name.applies(room="lobby", name=None, member="specific.a!1")
    assert not by_name.applies(room="physics", name="Ikki", member="specific.a!1")
    exact = KickOrder(id=2, room="lobby", name="Ikki", member="specific.a!1")
    assert exact.applies(room="lobby", name="Ikki", member="specific.a!1")
    assert not exact.applies(room="lobby", name="Ikki", member="specific.b!2")
    assert KickOrder.from_event(exact.as_event()) == exact


# chat.moderation.verdicts


def config(**fields) -> ChatConfig:
    rooms = fields.pop("rooms", {})
    return ChatConfig(rooms=MappingProxyType(rooms), **fields)


def test_verdict_order_the_room_first_then_bans_then_kicks():
    bans = (ban(name="Ikki", reason="Bye"),)
    kicks = [KickOrder(id=7, room="shut", name="Ikki"), KickOrder(id=8, room="lobby", name="Ikki")]
    shut = config(rooms={"shut": RoomSettings(is_open=False)}, bans=bans)
    decided = verdicts.verdict(shut, room="shut", name="Ikki", address="", kicks=kicks)
    assert (decided.action, decided.code) == ("close_room", protocol.CLOSE_ROOM_CLOSED)
    missing = config(allow_adhoc_rooms=False)
    assert verdicts.verdict(missing, room="x", name=None, address="").code == 4404
    banned = verdicts.verdict(config(bans=bans), room="lobby", name="Ikki", address="", kicks=kicks)
    assert (banned.action, banned.code, banned.reason) == ("ban", protocol.CLOSE_BANNED, "Bye")
    kicked = verdicts.verdict(config(), room="lobby", name="ikki", address="", kicks=kicks)
    assert (kicked.action, kicked.code, kicked.kick_id) == ("kick", protocol.CLOSE_KICKED, 8)
    assert verdicts.verdict(config(), room="lobby", name="Shun", address="", kicks=kicks) is None


def test_tightened_by_a_new_ban_or_a_shut_room_only():
    before = config(rooms={"a": RoomSettings(is_open=True)}, bans=(ban(id=1, name="x"),))
    assert not verdicts.tightened(before, before)
    assert verdicts.tightened(before, config(rooms=dict(before.rooms), bans=(ban(id=2, name="y"),)))
    assert not verdicts.tightened(before, config(rooms=dict(before.rooms)))  # a ban lifted
    assert verdicts.tightened(before, config(rooms={"a": RoomSettings(is_open=False)}))
    assert verdicts.tightened(config(), config(rooms={"new": RoomSettings(is_open=False)}))
    assert verdicts.tightened(config(), config(allow_adhoc_rooms=False))
    slower = config(rooms={"a": RoomSettings(slow_mode_seconds=5, max_members=2)})
    assert not verdicts.tightened(before, config(rooms=dict(slower.rooms), bans=before.bans))


def test_new_kicks_are_those_not_seen_before():
    kicks = (KickOrder(id=1, room="a", name="x"), KickOrder(id=2, room="a", name="y"))
    assert [kick.id for kick in verdicts.new_kicks(config(kicks=kicks), [1])] == [2]


def test_slow_mode_wait():
    assert verdicts.slow_mode_wait(last=float("-inf"), now=NOW, seconds=10) == 0
    assert verdicts.slow_mode_wait(last=NOW, now=NOW + 3, seconds=10) == 7
    assert verdicts.slow_mode_wait(last=NOW, now=NOW + 3, seconds=0) == 0
    assert verdicts.slow_mode_wait(last=NOW, now=NOW + 11, seconds=10) == 0
