"""Who a ban or a kick applies to: pure rules, no I/O.

The live settings snapshot (chat.conf) holds the active bans and the pending
kicks in these forms, and a connection asks them at its handshake (its
address), at its join (its name) and whenever the moderation state changes
(chat.moderation.watch). The models (chat.models) validate addresses here too,
so that what an operator saves is what a connection is matched against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from .names import clash

# RFC 6455: a close frame's payload is at most 125 bytes, two of them the code.
MAX_CLOSE_REASON_BYTES = 123

Network = IPv4Network | IPv6Network


def names_match(a: str, b: str) -> bool:
    """Whether two names are the same name, as two names clash in a room (chat.names).

    The one rule for bans and kicks: by case folding or by the confusable
    skeleton, as the presence registries compare names, so that a
    look-alike of a banned name is banned with it.
    """
    return clash(a, b)


def parse_network(text: str) -> Network:
    """An address or a CIDR network: "203.0.113.7", "203.0.113.0/24", "2001:db8::/32".

    ValueError with a sentence a person can act on otherwise, also for a
    network with host bits set ("203.0.113.7/24"), which is more often a
    typo than what was meant.
    """
    text = text.strip()
    try:
        return ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP address or network; write one such as 203.0.113.7, "
            "203.0.113.0/24 or 2001:db8::/32."
        ) from None
    raise ValueError(f"{text} has host bits set: the network is {loose}.")


def format_network(network: Network) -> str:
    """A single address as itself ("203.0.113.7"), any other network in CIDR notation."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def client_address(scope: dict[str, Any]) -> str:
    """The client's address in an ASGI scope ("" when the server gives none, e.g. a Unix socket).

    Behind a proxy, this is the proxy's address unless the server is told to
    believe the proxy's X-Forwarded-For (docs/deploy.md).
    """
    client = scope.get("client")
    return str(client[0]) if client else ""


def _ip(address: str) -> IPv4Address | IPv6Address | None:
    try:
        ip = ip_address(address)
    except ValueError:
        return None
    # A dual-stack socket reports an IPv4 client as ::ffff:203.0.113.7.
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_in(address: str, network: Network) -> bool:
    """Whether a client address (as `client_address` gives it) is in `network`."""
    ip = _ip(address)
    return ip is not None and ip.version == network.version and ip in network


@dataclass(frozen=True, slots=True)
class ActiveBan:
    """A ban as the snapshot holds it: a name and/or a network, in one room or all."""

    id: int
    name: str  # "": whatever the name
    network: Network | None  # None: from any address
    room: str  # "": every room
    reason: str
    expires_at: float | None  # seconds since the epoch; None: until lifted

    def applies(self, *, room: str, name: str | None, address: str, now: float) -> bool:
        """Whether it bans a connection in `room` from `address`, joined as `name` (None: not yet).

        A ban with a name and an address bans either: the name from any
        address, and anyone from the address.
        """
        if self.expires_at is not None and now >= self.expires_at:
            return False
        if self.room and self.room != room:
            return False
        if self.name and name is not None and names_match(self.name, name):
            return True
        return self.network is not None and address_in(address, self.network)


def find_ban(
    bans: Iterable[ActiveBan], *, room: str, name: str | None, address: str, now: float
) -> ActiveBan | None:
    """The first of `bans` that applies to the connection, if any."""
    for ban in bans:
        if ban.applies(room=room, name=name, address=address, now=now):
            return ban
    return None


def close_reason(text: str) -> str:
    """`text` cut to what a close frame carries: 123 bytes of UTF-8, on a character boundary."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return text
    # The cut may split the last character's bytes: "ignore" drops that part.
    return encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


@dataclass(frozen=True, slots=True)
class KickOrder:
    """A kick not yet carried out: whoever holds `name` in `room`, or exactly `member`."""

    id: int
    room: str
    name: str
    # The connection's channel name when the moderator picked it from the
    # live members; "": whoever holds the name (a kick from the command line).
    member: str = ""

    def applies(self, *, room: str, name: str | None, member: str) -> bool:
        if name is None or room != self.room:
            return False
        if self.member:
            return member == self.member
        return names_match(self.name, name)

    def as_event(self) -> list[Any]:
        """Plain data, for a channel-layer event."""
        return [self.id, self.room, self.name, self.member]

    @classmethod
    def from_event(cls, data: list[Any]) -> KickOrder:
        kick_id, room, name, member = data
        return cls(id=kick_id, room=room, name=name, member=member)
