"""The settings form shared by the admin and `manage.py chat_settings`."""

from django import forms

from .models import ChatSettings

SETTINGS_FIELDS = [
    "max_name_length",
    "max_message_length",
    "rate_limit_per_second",
    "rate_limit_burst",
    "typing_interval_seconds",
    "recovery_messages",
    "recovery_seconds",
    "allow_adhoc_rooms",
    "banner",
]


class ChatSettingsForm(forms.ModelForm):
    class Meta:
        model = ChatSettings
        fields = SETTINGS_FIELDS
