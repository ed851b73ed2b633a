"""`manage.py chat_settings`: print the chat settings as JSON, or change them."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.forms.models import model_to_dict

from chat.forms import SETTINGS_FIELDS, ChatSettingsForm
from chat.models import ChatSettings

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class Command(BaseCommand):
    help = (
        "Print the chat settings as JSON; with --set key=value (repeatable), change them "
        "with the admin form's validation first. All changes apply together or not at all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"A setting to change; keys: {', '.join(SETTINGS_FIELDS)}.",
        )

    def handle(self, *args, **options) -> None:
        changes = dict(parse_assignment(item) for item in options["set"])
        with transaction.atomic():
            settings = (
                ChatSettings.objects.select_for_update()
                .filter(pk=ChatSettings.SINGLETON_PK)
                .first()
            )
            settings = settings or ChatSettings.load()
            if changes:
                settings = apply_changes(settings, changes)
        self.stdout.write(json.dumps(model_to_dict(settings, fields=SETTINGS_FIELDS), indent=2))


def parse_assignment(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CommandError(f"--set takes key=value, not {item!r}.")
    if key not in SETTINGS_FIELDS:
        raise CommandError(
            f"{key}: unknown setting; the settings are {', '.join(SETTINGS_FIELDS)}."
        )
    return key, value


def apply_changes(settings: ChatSettings, changes: dict[str, str]) -> ChatSettings:
    """Validate the changes as the admin form does, then save; nothing on error."""
    data = model_to_dict(settings, fields=SETTINGS_FIELDS)
    for key, value in changes.items():
        data[key] = parse_flag(key, value) if key == "allow_adhoc_rooms" else value
    form = ChatSettingsForm(data=data, instance=settings)
    if not form.is_valid():
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in form.errors.items()
        )
        raise CommandError(f"Nothing changed. {problems}")
    return form.save()


def parse_flag(key: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CommandError(f"Nothing changed. {key}: use 1 or 0 (true or false), not {value!r}.")
