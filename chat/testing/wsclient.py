"""Helpers for tests that talk to real server processes with the `websockets` client."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

# How long a real server gets to answer one frame (a loaded 2-core machine).
TIMEOUT = 5.0


async def recv(ws, timeout: float = TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws, frame_type: str, timeout: float = TIMEOUT) -> dict:
    frame = await recv(ws, timeout)
    assert frame["type"] == frame_type, frame
    return frame


async def send(ws, frame: dict) -> None:
    await ws.send(json.dumps(frame))


async def closed_code(ws, timeout: float = TIMEOUT) -> int:
    """Read until the server closes the socket; the close code the client saw."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd else 1006


async def close_frame(ws, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Read until the server closes the socket; the close code and reason the client saw."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    received = closed.value.rcvd
    return (received.code, received.reason) if received else (1006, "")
