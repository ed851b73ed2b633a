"""Health probe: does the channel layer (and Redis, if used) answer?"""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer

from .presence import get_presence
from .redis.errors import REDIS_ERRORS

# A probe that takes longer than this counts as down: a load balancer's
# health check must get an answer, not hang with the broken dependency.
PROBE_TIMEOUT_SECONDS = 2.0


async def check_channel_layer() -> None:
    """Send a message to a fresh channel and read it back, through Redis if the layer uses it."""
    layer = get_channel_layer()
    if "roundtrip" in layer.extensions:
        await layer.roundtrip()
        return
    # The default prefix on purpose: channels-redis reads every process-local
    # channel of one prefix through a single receive loop, and a loop that a
    # connected consumer holds never reads another prefix's messages.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.probe"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.probe":
        raise RuntimeError("the channel layer returned another message than the one sent")


async def probe() -> dict[str, str]:
    """Each dependency's state, "ok" or the reason it failed."""
    results: dict[str, str] = {}
    checks = {"channel_layer": check_channel_layer()}
    presence = get_presence()
    if "ping" in presence.extensions:
        checks["redis"] = presence.ping()
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            results[name] = f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"
        except (*REDIS_ERRORS, RuntimeError) as error:
            results[name] = f"{type(error).__name__}: {error}"
        else:
            results[name] = "ok"
    return results
