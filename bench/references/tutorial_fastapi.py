"""Reference (a): the bare tutorial design, as commonly published.

FastAPI under uvicorn, one dict of sockets per room keyed by member name, and
a broadcast that awaits `send_json` on each socket in turn. No validation, no
presence, no limits: the floor a chat server is compared with.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    """The tutorial's manager: name -> socket, per room."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, WebSocket]] = {}

    async def connect(self, room: str, name: str, websocket: WebSocket) -> None:
        await websocket.accept()
        self.rooms.setdefault(room, {})[name] = websocket

    def disconnect(self, room: str, name: str) -> None:
        members = self.rooms.get(room, {})
        members.pop(name, None)
        if not members:
            self.rooms.pop(room, None)

    async def broadcast(self, room: str, sender: str, message: dict) -> None:
        for name, websocket in list(self.rooms.get(room, {}).items()):
            if name != sender:
                await websocket.send_json(message)


manager = ConnectionManager()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/ws/{room}/{name}")
async def chat(websocket: WebSocket, room: str, name: str) -> None:
    await manager.connect(room, name, websocket)
    try:
        while True:
            data = await websocket.receive_json()
            await manager.broadcast(room, name, {"name": name, "message": data["message"]})
    except WebSocketDisconnect:
        manager.disconnect(room, name)
