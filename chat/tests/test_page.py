"""The page as served: its language, its configuration object, its heading and count."""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync

from chat import protocol
from chat.models import ChatSettings, Room
from chat.presence import get_presence

pytestmark = pytest.mark.django_db


def page(client, path: str = "/websocket/", **headers) -> str:
    response = client.get(path, **headers)
    assert response.status_code == 200
    return response.content.decode()


def page_config(body: str) -> dict:
    found = re.search(r'<script id="chat-config" type="application/json">(.*?)</script>', body)
    assert found, "no configuration object in the page"
    return json.loads(found[1])


@pytest.mark.parametrize(
    ("accept", "lang", "send"),
    [
        ("pt-BR,pt;q=0.9", "pt-BR", "Enviar"),
        ("pt-PT", "pt-BR", "Enviar"),
        ("pt", "pt-BR", "Enviar"),
        ("en-GB", "en", "Send"),
        ("ja, de;q=0.5", "en", "Send"),
        ("q=;;,,\x7f", "en", "Send"),
        ("pt-" + "y" * 5000, "en", "Send"),
        (None, "en", "Send"),
    ],
)
def test_the_page_speaks_the_language_asked_for(client, accept, lang, send):
    headers = {} if accept is None else {"HTTP_ACCEPT_LANGUAGE": accept}
    response = client.get("/websocket/", **headers)
    assert response.status_code == 200
    assert "Accept-Language" in response["Vary"]
    body = response.content.decode()
    assert f'<html lang="{lang}">' in body
    assert f'<button id="send" type="submit">{send}</button>' in body
    assert page_config(body)["language"] == lang


def test_the_configuration_object_has_the_servers_facts(client):
    settings = ChatSettings.load()
    settings.max_name_length, settings.max_message_length = 20, 300
    settings.typing_interval_seconds = 1.5
    settings.save()
    config = page_config(page(client, "/websocket/games/"))
    assert config["room"] == "games"
    assert config["socketPath"] == "/websocket/ws_chat/games"
    assert (config["maxNameLength"], config["maxMessageLength"]) == (20, 300)
    assert config["typingIntervalMs"] == 1500
    assert config["nameErrors"] == [protocol.NAME_INVALID, protocol.NAME_TAKEN, "room_full"]
    closes = config["closes"]
    assert {code: close["then"] for code, close in closes.items()} == {
        "1009": "backoff",
        "1012": "soon",
        "4008": "backoff",
        "4009": "backoff",
        "4029": "backoff",
        "4401": "by_hand",
        "4403": "never",
        "4404": "never",
        "4409": "by_hand",
        "4451": "by_hand",
        "4503": "backoff",
    }
    assert closes["4451"]["withReason"] == "You are banned from this room: %(reason)s"


def test_every_sentence_of_the_script_is_translated(client):
    english = page_config(page(client, HTTP_ACCEPT_LANGUAGE="en"))
    portuguese = page_config(page(client, HTTP_ACCEPT_LANGUAGE="pt-BR"))
    assert english["text"].keys() == portuguese["text"].keys()
    for key, text in english["text"].items():
        assert portuguese["text"][key] != text or text.startswith("Chat"), key
    for code, close in english["closes"].items():
        assert portuguese["closes"][code]["text"] != close["text"], code
    assert portuguese["plurals"]["newMessages"] == {
        "one": "%(count)s mensagem nova",
        "other": "%(count)s mensagens novas",
    }
    assert english["plurals"]["joinedMany"]["other"] == (
        "%(first)s, %(second)s and %(count)s others joined."
    )


def test_the_script_writes_no_sentence_or_server_fact_of_its_own(client):
    body = page(client)
    script = body[body.index("<script>") :]
    for fact in ("4401", "4403", "4451", "1012", "ws_chat", "2000", "name_taken"):
        assert fact not in script, fact
    assert "innerHTML" not in body and "insertAdjacentHTML" not in body


def test_the_rooms_title_is_its_heading(client):
    Room.objects.create(slug="games", title="Games & <Fun>")
    body = page(client, "/websocket/games/")
    assert '<h1><span id="room-name">Games &amp; &lt;Fun&gt;</span></h1>' in body
    # A room without a title is named by its slug.
    assert '<span id="room-name">ad-hoc</span>' in page(client, "/websocket/ad-hoc/")


def test_before_joining_the_count_is_the_servers_at_render_never_a_live_zero(client):
    body = page(client, "/websocket/busy/")
    assert '<span id="member-count" hidden></span>' in body

    presence = get_presence()
    for number, name in enumerate(["Ann", "Bob", "Cid"]):
        async_to_sync(presence.claim)(room="busy", name=name, member=f"channel-{number}")
    try:
        assert '<span id="member-count">3</span>' in page(client, "/websocket/busy/")
        assert '<span id="member-count" hidden></span>' in page(client, "/websocket/quiet/")
    finally:
        for number, name in enumerate(["Ann", "Bob", "Cid"]):
            async_to_sync(presence.release)(room="busy", name=name, member=f"channel-{number}")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/websocket/Games/", "/websocket/games/"),
        ("/websocket/%20games%20/", "/websocket/games/"),
        ("/websocket/%09GAMES-2_b/", "/websocket/games-2_b/"),
        ("/websocket/Lobby/", "/websocket/lobby/"),
    ],
)
def test_a_room_typed_with_capitals_or_spaces_redirects_to_its_slug(client, path, location):
    response = client.get(path)
    assert response.status_code == 301
    assert response["Location"] == location


@pytest.mark.parametrize(
    "path",
    ["/websocket/Ga%20mes/", "/websocket/_Games/", "/websocket/%20/", "/websocket/Jogos!/",
     "/websocket/" + "A" * 49 + "/", "/websocket/games/extra/"],
)  # fmt: skip
def test_other_bad_slugs_stay_404(client, path):
    assert client.get(path).status_code == 404


def test_the_favicon_is_inline(client):
    body = page(client)
    icon = re.search(r'<link rel="icon" href="([^"]+)">', body)
    assert icon and icon[1].startswith("data:image/svg+xml;base64,")


def test_a_registry_that_does_not_answer_leaves_out_the_count_not_the_page(client, caplog):
    from django.test import override_settings

    from chat.testing.servers import free_port

    unreachable = {
        "BACKEND": "chat.presence.redis.RedisPresence",
        "OPTIONS": {"url": f"redis://127.0.0.1:{free_port()}/0", "upkeep": False},
    }
    with override_settings(CHAT_PRESENCE=unreachable):
        body = page(client, "/websocket/busy/")
    assert '<span id="member-count" hidden></span>' in body
    assert "served without a member count" in caplog.text
