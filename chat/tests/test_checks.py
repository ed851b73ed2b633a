"""System checks for deployments."""

from django.core.checks import run_checks
from django.test import override_settings

from chat.checks import check_channel_layer, check_group_expiry

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6390/0"], "group_expiry": 172800},
    }
}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_in_process_layer_is_a_deploy_warning_whatever_debug():
    for debug in (False, True):
        with override_settings(DEBUG=debug, CHANNEL_LAYERS=IN_MEMORY):
            assert ids(check_channel_layer()) == ["chat.W002"]
    with override_settings(DEBUG=False, CHANNEL_LAYERS=REDIS):
        assert check_channel_layer() == []


def test_in_process_layer_warns_only_in_check_deploy():
    # One process without Redis is a deployment: commands that run the
    # ordinary checks (migrate, runserver) must not even warn about it.
    with override_settings(DEBUG=False, CHANNEL_LAYERS=IN_MEMORY):
        assert "chat.W002" not in ids(run_checks())
        assert "chat.W002" in ids(run_checks(include_deployment_checks=True))


def test_websocket_timeout_must_stay_below_group_expiry():
    with override_settings(CHANNEL_LAYERS=REDIS, DAPHNE_WEBSOCKET_TIMEOUT=86400):
        assert check_group_expiry() == []
    with override_settings(CHANNEL_LAYERS=REDIS, DAPHNE_WEBSOCKET_TIMEOUT=172800):
        assert ids(check_group_expiry()) == ["chat.W001"]
    with override_settings(CHANNEL_LAYERS=REDIS, DAPHNE_WEBSOCKET_TIMEOUT=-1):
        assert ids(check_group_expiry()) == ["chat.W001"]
    # channels' default group expiry is one day, like Daphne's default timeout.
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, DAPHNE_WEBSOCKET_TIMEOUT=86400):
        assert ids(check_group_expiry()) == ["chat.W001"]


def test_our_layers_keep_memberships_until_the_member_leaves():
    # Membership lives in the process and dies with it: nothing expires.
    for backend in (
        "chat.layers.memory.ChatChannelLayer",
        "chat.layers.redis.ChatRedisChannelLayer",
    ):
        layers = {"default": {"BACKEND": backend, "CONFIG": {"group_expiry": 60}}}
        with override_settings(CHANNEL_LAYERS=layers, DAPHNE_WEBSOCKET_TIMEOUT=172800):
            assert check_group_expiry() == [], backend


def test_project_settings_pass_the_checks():
    assert run_checks() == []
