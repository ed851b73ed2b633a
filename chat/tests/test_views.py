"""The HTTP side: redirect, the page, 404s, the health probe."""

import pytest
from django.test import override_settings

from chat.models import ChatSettings

pytestmark = pytest.mark.django_db


def test_root_redirects_to_the_lobby(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/websocket/"


@pytest.mark.parametrize(
    ("path", "room"), [("/websocket/", "lobby"), ("/websocket/room-2_b/", "room-2_b")]
)
def test_page_is_served_for_valid_rooms(client, path, room):
    response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'"room": "{room}", "socketPath": "/websocket/ws_chat/{room}"' in body
    for element in ('id="name"', 'id="message"', 'id="send"', 'id="log"', 'aria-live="polite"'):
        assert element in body


def test_page_has_no_external_urls_and_derives_socket_url(client):
    body = client.get("/websocket/").content.decode()
    assert "http://" not in body and "https://" not in body and "//cdn" not in body
    assert "location.host" in body
    assert "localhost" not in body


@pytest.mark.parametrize(
    "path", ["/websocket/Lob by/", "/websocket/_x/", "/websocket/" + "a" * 49 + "/", "/nope"]
)
def test_bad_paths_are_404(client, path):
    assert client.get(path).status_code == 404


def test_banner_is_in_the_page_as_text(client):
    settings = ChatSettings.load()
    settings.banner = "<b>Welcome</b> & be kind"
    settings.save()
    body = client.get("/websocket/").content.decode()
    assert "&lt;b&gt;Welcome&lt;/b&gt; &amp; be kind" in body


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["channel_layer"] == "ok"


@pytest.mark.parametrize(
    ("backend", "config"),
    [
        ("chat.layers.redis.ChatRedisChannelLayer", lambda url: {"url": url}),
        ("channels_redis.core.RedisChannelLayer", lambda url: {"hosts": [url]}),
    ],
)
def test_healthz_503_when_the_layer_does_not_answer(client, backend, config):
    from chat.testing.servers import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    broken = {"default": {"BACKEND": backend, "CONFIG": config(url)}}
    with override_settings(CHANNEL_LAYERS=broken):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert "channel_layer" in response.json()
    assert response.json()["channel_layer"] != "ok"
