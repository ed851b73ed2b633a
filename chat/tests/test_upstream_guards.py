"""Guards on the upstream internals the chat forks or leans on.

chat.dispatch forks Channels' consumer loop, chat.redis.pipeline and
chat.layers.redis drive redis-py connections below its public API,
chat.daphne_limits wraps autobahn's options as Daphne calls them,
chat.daphne_reasons passes the close reason Daphne drops,
chat.daphne_quiet and chat.daphne_writes lean on autobahn's and Twisted's
writing of a frame, chat.i18n
chooses a handshake's language as Django chooses a page's, and the drain on
SIGTERM hooks into Daphne's shutdown, Django's autoreloader and uvicorn's
signal handling. None of
that is a promise upstream keeps between releases, so each borrowed function
is pinned here by a SHA-256 of its source, recorded at the version in
requirements.txt. An upgrade that changes one fails here, naming what of
ours to re-check, instead of breaking the chat at run time.

After re-checking our code against the new source, record the new hash
that the failure prints.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


@dataclass(frozen=True)
class Borrowed:
    """An upstream function (or class) whose source our code depends on."""

    package: str  # the distribution, as pinned in requirements.txt
    target: str  # "module:Qualified.name"
    recheck: str  # what of ours to re-check when it changes
    sha256: str  # of its dedented source at the pinned version


# Both read replies under a deadline of their own, which cancels a read midway.
REPLY_READERS = (
    "chat.redis.pipeline.RedisPipeline._read and chat.layers.redis.ChatRedisChannelLayer._read"
)

BORROWED = (
    # chat.dispatch.LeanDispatchMixin.__call__ is a fork of it: the same
    # scope, channel_layer, channel_name and base_send, StopConsumer as a
    # clean end, with dispatch_from in place of await_many_dispatch.
    Borrowed(
        "channels",
        "channels.consumer:AsyncConsumer.__call__",
        "chat.dispatch.LeanDispatchMixin.__call__",
        "3ece9d59f86a0968b1a7f7905fef2009e73fdfd0bbd50d631af9cb93b8bf3db3",
    ),
    # chat.dispatch.dispatch_from keeps its contract: one dispatch at a time,
    # a source read again only once its event was dispatched, the first
    # exception ending every source.
    Borrowed(
        "channels",
        "channels.utils:await_many_dispatch",
        "chat.dispatch.dispatch_from",
        "30ef889498560da3d72e6a695d2c17cf4a22b4948f2af6d53394343f4aace51d",
    ),
    # chat.dispatch.LeanDispatchMixin.dispatch replaces it: the same handler
    # lookup and ValueError, without aclose_old_connections per event.
    Borrowed(
        "channels",
        "channels.consumer:AsyncConsumer.dispatch",
        "chat.dispatch.LeanDispatchMixin.dispatch",
        "fb797181cb7cf3404effd4dc775a8ab1e663b0bc38f2137aacc913a6b2d2e478",
    ),
    # chat.dispatch._handler_name caches it per event type, so it must stay a
    # pure function of message["type"].
    Borrowed(
        "channels",
        "channels.consumer:get_handler_name",
        "chat.dispatch._handler_name",
        "c88c7b7d8763fb61b5864b9ee6eb442f1e3f9d5b42b4f7651622d8c33d384193",
    ),
    # chat.consumers.ChatConsumer.websocket_disconnect replaces it: no
    # class-level `groups` to discard, no aclose_old_connections.
    Borrowed(
        "channels",
        "channels.generic.websocket:AsyncWebsocketConsumer.websocket_disconnect",
        "chat.consumers.ChatConsumer.websocket_disconnect",
        "d3475e86825666a83934f751026e5ab652b7a410e25ff972ce8f4d1dc97a663c",
    ),
    # What LeanDispatchMixin.dispatch and ChatConsumer.websocket_disconnect
    # skip: it must do nothing but close stale database connections.
    Borrowed(
        "channels",
        "channels.db:aclose_old_connections",
        "chat.dispatch.LeanDispatchMixin.dispatch and "
        "chat.consumers.ChatConsumer.websocket_disconnect",
        "9120822dad6c8e90011cafc1448976dafb0e37d810d925996cd7388bb18c0a3d",
    ),
    # Why skipping it is safe: database_sync_to_async (chat.conf's loader)
    # closes stale connections around every call itself.
    Borrowed(
        "channels",
        "channels.db:DatabaseSyncToAsync.thread_handler",
        "chat.dispatch.LeanDispatchMixin (its docstring's claim) and chat.conf's loader",
        "8b97cfbd730158326b249eb7c56c31959ebdadfffce88a1324c20c13c3b585f7",
    ),
    # chat.redis.pipeline.open_connection makes a connection as the pool
    # does, connection_class(**connection_kwargs), with its own socket_timeout.
    Borrowed(
        "redis",
        "redis.asyncio.connection:ConnectionPool.make_connection",
        "chat.redis.pipeline.open_connection",
        "0a1cc9a6e9028e7a6bb686a55fd820000a73c0a0fc92f29b8e179951defba1b2",
    ),
    # chat.redis.pipeline.open_connection reads the pool's connection_class
    # and connection_kwargs, set here.
    Borrowed(
        "redis",
        "redis.asyncio.connection:ConnectionPool.__init__",
        "chat.redis.pipeline.open_connection",
        "476bca35c08b0eadaf776c43835e44ff09385cd411ab42b3eb04adc07ff066be",
    ),
    # chat.redis.pipeline.open_connection: one call opens the socket and runs
    # the handshake, under our deadline, and cleans up when it fails.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.connect",
        "chat.redis.pipeline.open_connection",
        "bdb0a88e5a2e95d11a5122aede4c1e9304ef2998aaa133426b89a0f1e27f226f",
    ),
    # The body of connect(), for chat.redis.pipeline.open_connection likewise.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.connect_check_health",
        "chat.redis.pipeline.open_connection",
        "1a1a1b0ee03e4bf0a61150c2393daba007aadacd79dc8158f45eb3d253bf4120",
    ),
    # disconnect(nowait=True) closes without waiting for the peer:
    # chat.redis.pipeline.open_connection and RedisPipeline.reset,
    # chat.layers.redis.ChatRedisChannelLayer._serve.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.disconnect",
        "chat.redis.pipeline.open_connection, RedisPipeline.reset and "
        "chat.layers.redis.ChatRedisChannelLayer._serve",
        "36b6660a7f786fc3dc203dd87183447aa69a1757a75b9c61c58285d85fbcd4c2",
    ),
    # chat.redis.pipeline.RedisPipeline._write: check_health=False writes with
    # no PING first, and without a socket_timeout no task per write.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.send_packed_command",
        "chat.redis.pipeline.RedisPipeline._write",
        "1469991c115a6e75913b7de4a17ae904cb9c2781b77f6b30dd7b3b3fc4395ec4",
    ),
    # chat.redis.pipeline.RedisPipeline._write packs a batch into one write.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.pack_commands",
        "chat.redis.pipeline.RedisPipeline._write",
        "65c97d89f62484788d86e951a871b8cb77c40d7e14eda89703eb7844e980d277",
    ),
    # chat.layers.redis.ChatRedisChannelLayer._command: check_health=False
    # reaches send_packed_command, so no health-check PING reads a reply
    # meant for the subscriber.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.send_command",
        "chat.layers.redis.ChatRedisChannelLayer._command",
        "f6818bdcce985dc0d7fa719bedd10cc5da331232f101e395d380a38544a0207d",
    ),
    # chat.redis.pipeline.RedisPipeline._read and
    # chat.layers.redis.ChatRedisChannelLayer._read: with
    # disconnect_on_error=False a read that our deadline cancels leaves the
    # connection open; without a socket_timeout it sets no deadline of its own.
    Borrowed(
        "redis",
        "redis.asyncio.connection:AbstractConnection.read_response",
        REPLY_READERS,
        "a58387e21da6c01d3288c05003af26f2b688e2770da2f8b116db45db73a3f84c",
    ),
    # The parser of every connection when hiredis is installed. The same two
    # readers rely on a cancelled read losing nothing: what was received
    # stays in the hiredis reader for the next read.
    Borrowed(
        "redis",
        "redis._parsers.hiredis:_AsyncHiredisParser.read_response",
        REPLY_READERS,
        "1e36a321e6d7d2241788edc1bb6495e1f35313be75de3a64e97f462ca02ca45a",
    ),
    # The same: bytes go into the hiredis reader before the next await.
    Borrowed(
        "redis",
        "redis._parsers.hiredis:_AsyncHiredisParser.read_from_socket",
        REPLY_READERS,
        "7372bc57b77e7a03ea1bcefdf1c6bb8b625abc511381be7cab8dc697255ff551",
    ),
    # chat.daphne_limits.install replaces setProtocolOptions on this class:
    # it must inherit autobahn's, not define its own.
    Borrowed(
        "daphne",
        "daphne.ws_protocol:WebSocketFactory",
        "chat.daphne_limits.install",
        "782de066fb4f53ee23fe74e99f83606324b0abc4b21d54eecd43974304104a51",
    ),
    # chat.daphne_limits.install: Daphne builds the factory here, after the
    # application is loaded, and passes its size limits through
    # setProtocolOptions, where our wrapper caps them.
    Borrowed(
        "daphne",
        "daphne.server:Server.run",
        "chat.daphne_limits.install",
        "ab2afc417659bb1933c0265c6470a047fdd43809124f7d10b282c495ae761eb3",
    ),
    # chat.daphne_limits.install runs when `daphne` loads the ASGI
    # application, which must come before Server.run.
    Borrowed(
        "daphne",
        "daphne.cli:CommandLineInterface.run",
        "chat.daphne_limits.install",
        "5d9622a3fd4b24d81f8b739d4dbca8716ca520af84b257070a81c99186e4cd6c",
    ),
    # The same for `manage.py runserver`; chat's runserver also relies on it
    # giving Daphne the signals without the autoreloader, not with it.
    Borrowed(
        "daphne",
        "daphne.management.commands.runserver:Command.inner_run",
        "chat.daphne_limits.install and chat.management.commands.runserver",
        "d0f1aca1121ea7daed02e146268537c7c3265c14a30b75b0e8ac3deeabe33b11",
    ),
    # chat.daphne_limits.install wraps it: the option names
    # maxMessagePayloadSize, maxFramePayloadSize and failByDrop.
    Borrowed(
        "autobahn",
        "autobahn.websocket.protocol:WebSocketServerFactory.setProtocolOptions",
        "chat.daphne_limits.install",
        "10692636f6f89b194e3ff926ebb32b477ad802545c798f700ab3ba68788f35e3",
    ),
    # chat.daphne_quiet defers hltype, hlval and pformat in these two
    # modules: each of their calls there is a debug line's argument, but
    # Timings.__str__'s, which it wraps. Any change may add a call that uses
    # the text itself.
    Borrowed(
        "autobahn",
        "autobahn.websocket.protocol:",
        "chat.daphne_quiet and chat.daphne_writes",
        "3953efe83eb3225bad3dea5b0251ea9a163976a5f0259f49d29084a22385e8dc",
    ),
    Borrowed(
        "autobahn",
        "autobahn.twisted.websocket:",
        "chat.daphne_quiet",
        "be17f344b1ed478ba02028f1823799257aa1dc9bdd779afdc12123b43e2d309f",
    ),
    # chat.daphne_writes sends at once only when write() would have buffered
    # into an empty buffer: its conditions (connected, _writeDisconnected)
    # and its buffers (dataBuffer, _tempDataBuffer), which doWrite empties.
    Borrowed(
        "twisted",
        "twisted.internet.abstract:FileDescriptor.write",
        "chat.daphne_writes",
        "b3410de7a82777bb903c0760737f95905935b6316ed048c045d37953740d902e",
    ),
    Borrowed(
        "twisted",
        "twisted.internet.abstract:FileDescriptor.doWrite",
        "chat.daphne_writes",
        "33b469b3af894e6aa9f85ee62f4875d6f83ab78301c722801983106e8d3ffcf3",
    ),
    # ...and sends with it: the bytes the socket took, or CONNECTION_LOST.
    Borrowed(
        "twisted",
        "twisted.internet.tcp:Connection.writeSomeData",
        "chat.daphne_writes",
        "e3d4a1d1f7d66a152983f47fffbc5ca0f99f32064656f2bab29824e4a454933b",
    ),
    # chat.i18n.language_from_accept is its Accept-Language loop, for the
    # WebSocket handshake that no LocaleMiddleware sees: stop at "*", skip
    # what language_code_re refuses, get_supported_language_variant, else
    # LANGUAGE_CODE. The page and the details must choose alike.
    Borrowed(
        "django",
        "django.utils.translation.trans_real:get_language_from_request",
        "chat.i18n.language_from_accept",
        "fcb9512c1324c19b67f5ae0c877744774fc456d266646c779f4b293994277e51",
    ),
    # chat.i18n relies on it to cut a huge header and ignore a malformed one.
    Borrowed(
        "django",
        "django.utils.translation.trans_real:parse_accept_lang_header",
        "chat.i18n.language_from_accept",
        "f7cba459cc9f72d776c91a17586991b5be5d453f6c5da3ff64c3971c40a5acf3",
    ),
    # chat.daphne_reasons.install wraps it: a websocket.close of an open
    # connection goes to serverClose, which drops the reason; during the
    # handshake it is a refusal, which the wrapper leaves to it.
    Borrowed(
        "daphne",
        "daphne.ws_protocol:WebSocketProtocol.handle_reply",
        "chat.daphne_reasons.install",
        "f750e4ea30241e8f33a7eb4fc1c37e783c24ac212651c155ad8d5ca6aca87439",
    ),
    Borrowed(
        "daphne",
        "daphne.ws_protocol:WebSocketProtocol.serverClose",
        "chat.daphne_reasons.install (whether Daphne passes a reason by itself now)",
        "343e598cb17d97cd4c1fb8a780b9a413fb20c4f93b7e8fa51a303d74dd8999fb",
    ),
    # chat.daphne_reasons.install calls it with code and reason; it refuses a
    # reason over 123 bytes, which chat.sanctions.close_reason prevents.
    Borrowed(
        "autobahn",
        "autobahn.websocket.protocol:WebSocketProtocol.sendClose",
        "chat.daphne_reasons.install",
        "340f16c9bc644ce45120e266b0ac35dee938bcd3c7c6dd571a51a313c449033a",
    ),
    # The drain on SIGTERM (chat.drain).
    # chat.daphne_drain wraps it: the reactor's "before shutdown" trigger,
    # whose Deferred Twisted waits for, and self.connections holding each
    # connection's "application_instance" future.
    Borrowed(
        "daphne",
        "daphne.server:Server.kill_all_applications",
        "chat.daphne_drain.install",
        "3bbf34f79880bacadc4dde40eda8351aa409492f7abcdad5ac4a2ee11e381687",
    ),
    # chat.daphne_reasons sends 1012 through it: the close that sendClose
    # makes, without sendClose's check on the code.
    Borrowed(
        "autobahn",
        "autobahn.websocket.protocol:WebSocketProtocol.sendCloseFrame",
        "chat.daphne_reasons.install",
        "36a2daf270f8a7aac7ff9aec50a4e130a52ad08f1fe42c96dec047c50767be45",
    ),
    # chat's runserver replaces Command.run, which runs these two, with
    # chat.reloader: the same environment variable, child arguments and
    # status 3, and the child's start_django; only SIGTERM differs.
    Borrowed(
        "django",
        "django.core.management.commands.runserver:Command.run",
        "chat.management.commands.runserver.Command.run",
        "f8adfb0cd30430aecd008af18140b4e69affc6daa0965b6103e3663a87b6c1e1",
    ),
    Borrowed(
        "django",
        "django.utils.autoreload:run_with_reloader",
        "chat.reloader.Parent and chat.reloader.Child",
        "cd89ac52cc3469f19f2d1cb95e3bb0c7f7c168dcba9aa8ba1c06a2495583d9fc",
    ),
    Borrowed(
        "django",
        "django.utils.autoreload:restart_with_reloader",
        "chat.reloader.Parent.run",
        "cd2f3711999a1ff79129ac35e39e1de92312563e23280a918081cb19859b09b4",
    ),
    # chat.reloader.Child relies on it running the server in a thread of
    # its own while the main thread (which gets the signals) watches files.
    Borrowed(
        "django",
        "django.utils.autoreload:start_django",
        "chat.reloader.Child.run",
        "8e9a20df786322742a9fa6c1959fd8292c836d7a1aa7ae1b58d51072c642f85e",
    ),
    # chat.uvicorn_exit relies on both: `run` loads the application before
    # the server takes the signals over, and capture_signals gives a signal
    # it caught to the handler that was there before, after the shutdown.
    Borrowed(
        "uvicorn",
        "uvicorn.main:run",
        "chat.uvicorn_exit.install",
        "68c3e6c9039f072f935d14d75e679b2f46b666e08c069dc59c1090b22749a548",
    ),
    Borrowed(
        "uvicorn",
        "uvicorn.server:Server.capture_signals",
        "chat.uvicorn_exit.install",
        "85d29b580603d413f7786cf29e6a063b10d128df451981798979649fa66dded0",
    ),
)

# Not a source we hash, but the C reader that holds a cancelled read's bytes
# (see _AsyncHiredisParser above).
ALSO_PINNED = ("hiredis",)


def pins() -> dict[str, str]:
    """Distribution name -> version, from the `name==version` lines of requirements.txt."""
    found = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[canonical(match[1])] = match[2]
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(target: str) -> object:
    """The function or class a target names; a whole module if it names none ("module:")."""
    module_name, _, qualname = target.partition(":")
    found: object = importlib.import_module(module_name)
    for attribute in qualname.split(".") if qualname else ():
        found = getattr(found, attribute)
    return found


def source_sha256(obj: object) -> str:
    """SHA-256 of the dedented source: a method hashes the same wherever it is indented."""
    return hashlib.sha256(textwrap.dedent(inspect.getsource(obj)).encode()).hexdigest()


def changed(borrowed: Borrowed) -> str | None:
    """Why `borrowed` no longer is what our code was checked against; None if it is."""
    pinned = pins().get(canonical(borrowed.package))
    pin = f"pins {borrowed.package}=={pinned}" if pinned else f"does not pin {borrowed.package}"
    where = f"in {borrowed.package} {version(borrowed.package)} (requirements.txt {pin})"
    try:
        digest = source_sha256(resolve(borrowed.target))
    except (ImportError, AttributeError) as error:
        return (
            f"{borrowed.target} is gone {where}: {error}. "
            f"Re-check {borrowed.recheck}, which relies on it."
        )
    if digest == borrowed.sha256:
        return None
    return (
        f"{borrowed.target} {where} is not the source our code was checked against. "
        f"Re-check {borrowed.recheck} against it (the comment on its entry in "
        f"{Path(__file__).name} says what we rely on), then record its SHA-256: {digest}"
    )


@pytest.mark.parametrize("borrowed", BORROWED, ids=lambda borrowed: borrowed.target)
def test_borrowed_source_is_the_one_checked(borrowed):
    if (reason := changed(borrowed)) is not None:
        pytest.fail(reason, pytrace=False)


@pytest.mark.parametrize(
    "package", sorted({borrowed.package for borrowed in BORROWED} | set(ALSO_PINNED))
)
def test_installed_version_is_the_pinned_one(package):
    pinned = pins().get(canonical(package))
    assert pinned is not None, f"requirements.txt must pin {package}: chat code leans on it"
    assert version(package) == pinned, (
        f"{package} {version(package)} is installed, requirements.txt pins {pinned}: "
        "install the pins, or move the pin and re-check the guards in this file"
    )


def test_the_borrowed_objects_are_the_ones_in_use():
    """The hashed objects are what runs: the parser, and the factory's options method."""
    from autobahn.websocket.protocol import WebSocketServerFactory
    from daphne.ws_protocol import WebSocketFactory
    from redis._parsers.hiredis import _AsyncHiredisParser
    from redis.asyncio.connection import Connection, DefaultParser

    assert DefaultParser is _AsyncHiredisParser
    assert Connection.read_response is resolve(
        "redis.asyncio.connection:AbstractConnection.read_response"
    )
    # Daphne's factory, with chat.daphne_limits' wrapper (if installed) taken off.
    options = inspect.unwrap(WebSocketFactory.setProtocolOptions)
    assert options is WebSocketServerFactory.setProtocolOptions


def test_a_changed_source_fails_naming_the_pin_and_what_to_recheck():
    borrowed = BORROWED[0]
    wrong = Borrowed(borrowed.package, borrowed.target, borrowed.recheck, "0" * 64)
    reason = changed(wrong)
    assert reason is not None
    for part in (
        borrowed.target,
        f"{borrowed.package}=={pins()[canonical(borrowed.package)]}",
        borrowed.recheck,
        source_sha256(resolve(borrowed.target)),
    ):
        assert part in reason, (part, reason)
    gone = Borrowed(borrowed.package, borrowed.target + "_gone", borrowed.recheck, "")
    assert "is gone" in changed(gone)
