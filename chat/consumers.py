"""The chat's WebSocket consumer: one instance per connection.

Thin on purpose: parsing and validation live in `protocol`, limits in
`ratelimit`, names in `presence`, settings in `conf`, the channel-layer
events in `events`; only chat.routing imports this module. A connection joins its
room's group on its first valid `message` or `join` and from then on relays
through the channel layer to the other members.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from . import drain, events, frames, metrics, protocol
from .conf import ChatConfig, get_config
from .dispatch import LeanDispatchMixin
from .i18n import scope_language, sentence
from .ids import new_message_id, now_ms
from .moderation import services as moderation
from .moderation import watch
from .moderation.verdicts import NO_ROOM, Verdict, slow_mode_wait, verdict
from .presence import Claim, Release, get_presence
from .presence.announce import announce
from .protocol import JoinFrame, MessageFrame, PingFrame, ProtocolError, TypingFrame
from .ratelimit import EventWindow, TokenBucket
from .recovery.tokens import ResumeToken, verify
from .redis.errors import REDIS_ERRORS
from .rooms import DEFAULT_ROOM, group_name
from .sanctions import KickOrder, client_address
from .transport import send_errors

logger = logging.getLogger(__name__)

# SPEC: a connection sending over 50 malformed frames in 10 s is closed.
ERROR_LIMIT = 50
ERROR_WINDOW_SECONDS = 10.0


class ChatConsumer(LeanDispatchMixin, AsyncJsonWebsocketConsumer):
    """A member of one room, from handshake to disconnect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.room = DEFAULT_ROOM
        self.group = group_name(DEFAULT_ROOM)
        self.name: str | None = None
        self.closing = False
        # Whether the close frame has gone to the server: a second one is an error.
        self.close_sent = False
        self.accepted = False
        self.presence = get_presence()
        self.bucket: TokenBucket | None = None
        self.errors = EventWindow(limit=ERROR_LIMIT, seconds=ERROR_WINDOW_SECONDS)
        self.last_typing = -math.inf
        # The handshake's language, read at the first error: a connection
        # that never errs never parses its Accept-Language.
        self.language: str | None = None
        # Decided once, so the connection undoes exactly what it counted.
        self.counts = metrics.counts()
        # When its last chat message was accepted (slow mode).
        self.last_message = -math.inf
        self.address = ""
        self.watched = False
        # The room's latest offset this member has been given or has no
        # claim to (before its join): a numbered event at or below it is
        # not delivered again (the hand-over from a replay to live frames).
        self.seen = 0
        # The run of offsets `seen` counts in (the room's epoch at the join).
        self.epoch = ""
        # The registry's serial that this member's `joined` list is as of: a
        # join or leave numbered at or below it is in the list already and is
        # not told again (its publish was still on its way, from this
        # process or another, when this member joined).
        self.listed = 0
        # The leave that the layer's overflow alarm started (`fell_behind`).
        self.falling: asyncio.Future[None] | None = None
        # The server's write of an encoded frame ("chat.frames"), if it has one.
        self.write_frame: Callable[[bytes], bool] | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Run the consumer; a Redis outage closes it with a code the page retries."""
        self.room = scope["url_route"]["kwargs"].get("room", DEFAULT_ROOM)
        self.group = group_name(self.room)
        try:
            await super().__call__(scope, receive, send)
        except REDIS_ERRORS as error:
            # Redis is down: this connection can neither hear nor reach its
            # room. Say so with a code the page retries; it rejoins later.
            # No channel name yet if the layer refused to make one. The
            # error says what failed (the layer's own say "Redis unavailable").
            channel = getattr(self, "channel_name", None)
            logger.warning(
                "closing %s: %s: %s",
                channel or "a new connection",
                type(error).__name__,
                error,
                extra={"room": self.room, "channel": channel},
            )
            if not self.accepted:
                await self.accept()
            await self.close_with(protocol.CLOSE_UNAVAILABLE)
        finally:
            if self.accepted:
                self.counts.ended()

    async def dispatch_ended(self) -> None:
        """The one way out: leave the room before the channel is forgotten.

        Runs whatever ended the consumer (the socket closed, a handler
        raised, the server cancelled it), so no name or presence entry
        outlives its connection; and nothing queues for the channel after.
        """
        await self.leave()
        if self.falling is not None:
            # The alarm's leave, if still talking to Redis: bounded by its timeouts.
            falling, self.falling = self.falling, None
            await falling
        if self.watched:
            self.watched = False
            watch.connection_closed()
        await super().dispatch_ended()

    async def connect(self) -> None:
        """Accept, then close at once with a code the page explains if the room is not
        open or a ban keeps this address out."""
        self.address = client_address(self.scope)
        config = await get_config()
        self.bucket = TokenBucket(rate=config.rate_limit_per_second, burst=config.rate_limit_burst)
        await self.accept()
        if drain.draining():
            # This process is stopping: the page reconnects, to another one.
            await self.close_with(protocol.CLOSE_SERVICE_RESTART)
            return
        refused = verdict(config, room=self.room, name=None, address=self.address)
        if refused is not None:
            await self.moderated(refused)
            return
        self.watched = True
        watch.connection_opened(self.channel_layer)
        reader = getattr(self, "channel_receive", None)
        on_overflow = getattr(reader, "on_overflow", None)
        if on_overflow is not None:
            on_overflow(self.fell_behind)
        self.write_frame = self.scope.get("extensions", {}).get(frames.EXTENSION, {}).get("write")
        relay_idle = getattr(reader, "relay_idle", None)
        if self.write_frame is not None and relay_idle is not None:
            relay_idle(self.relay_now)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        """Complete the handshake: from now on the connection is open (and counted)."""
        await super().accept(subprotocol, headers)
        self.accepted = True
        self.counts.opened()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """The socket is gone: stop (`dispatch_ended` leaves the room).

        Channels' own version also hops to a thread to close stale database
        connections (`aclose_old_connections`), once per disconnect, which a
        reconnect storm of thousands pays all at once; this consumer's
        database work goes through `database_sync_to_async`, which does that
        itself (see LeanDispatchMixin).

        A close the server started was counted when it did; anything else is
        the client's close code, or 1006 when the connection was lost.
        """
        if not self.closing:
            self.closing = True
            self.counts.closed(message.get("code", 1005), by_server=False)
        raise StopConsumer()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Handle one client frame; a protocol error is answered, never fatal."""
        if self.closing:
            return
        if (
            text_data is not None
            and len(text_data) * 4 > settings.CHAT_MAX_FRAME_BYTES
            and (len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES)
        ):
            # Servers configured as the README says close these with 1009 first.
            await self.close_with(protocol.CLOSE_TOO_BIG)
            return
        try:
            content = protocol.decode(text_data, bytes_data)
            await self.receive_json(content)
        except ProtocolError as error:
            await self.refuse(error)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Act on one decoded frame."""
        frame = protocol.parse(content)
        if isinstance(frame, PingFrame):
            await self.send_json(protocol.pong_frame())
            return
        config = await get_config()
        if isinstance(frame, MessageFrame):
            await self.say(frame, config)
        elif isinstance(frame, JoinFrame):
            if self.name is not None:
                raise ProtocolError(
                    protocol.ALREADY_JOINED,
                    sentence(_("You have already joined as %(name)s."), name=self.name),
                    frame.client_id,
                )
            await self.join(
                frame.name,
                config,
                client_id=frame.client_id,
                resume=frame.resume,
                offset=frame.offset,
            )
        elif isinstance(frame, TypingFrame):
            await self.typing(frame, config)

    async def join(
        self,
        raw_name: str,
        config: ChatConfig,
        *,
        client_id: str | None,
        message: str | None = None,
        resume: str | None = None,
        offset: int | None = None,
    ) -> None:
        """Claim a name, enter the room's group and tell everyone.

        With `message`, the first chat message of a tutorial-style frame: it is
        checked before anybody hears of the join, so a bad one changes nothing.
        With `resume`, a rejoin: the name is taken over from the token's
        member if that one holds it, and what it missed is replayed (`recover`).
        """
        name = protocol.clean_name(raw_name, max_length=config.max_name_length, client_id=client_id)
        refused = verdict(config, room=self.room, name=name, address=self.address)
        if refused is not None:
            await self.moderated(refused)
            return
        token = None if resume is None else verify(resume, room=self.room)
        max_members = config.room(self.room).max_members
        claim = await self.presence.claim(
            room=self.room,
            name=name,
            member=self.channel_name,
            address=self.address,
            limit=max_members,
            takeover=None if token is None else token.member,
        )
        if claim.full:
            raise protocol.room_full(client_id=client_id)
        if not claim.won:
            raise ProtocolError(
                protocol.NAME_TAKEN,
                sentence(
                    _(
                        "Somebody in this room is already called %(name)s, or by a name that"
                        " looks the same; please choose another name."
                    ),
                    name=name,
                ),
                client_id,
            )
        if message is not None:
            try:
                self.check_can_say(message, config, client_id=client_id)
            except ProtocolError:
                await self.withdraw(name, claim)
                raise
        self.name = name
        self.listed = claim.serial
        self.counts.joined(self.room)
        # In the group before reading the room's position: every message
        # after it is then either in the replay or queued for this member,
        # or both, and `seen` drops the second copy.
        await self.channel_layer.group_add(self.group, self.channel_name)
        if token is not None and config.recovery_messages > 0:
            history = await self.channel_layer.group_history(
                self.group,
                after=max(offset or 0, token.first),
                keep=config.recovery_messages,
                seconds=config.recovery_seconds,
            )
            recovered = history.epoch == token.epoch and history.texts is not None
        else:
            history = await self.channel_layer.group_position(self.group)
            recovered = False
        self.seen, self.epoch = history.top, history.epoch
        if resume is not None:
            self.counts.recovery(recovered=recovered)
        if claim.replaced is not None:
            # The same member, back: the room heard no leave, so it hears no join.
            await self.channel_layer.send(claim.replaced, {"type": events.REPLACED})
        else:
            # Numbered: whoever claims a name after this member has it in its
            # members list already and drops the join, however late it comes.
            await self.announce(event="join", name=name, outcome=claim)
        # A recovered rejoin keeps the first join's offset: never anything from before it.
        first = token.first if token is not None and recovered else history.top
        resume_token = ResumeToken(
            room=self.room, epoch=history.epoch, member=self.channel_name, first=first
        )
        await self.send_json(
            protocol.joined_frame(
                room=self.room,
                name=name,
                members_json=claim.members_json,
                epoch=history.epoch,
                offset=history.top,
                resume=resume_token.sign(),
                recovered=None if resume is None else recovered,
            )
        )
        if recovered:
            assert history.texts is not None
            for text in history.texts:
                await self.send_text(text)

    async def say(self, frame: MessageFrame, config: ChatConfig) -> None:
        """Relay a chat message to the other members, joining first if need be."""
        if self.name is None:
            if frame.name is None:
                raise ProtocolError(
                    protocol.NOT_JOINED,
                    _("Join first: send your name with your first message."),
                    frame.client_id,
                )
            await self.join(frame.name, config, client_id=frame.client_id, message=frame.message)
            if self.name is None:
                return  # a ban closed the connection at its join
        else:
            if frame.name is not None and frame.name.strip() != self.name:
                raise ProtocolError(
                    protocol.NAME_MISMATCH,
                    sentence(
                        _("You joined as %(name)s; you cannot send as somebody else."),
                        name=self.name,
                    ),
                    frame.client_id,
                )
            self.check_can_say(frame.message, config, client_id=frame.client_id)
        message_id, ts = new_message_id(), now_ms()
        message = protocol.message_frame(
            room=self.room, name=self.name, message=frame.message, id=message_id, ts=ts
        )
        # Acknowledged when the room's copy comes back numbered (chat_broadcast).
        ack = (
            None
            if frame.client_id is None
            else {"client_id": frame.client_id, "id": message_id, "ts": ts}
        )
        await self.channel_layer.group_send_numbered(
            self.group,
            events.message_event(message, sender=self.channel_name, ack=ack),
            keep=config.recovery_messages,
            seconds=config.recovery_seconds,
        )
        self.counts.message()

    async def withdraw(self, name: str, claim: Claim) -> None:
        """Give back a name claimed for a join that is not going ahead.

        Nobody heard of the join, unless the registry noted it for the
        room's next diff, which may have gone out already: then the room
        hears of the leave as of any other.
        """
        released = await self.presence.release(room=self.room, name=name, member=self.channel_name)
        if claim.noted and released is not None:
            await self.announce(event="leave", name=name, outcome=released)

    def check_can_say(self, message: str, config: ChatConfig, *, client_id: str | None) -> None:
        """Check a chat message's text, the room's slow mode, then take a rate-limit token."""
        protocol.check_message(message, max_length=config.max_message_length, client_id=client_id)
        now = time.monotonic()
        slow = config.room(self.room).slow_mode_seconds
        wait = slow_mode_wait(last=self.last_message, now=now, seconds=slow)
        if wait > 0:
            raise protocol.slow_mode(wait_seconds=math.ceil(wait), client_id=client_id)
        assert self.bucket is not None
        self.bucket.configure(rate=config.rate_limit_per_second, burst=config.rate_limit_burst)
        if not self.bucket.allow():
            raise ProtocolError(
                protocol.RATE_LIMITED,
                _("You are sending messages too fast; wait a moment and try again."),
                client_id,
            )
        self.last_message = now

    async def typing(self, frame: TypingFrame, config: ChatConfig) -> None:
        """Tell the others this member is typing, at most once per interval."""
        if self.name is None:
            raise ProtocolError(
                protocol.NOT_JOINED,
                _("Join the room before sending typing events."),
                frame.client_id,
            )
        now = time.monotonic()
        if now - self.last_typing < config.typing_interval_seconds:
            return
        self.last_typing = now
        await self.broadcast(protocol.typing_frame(name=self.name))

    async def refuse(self, error: ProtocolError) -> None:
        """Answer a bad frame in the connection's language; too many in a row close it."""
        if self.language is None:
            self.language = scope_language(self.scope.get("headers", ()))
        with translation.override(self.language):
            frame = protocol.error_frame(error)
        await self.send_json(frame)
        self.counts.error(error.code)
        if error.code != protocol.RATE_LIMITED and self.errors.record():
            logger.info(
                "closing %s in room %s: too many bad frames",
                self.channel_name,
                self.room,
                extra={"room": self.room, "channel": self.channel_name},
            )
            await self.close_with(protocol.CLOSE_TOO_MANY_ERRORS)

    async def leave(self) -> None:
        """Leave the room once: free the name, drop the group, tell the others."""
        name, self.name = self.name, None
        if name is None:
            return
        self.counts.left(self.room)
        try:
            released = await self.presence.release(
                room=self.room, name=name, member=self.channel_name
            )
            await self.channel_layer.group_discard(self.group, self.channel_name)
            if released is not None:
                await self.announce(event="leave", name=name, outcome=released)
        except REDIS_ERRORS as error:
            # The entry is no longer refreshed, so it expires and another
            # process's sweep announces this leave once Redis is back.
            # No name in the log: names are the people's, the log is the operator's.
            logger.warning(
                "member %s left room %s while Redis was unavailable: %s",
                self.channel_name,
                self.room,
                error,
                extra={"room": self.room, "channel": self.channel_name},
            )

    async def announce(self, *, event: str, name: str, outcome: Claim | Release) -> None:
        """Tell the others of this member's join or leave, as the registry answered it."""
        await announce(
            feed=self.presence.feed,
            layer=self.channel_layer,
            room=self.room,
            event=event,
            name=name,
            outcome=outcome,
            sender=self.channel_name,
        )

    async def broadcast(self, frame: dict[str, Any]) -> None:
        """Send a frame to every other member of the room, encoded once for all."""
        await events.publish(self.channel_layer, self.group, frame, sender=self.channel_name)

    async def chat_broadcast(self, event: dict[str, Any]) -> None:
        """A frame from the room: pass it on unless this connection sent it.

        A chat message comes numbered (`offset`): one this member was given
        in a replay, or that is from before its join, is not given again,
        unless it is of a new run of the room's offsets (the Redis layer
        gives each message its run's `epoch`); its own comes back to be
        acknowledged. A join or leave comes with the registry's `serial`:
        one already in this member's `joined` list is not told again.
        """
        offset = event.get("offset")
        if offset is not None:
            if offset <= self.seen:
                epoch = event.get("epoch", self.epoch)
                if epoch == self.epoch:
                    return
                # The room's window was lost while this member stayed (Redis
                # forgot it): a new run of offsets, from 1 again.
                self.epoch = epoch
            self.seen = offset
        elif event.get("serial", math.inf) <= self.listed:
            return
        if event["sender"] != self.channel_name:
            await self.send_text(event["text"])
        elif offset is not None and event["ack"] is not None:
            await self.send_json(protocol.ack_frame(**event["ack"], offset=offset))

    def relay_now(self, event: dict[str, Any]) -> bool:
        """`chat_broadcast`, done inside the room's send while this consumer is between events.

        The layer offers a group event here only while this connection's
        reader waits with nothing queued (ChannelReader.relay_idle); the
        server's "chat.frames" write (chat.uvicorn_frames) takes the room's
        one encoded frame for the socket, which spares every member a task
        wake-up and an ASGI send per message. True if the event is dealt
        with (sent, or not this member's to get); False, and it is queued
        and handled as usual: during a handler (a frame of its own may be
        on its way), for its own message (acknowledged), for any other event,
        or when the socket does not take the frame now.
        """
        if self.turn.busy or self.closing or event.get("type") != events.BROADCAST:
            return False
        offset = event.get("offset")
        if offset is not None:
            if offset <= self.seen:
                # Had already, unless a new run of offsets began (chat_broadcast).
                return event.get("epoch", self.epoch) == self.epoch
        elif event.get("serial", math.inf) <= self.listed:
            return True
        if event["sender"] == self.channel_name:
            return False
        if not self.write_frame(frames.text_frame(event["text"])):
            return False
        if offset is not None:
            self.seen = offset
        self.counts.delivered += 1
        return True

    async def send_text(self, text: str) -> None:
        """Send a frame that is JSON text already, unless this connection is closing.

        Straight to the server: this runs once per member for every message
        of the room.
        """
        if not self.closing:
            try:
                await self.base_send({"type": "websocket.send", "text": text})
            except send_errors():
                return  # the socket is gone; its disconnect event comes next (chat.transport)
            # A plain int, not a locked prometheus_client counter (chat.metrics).
            self.counts.delivered += 1

    async def chat_replaced(self, event: dict[str, Any]) -> None:
        """A rejoin of this member took its name over: close with 4409, announcing nothing.

        The name is the new connection's already, so leaving releases nothing.
        """
        await self.close_with(protocol.CLOSE_REPLACED)

    def fell_behind(self) -> None:
        """The layer's alarm: this connection's queue of room events just overflowed.

        Its client reads too slowly, or not at all. Under uvicorn the
        consumer may be stuck in a send until the client reads again, so it
        would not even get to its `layer.overflow` event: the member leaves
        the room now, in a task of its own, so the others hear the leave and
        the name is free, and from now on nothing is sent but the close
        (4029), which follows the frame the socket is stuck on.
        """
        if self.closing:
            return
        self.log_fell_behind()
        self.counts.closed(protocol.CLOSE_FELL_BEHIND, by_server=True)
        self.closing = True
        self.falling = asyncio.ensure_future(self.leave())

    async def layer_overflow(self, event: dict[str, Any]) -> None:
        """This connection fell so far behind that it missed room events.

        Saying nothing would break the promise that every member gets every
        message once; closing makes the page reconnect and tell its reader.
        With the overflow alarm (`fell_behind`) it has left the room already.
        """
        if not self.closing:
            self.log_fell_behind()
        await self.close_with(protocol.CLOSE_FELL_BEHIND)

    def log_fell_behind(self) -> None:
        logger.warning(
            "closing %s in room %s: it fell behind",
            self.channel_name,
            self.room,
            extra={"room": self.room, "channel": self.channel_name},
        )

    async def layer_unavailable(self, event: dict[str, Any]) -> None:
        """The channel layer lost Redis and room events may have been missed.

        As when a Redis call fails here: close with a code the page retries;
        it rejoins once Redis is back.
        """
        logger.warning(
            "closing %s: the channel layer lost Redis",
            self.channel_name,
            extra={"room": self.room, "channel": self.channel_name},
        )
        await self.close_with(protocol.CLOSE_UNAVAILABLE)

    async def chat_moderate(self, event: dict[str, Any]) -> None:
        """A reload brought a ban, a closed room or kicks: close if one reaches this connection."""
        if self.closing:
            return
        kicks = [KickOrder.from_event(kick) for kick in event["kicks"]]
        reached = verdict(
            await get_config(),
            room=self.room,
            name=self.name,
            address=self.address,
            member=self.channel_name,
            kicks=kicks,
        )
        if reached is not None:
            await self.moderated(reached)

    async def moderated(self, decision: Verdict) -> None:
        """Close as moderation decided: the one place where each action is applied.

        chat_moderation_total{action} counts `decision.action` here, once per
        connection closed by it; a room that does not exist is no moderator's doing.
        """
        if decision.action != NO_ROOM:
            self.counts.moderation(decision.action)
        logger.info(
            "closing %s in room %s with %d (%s)",
            self.channel_name,
            self.room,
            decision.code,
            decision.action,
            extra={"room": self.room, "channel": self.channel_name},
        )
        await self.close_with(decision.code, reason=decision.reason)
        if decision.kick_id is not None:
            await moderation.kick_done(kick_id=decision.kick_id)

    async def chat_drain(self, event: dict[str, Any]) -> None:
        """This process is stopping (chat.drain): free the name now, then close with 1012."""
        await self.leave()
        if not self.closing:
            await self.close_with(protocol.CLOSE_SERVICE_RESTART)

    async def chat_evicted(self, event: dict[str, Any]) -> None:
        """Presence expired this member while connected: close; the page rejoins."""
        await self.close_with(protocol.CLOSE_UNAVAILABLE)

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        """Send one frame to this connection, unless it is closing or its socket is gone."""
        if not self.closing:
            try:
                await super().send_json(content, close=close)
            except send_errors():
                return  # its disconnect event comes next (chat.transport)
            self.counts.delivered += 1

    async def close_with(self, code: int, *, reason: str = "") -> None:
        """Close with an application code; later frames and events are ignored.

        `reason`: at most 123 bytes of UTF-8 (chat.sanctions.close_reason).
        """
        if not self.closing:
            self.counts.closed(code, by_server=True)
        self.closing = True
        if not self.close_sent:
            self.close_sent = True
            await self.close(code=code, reason=reason or None)

    @classmethod
    async def encode_json(cls, content: dict[str, Any]) -> str:
        return protocol.encode(content)
