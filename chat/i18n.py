"""Languages: the one a WebSocket handshake asks for, and sentences translated when sent.

Django's LocaleMiddleware picks the page's language, but no middleware runs
for a WebSocket, so the consumer reads the handshake's Accept-Language here,
with the same parsing and the same fallbacks (`pt-PT` gets `pt-br`).

Error details are built where the error is found (`chat.protocol`), which
knows no connection and no language; `sentence` makes them lazy, and the
consumer renders them in its connection's language when it sends them. Only
an error pays for translation: the relay path never touches it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.utils.functional import Promise, lazy
from django.utils.translation import get_supported_language_variant, trans_real

# A string, or one that becomes a string in the active language (gettext_lazy).
Text = str | Promise


def _interpolate(message: Text, params: dict[str, object]) -> str:
    return str(message) % params if params else str(message)


_interpolate_lazy = lazy(_interpolate, str)


def sentence(message: Text, /, **params: object) -> Text:
    """`message % params`, translated and filled in only when made a string.

    `message` is `gettext_lazy("... %(name)s ...")`: translators see the
    placeholders by name and may move them; `%` on a lazy string would
    translate at once, in whatever language is active where the error is found.
    """
    return _interpolate_lazy(message, params)


def language_from_accept(header: str) -> str:
    """The supported language an Accept-Language value asks for, as Django chooses for a page.

    A malformed, huge or unmatched header gives LANGUAGE_CODE, never an error:
    Django's parser ignores what it cannot read and cuts what is too long.
    """
    for tag, _quality in trans_real.parse_accept_lang_header(header):
        if tag == "*":
            break
        if not trans_real.language_code_re.search(tag):
            continue
        try:
            return get_supported_language_variant(tag)
        except LookupError:
            continue
    return get_supported_language_variant(settings.LANGUAGE_CODE)


def scope_language(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The language of a handshake, from the ASGI scope's headers."""
    # Several Accept-Language lines mean the same as one joined with commas.
    values = [value for name, value in headers if name == b"accept-language"]
    return language_from_accept(b",".join(values).decode("latin-1"))
