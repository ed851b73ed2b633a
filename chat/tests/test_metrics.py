"""GET /metrics: who may read it, and what the chat's figures say after a session."""

from __future__ import annotations

import json
import re

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "s3cret-token"

pytestmark = pytest.mark.django_db


def families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_are_404_while_no_token_is_set(client):
    with override_settings(CHAT_METRICS_TOKEN=""):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer{TOKEN}",
        "Bearer s3cret-tokén",
        "Bearer \udcff",
        "Bearer " + "x" * 10_000,
    ],
)
def test_metrics_are_401_without_the_token(client, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"chat_" not in response.content


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}"])
def test_metrics_in_the_prometheus_text_format_with_the_token(client, authorization):
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = families(response.content.decode())
    for name in ["chat_connections", "chat_members", "chat_rooms", "process_cpu_seconds"]:
        assert name in found, name
    for name in ["chat_messages", "chat_deliveries", "chat_errors", "chat_closes"]:
        assert found[name].type == "counter", name
    assert found["chat_connections"].documentation.startswith("WebSocket connections open")
    # In-process layer: there is no Redis to be up or down.
    assert "chat_redis_up" not in found


def test_every_chat_metric_says_what_it_counts(client):
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    helps = [line for line in text.splitlines() if line.startswith("# HELP chat_")]
    assert len(helps) >= 9
    for line in helps:
        assert len(line.split(" ", 3)[3]) > 30, line


class _Redis:
    """Stands in for a Redis layer that watches its connection."""

    def up(self) -> bool:
        return True


def exposed_names(text: str) -> set[str]:
    """Every sample name a scrape of `text`'s families can hold (counters: _total)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_the_grafana_dashboard_is_importable_and_shows_metrics_that_exist(client):
    from chat import metrics
    from chat.tests.servers import PROJECT_DIR

    redis = _Redis()
    metrics.watch_redis(redis.up)
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    del redis
    assert "chat_redis_up 1.0" in text
    exposed = exposed_names(text)

    dashboard = json.loads((PROJECT_DIR / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    # Importable anywhere: the data source is chosen at import.
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    shown: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["gridPos"]["w"] > 0, panel
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        for target in panel["targets"]:
            names = set(re.findall(r"\b((?:chat|process)_[a-z_]+)\b", target["expr"]))
            assert names, target
            assert names <= exposed, (panel["title"], names - exposed)
            shown |= names
    wanted = {
        "chat_connections", "chat_members", "chat_messages_total", "chat_deliveries_total",
        "chat_errors_total", "chat_closes_total", "chat_redis_up",
    }  # fmt: skip
    assert wanted <= shown
