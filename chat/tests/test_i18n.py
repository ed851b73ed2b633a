"""Choosing a language from Accept-Language, and sentences translated when made text."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from chat import protocol
from chat.i18n import language_from_accept, scope_language, sentence


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("pt-BR", "pt-br"),
        ("pt", "pt-br"),
        ("pt-PT", "pt-br"),
        ("PT-pt", "pt-br"),
        ("fr-FR, pt-PT;q=0.8, en;q=0.5", "pt-br"),
        ("en-US,en;q=0.9,pt-BR;q=0.8", "en"),
        ("", "en"),
        ("fr", "en"),
        ("*", "en"),
        (";;;,,,q=1;pt", "en"),
        ("pt-" + "x" * 10_000, "en"),
        ("fr," * 5000 + "pt", "en"),
        ("\x00\xff", "en"),
    ],
)
def test_language_from_accept(header, language):
    assert language_from_accept(header) == language


def test_scope_language_reads_every_accept_language_header():
    headers = [(b"host", b"x"), (b"accept-language", b"fr"), (b"accept-language", b"pt-BR")]
    assert scope_language(headers) == "pt-br"
    assert scope_language([]) == "en"
    assert scope_language([(b"accept-language", b"\xc3\xa9t\xff")]) == "en"


def test_a_sentence_is_translated_when_it_becomes_text_not_when_it_is_made():
    with translation.override("pt-br"):
        made = sentence(_("Names can be at most %(max)s characters long."), max=5)
    with translation.override("en"):
        assert str(made) == "Names can be at most 5 characters long."
    with translation.override("pt-br"):
        assert str(made) == "Os nomes podem ter no máximo 5 caracteres."


def test_error_frames_carry_the_active_language_and_the_same_code():
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.check_message("x" * 11, max_length=10)
    frames = {}
    for language in ("en", "pt-br"):
        with translation.override(language):
            frames[language] = protocol.error_frame(raised.value)
    assert frames["en"]["code"] == frames["pt-br"]["code"] == "message_too_long"
    assert frames["en"]["detail"] == (
        "Messages can be at most 10 characters long; this one has 11."
    )
    assert frames["pt-br"]["detail"] == (
        "As mensagens podem ter no máximo 10 caracteres; esta tem 11."
    )


@pytest.mark.parametrize(
    ("seconds", "english", "portuguese"),
    [
        (1, "wait 1 second before", "espere 1 segundo antes"),
        (30, "wait 30 seconds before", "espere 30 segundos antes"),
    ],
)
def test_slow_mode_says_how_long_to_wait_in_both_languages(seconds, english, portuguese):
    error = protocol.slow_mode(wait_seconds=seconds, client_id="c1")
    with translation.override("en"):
        frame = protocol.error_frame(error)
    assert (frame["code"], frame["client_id"]) == ("rate_limited", "c1")
    assert english in frame["detail"]
    with translation.override("pt-br"):
        assert portuguese in protocol.error_frame(error)["detail"]


def test_room_full_in_both_languages():
    error = protocol.room_full()
    with translation.override("en"):
        assert protocol.error_frame(error) == {
            "type": "error",
            "code": "room_full",
            "detail": "This room is full; please try again later.",
        }
    with translation.override("pt-br"):
        assert protocol.error_frame(error)["detail"] == (
            "Esta sala está cheia; tente de novo mais tarde, por favor."
        )
