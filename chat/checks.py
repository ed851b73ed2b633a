"""System checks for a deployment of the chat."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

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


@register(Tags.compatibility, deploy=False)
def check_channel_layer(app_configs=None, **kwargs) -> list:
    """Production needs a layer that every process shares."""
    backend = _layer_config().get("BACKEND", "")
    if not settings.DEBUG and backend in IN_PROCESS_LAYERS:
        return [
            Error(
                "The channel layer is in-process while DEBUG is off.",
                hint="Set REDIS_URL so that every server process shares rooms, names and presence.",
                id="chat.E001",
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
