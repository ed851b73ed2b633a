"""System checks for a deployment of the chat."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

IN_PROCESS_LAYERS = {
    "channels.layers.InMemoryChannelLayer",
    "chat.layers.memory.ChatChannelLayer",
}
# Layers whose group memberships last until the member leaves: in the
# process, dying with it (nothing in Redis to outlive it or to expire).
NON_EXPIRING_LAYERS = {
    "chat.layers.memory.ChatChannelLayer",
    "chat.layers.redis.ChatRedisChannelLayer",
}


def _layer_config() -> dict:
    return getattr(settings, "CHANNEL_LAYERS", {}).get("default", {})


@register(Tags.compatibility, deploy=True)
def check_channel_layer(app_configs=None, **kwargs) -> list:
    """An in-process layer serves one process: say so where deployments are reviewed.

    A warning of `check --deploy` only, never an error: one process without
    Redis is a deployment in its own right (a classroom, a small team), and
    an error would stop `migrate`, `runserver` and every other command.
    """
    if _layer_config().get("BACKEND", "") in IN_PROCESS_LAYERS:
        return [
            Warning(
                "The channel layer is in-process: this deployment cannot grow past one "
                "server process.",
                hint="Fine for one process. For several, set REDIS_URL so that they share "
                "rooms, names and presence.",
                id="chat.W002",
            )
        ]
    return []


@register(Tags.compatibility)
def check_group_expiry(app_configs=None, **kwargs) -> list:
    """A connection must not outlive its group membership, where memberships expire."""
    if _layer_config().get("BACKEND", "") in NON_EXPIRING_LAYERS:
        return []
    timeout = getattr(settings, "DAPHNE_WEBSOCKET_TIMEOUT", 86400)
    expiry = _layer_config().get("CONFIG", {}).get("group_expiry", 86400)
    if timeout < 0 or timeout >= expiry:
        return [
            Warning(
                f"Daphne's WebSocket timeout ({timeout} s) reaches the channel layer's "
                f"group expiry ({expiry} s): a long-lived connection would silently "
                "stop receiving its room.",
                hint="Keep DAPHNE_WEBSOCKET_TIMEOUT (and daphne --websocket_timeout) "
                "positive and below CHANNEL_LAYERS group_expiry.",
                id="chat.W001",
            )
        ]
    return []
