"""`python -m chat.tests.gc_probe [--tuned] MEMBERS MESSAGES`: collections a room's messages cost.

Run in a fresh interpreter by tests.test_gc_tuning: N members read their
channel through the in-process layer and the consumer's event loop (no
sockets: the server's send is a stub), and the room gets a few messages;
it prints how many collections of each generation the messages set off.
With `--tuned`, the server's settings (chatsite.gc_tuning) apply first.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from typing import Any

import uvloop

GROUP = "chat.room"


async def relay(members: int, messages: int) -> list[int]:
    from chat.dispatch import LeanDispatchMixin, channel_receiver, dispatch_from
    from chat.layers.memory import ChatChannelLayer

    class Member(LeanDispatchMixin):
        """What a room's event costs a consumer, up to the server's send."""

        def __init__(self, channel: str) -> None:
            self.channel_name = channel
            self.sent = 0

        async def chat_broadcast(self, event: dict[str, Any]) -> None:
            self.sent += 1
            if self is room[-1]:
                # Members are woken in the group's order: the last one has it, all have.
                heard.set()

    layer = ChatChannelLayer(capacity=messages + 1)
    heard = asyncio.Event()
    socket_quiet = asyncio.Event()

    async def no_frames() -> dict[str, Any]:
        await socket_quiet.wait()
        return {}

    room, pumps = [], []
    for _ in range(members):
        member = Member(await layer.new_channel())
        await layer.group_add(GROUP, member.channel_name)
        reader = channel_receiver(layer, member.channel_name)
        pumps.append(asyncio.ensure_future(dispatch_from([no_frames, reader], member.dispatch)))
        room.append(member)
    event = {"type": "chat.broadcast", "sender": "", "text": "x" * 100}
    # A first message: every member's first wait is made, as in a live room.
    await layer.group_send(GROUP, event)
    await asyncio.sleep(0.1)
    before = [generation["collections"] for generation in gc.get_stats()]
    for _ in range(messages):
        heard.clear()
        await layer.group_send(GROUP, event)
        await heard.wait()
    after = [generation["collections"] for generation in gc.get_stats()]
    assert all(member.sent == messages + 1 for member in room), "a member missed a message"
    for pump in pumps:
        pump.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    return [late - early for early, late in zip(before, after, strict=True)]


def main(argv: list[str]) -> None:
    tuned = "--tuned" in argv
    members, messages = (int(word) for word in argv if not word.startswith("--"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    if tuned:
        from chatsite.gc_tuning import tune_for_long_lived_connections

        tune_for_long_lived_connections()
    print(*uvloop.run(relay(members, messages)))


if __name__ == "__main__":
    main(sys.argv[1:])
