"""A fresh install has its settings row and the room `lobby`."""

from django.db import migrations


def create_defaults(apps, schema_editor):
    ChatSettings = apps.get_model("chat", "ChatSettings")
    Room = apps.get_model("chat", "Room")
    ChatSettings.objects.get_or_create(pk=1)
    Room.objects.get_or_create(slug="lobby", defaults={"title": "Lobby", "is_open": True})


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
