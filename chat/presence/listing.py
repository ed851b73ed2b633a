"""A process's copies of large rooms' member lists, so that a join brings only what is new.

Every join answers with the room's members (the `joined` frame), and a
reconnect storm of N members into one room asks for the list N times: when
Redis sent all of it each time, a storm of 10,000 cost Redis and the
process O(N) bytes per join, O(N²) in all. Instead, a process that has
members in a large room keeps the list as it last got it, as the JSON array
the frame sends, with two things the claim script needs to send only the
rest (`listing` in chat/presence/lua/lib.lua):

- the list's epoch in Redis, a number never used before that a large room's
  list is given and loses whenever a name leaves it (the list is
  rewritten): while it is the same, the list has only grown at its end;
- how many bytes of the stored list ("\\n<json>\\n<json>\\n") the copy holds.

The script answers with the epoch, the offset its piece starts at and the
piece: all of the list (offset 0) when the epochs differ, else only the
bytes after the offset the process sent (a small room's claim gets the
list alone, as before there were copies: offset 0, no epoch). Replies come back in the order
Redis ran the scripts, so a piece may overlap bytes an earlier reply
brought (two claims sent before either was answered): those are skipped.

Only rooms above `keep_above` members are kept (smaller lists cost little
to send whole), and a room's copy goes when the process has no member of it
and no claim of it awaiting its reply, so the copies are never more than
the rooms this process serves, and a reply that brings a piece always finds
the copy its offset refers to.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass(slots=True)
class _Copy:
    epoch: str
    size: int  # bytes of the stored list this copy holds
    json: bytes  # the names as a JSON array


class MemberLists:
    """One event loop's copies of member lists (chat.presence.redis keeps one per loop).

    Each claim calls `asking` before it is sent, then `claimed` or `refused`
    with its reply; each member that leaves calls `released`.
    """

    def __init__(self, *, keep_above: int) -> None:
        self.keep_above = keep_above
        self._copies: dict[str, _Copy] = {}
        # room -> this process's claims of it awaiting a reply, and its
        # members in it: while there are any of either, the room's copy stays.
        self._pending: collections.Counter[str] = collections.Counter()
        self._members: collections.Counter[str] = collections.Counter()

    def asking(self, room: str) -> tuple[str, int]:
        """A claim is about to be sent: the epoch and size of the room's copy ("", 0: none)."""
        self._pending[room] += 1
        copy = self._copies.get(room)
        return ("", 0) if copy is None else (copy.epoch, copy.size)

    def claimed(
        self, room: str, *, epoch: str, offset: int, piece: str, count: int
    ) -> bytes | None:
        """A won claim's reply taken in: the room's members as a JSON array.

        None if the piece continues a copy this process does not have, which
        the rules above rule out unless another writer changed the list
        without changing its epoch: the caller then reads the whole list.
        """
        _take(self._pending, room)
        self._members[room] += 1
        data = piece.encode()
        copy = self._copies.get(room)
        if offset == 0:
            names = as_array(data)
            if count > self.keep_above and epoch:
                self._copies[room] = _Copy(epoch=epoch, size=len(data), json=names)
            elif not self._pending[room]:
                # A small room: nobody awaits a piece of its copy.
                self._copies.pop(room, None)
            return names
        if copy is None or copy.epoch != epoch or offset > copy.size:
            self._copies.pop(room, None)
            return None
        # Only bytes after the copy's: the reply of a claim sent before the
        # copy grew repeats what the copy has.
        new = data[copy.size - offset :]
        if new:
            copy.json = copy.json[:-1] + b"," + new[:-1].replace(b"\n", b",") + b"]"
            copy.size += len(new)
        return copy.json

    def refused(self, room: str) -> None:
        """A claim came back refused (taken, full) or failed: it awaits nothing now."""
        _take(self._pending, room)
        self._forget_unused(room)

    def released(self, room: str) -> None:
        """One of this process's members left `room`."""
        _take(self._members, room)
        self._forget_unused(room)

    def _forget_unused(self, room: str) -> None:
        if not self._pending[room] and not self._members[room]:
            self._copies.pop(room, None)

    def __len__(self) -> int:
        """The rooms whose list this process keeps."""
        return len(self._copies)


def _take(counter: collections.Counter[str], room: str) -> None:
    """One fewer of `room` in `counter`, which keeps no zeros."""
    if counter[room] > 1:
        counter[room] -= 1
    else:
        del counter[room]


def as_array(stored: bytes) -> bytes:
    """The stored list ("\\n<json>\\n<json>\\n", or "") as a JSON array.

    The names in it are JSON already, so the array needs no decoding: JSON
    escapes control characters (and a name has none, SPEC), so a newline is
    never part of one.
    """
    return b"[" + stored[1:-1].replace(b"\n", b",") + b"]"
