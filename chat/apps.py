from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ChatAppConfig(AppConfig):
    """The chat app: its system checks are registered when Django is ready."""

    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)


class ChatAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with the chat's site (its live members page) as `admin.site`."""

    # Not the chat app's own config, which INSTALLED_APPS names as "chat".
    default = False
    default_site = "chat.admin_site.ChatAdminSite"
