"""Reading a channel in the layer tests: what must arrive, and what must not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import BaseChannelLayer

# How long an event that must arrive may take, and how long "nothing more
# arrives" is listened for.
DEADLINE = 10.0
SILENCE = 0.3


async def receive(layer: BaseChannelLayer, channel: str) -> dict[str, Any]:
    """The channel's next event, which must come within DEADLINE."""
    return await asyncio.wait_for(layer.receive(channel), DEADLINE)


async def assert_silent(layer: BaseChannelLayer, channel: str) -> None:
    """Listen to the channel for SILENCE: no event may arrive."""
    with pytest.raises(TimeoutError):
        message = await asyncio.wait_for(layer.receive(channel), SILENCE)
        pytest.fail(f"{channel} received {message}")
