"""What the chat page's script is told: its sentences and the server's facts, in one object.

The view puts `page_config(...)` into the page with `json_script`; the script
has no sentence and no server fact of its own. Sentences are `gettext` calls
made while the request's language is active, so they come out of the same
message files as the rest of the page; facts come from the modules that own
them (close codes from `protocol`, limits from the live settings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from django.utils.translation import get_language, gettext, ngettext, to_locale

from . import protocol
from .conf import ChatConfig
from .rooms import socket_path

# What the page does after the server closes its socket with a code:
# "backoff"  reconnect with exponential backoff and jitter, then rejoin;
# "soon"     reconnect after a random delay of at most a second (a restart:
#            every member of a process reconnects at once, spread over it);
# "by_hand"  stay closed until the person asks (kicked, banned, replaced:
#            reconnecting by itself would undo what just happened);
# "never"    stay closed for good (the room is closed or does not exist).
Then = Literal["backoff", "soon", "by_hand", "never"]

# One number in each CLDR plural category of a language: the page picks the
# category with Intl.PluralRules and gets the form ngettext gives for that
# number. English and Portuguese have only "one" and "other" (pt-BR puts 0 in
# "one", as its gettext plural rule does); a language with more categories
# adds its own samples here (Russian: "one" 1, "few" 2, "many" 5).
PLURAL_SAMPLES: dict[str, dict[str, int]] = {}
DEFAULT_PLURAL_SAMPLES = {"one": 1, "other": 2}


def bcp47(language: str) -> str:
    """Django's language code as HTML and Intl spell it: pt-br -> pt-BR."""
    return to_locale(language).replace("_", "-")


def _plural(forms: Callable[[int], str]) -> dict[str, str]:
    """A sentence's form for each plural category; `forms(n)` is an ngettext call."""
    samples = PLURAL_SAMPLES.get(get_language(), DEFAULT_PLURAL_SAMPLES)
    return {category: forms(number) for category, number in samples.items()}


def _closes() -> dict[int, dict[str, str]]:
    too_big = gettext("That message was too large to send.")

    def close(text: str, then: Then, **more: str) -> dict[str, str]:
        return {"text": text, "then": then, **more}

    return {
        protocol.CLOSE_MESSAGE_TOO_BIG: close(too_big, "backoff"),
        protocol.CLOSE_TOO_BIG: close(too_big, "backoff"),
        protocol.CLOSE_SERVICE_RESTART: close(
            gettext("The server is restarting; reconnecting now."), "soon"
        ),
        protocol.CLOSE_TOO_MANY_ERRORS: close(
            gettext("Too many invalid messages were sent."), "backoff"
        ),
        protocol.CLOSE_FELL_BEHIND: close(
            gettext("The connection fell behind and some messages were missed."), "backoff"
        ),
        protocol.CLOSE_KICKED: close(gettext("A moderator removed you from this room."), "by_hand"),
        protocol.CLOSE_ROOM_CLOSED: close(gettext("This room is closed."), "never"),
        protocol.CLOSE_NO_SUCH_ROOM: close(gettext("There is no such room."), "never"),
        protocol.CLOSE_REPLACED: close(
            gettext(
                "Your newer connection, in another tab or on another device, "
                "took over your name; this page let it go."
            ),
            "by_hand",
        ),
        # The close frame's reason is the ban's, shown as text when there is one.
        protocol.CLOSE_BANNED: close(
            gettext("You are banned from this room."),
            "by_hand",
            withReason=gettext("You are banned from this room: %(reason)s"),
        ),
        protocol.CLOSE_UNAVAILABLE: close(
            gettext("The server cannot reach the chat service right now; reconnecting."),
            "backoff",
        ),
    }


def _text() -> dict[str, str]:
    return {
        "connecting": gettext("Connecting…"),
        "reconnecting": gettext("Reconnecting…"),
        "connected": gettext("Connected"),
        "retrying": gettext("Disconnected, retrying in %(seconds)s s"),
        "reconnect": gettext("Reconnect"),
        "joinedAs": gettext("You joined as %(name)s."),
        "recoveryFailed": gettext("Messages may have been missed while you were away."),
        "pickName": gettext("Pick a name to join."),
        "rejoiningAs": gettext("Rejoining as %(name)s when connected."),
        "chooseName": gettext("Please choose a name."),
        "chooseNameFirst": gettext("Please choose a name first."),
        "notConnectedJoin": gettext(
            "Not connected yet; you will join when the connection is back."
        ),
        # The person's own message: typed while away (or sent on a socket that
        # closed before the server confirmed it), or not confirmed in time.
        "waiting": gettext("Waiting to be sent…"),
        "notConfirmed": gettext("Not confirmed by the server; it may not have been delivered."),
        "sendAgain": gettext("Send again"),
        "typingOne": gettext("%(name)s is typing…"),
        "typingTwo": gettext("%(first)s and %(second)s are typing…"),
        "typingMany": gettext("Several people are typing…"),
        "joinedOne": gettext("%(first)s joined."),
        "joinedTwo": gettext("%(first)s and %(second)s joined."),
        "joinedThree": gettext("%(first)s, %(second)s and %(third)s joined."),
        "leftOne": gettext("%(first)s left."),
        "leftTwo": gettext("%(first)s and %(second)s left."),
        "leftThree": gettext("%(first)s, %(second)s and %(third)s left."),
        # The phone's one-line member strip: how many names it cannot show.
        "showMore": gettext("%(count)s more"),
        "showFewer": gettext("Show fewer"),
    }


def _plurals() -> dict[str, dict[str, str]]:
    # Lambdas, not pairs of strings: makemessages finds ngettext calls only.
    return {
        "newMessages": _plural(
            lambda n: ngettext("%(count)s new message", "%(count)s new messages", n)
        ),
        "joinedMany": _plural(
            lambda n: ngettext(
                "%(first)s, %(second)s and %(count)s other joined.",
                "%(first)s, %(second)s and %(count)s others joined.",
                n,
            )
        ),
        "leftMany": _plural(
            lambda n: ngettext(
                "%(first)s, %(second)s and %(count)s other left.",
                "%(first)s, %(second)s and %(count)s others left.",
                n,
            )
        ),
    }


def page_config(*, room: str, config: ChatConfig) -> dict[str, Any]:
    """The page script's configuration, in the active language (JSON-ready)."""
    return {
        "room": room,
        "socketPath": socket_path(room),
        "language": bcp47(get_language()),
        "maxNameLength": config.max_name_length,
        "maxMessageLength": config.max_message_length,
        "typingIntervalMs": round(config.typing_interval_seconds * 1000),
        # Errors after which the page is not joined and the name is not retried.
        "nameErrors": [protocol.NAME_INVALID, protocol.NAME_TAKEN, protocol.ROOM_FULL],
        "closes": {str(code): close for code, close in _closes().items()},
        "text": _text(),
        "plurals": _plurals(),
    }
