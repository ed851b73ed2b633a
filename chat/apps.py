from django.apps import AppConfig


class ChatAppConfig(AppConfig):
    """The chat app: its system checks are registered when Django is ready."""

    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
