"""`manage.py chat_settings`: print as JSON, change with the admin form's validation."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from chat.models import ChatSettings

pytestmark = pytest.mark.django_db


def run(*args: str) -> dict:
    out = io.StringIO()
    call_command("chat_settings", *args, stdout=out)
    return json.loads(out.getvalue())


def test_prints_every_setting_as_json():
    assert run() == {
        "max_name_length": 32,
        "max_message_length": 2000,
        "rate_limit_per_second": 5.0,
        "rate_limit_burst": 10,
        "typing_interval_seconds": 2.0,
        "recovery_messages": 100,
        "recovery_seconds": 120,
        "allow_adhoc_rooms": True,
        "banner": "",
    }


def test_sets_the_recovery_window_and_refuses_a_bad_one():
    printed = run("--set", "recovery_messages=0", "--set", "recovery_seconds=30")
    assert (printed["recovery_messages"], printed["recovery_seconds"]) == (0, 30)
    with pytest.raises(CommandError, match="recovery_seconds"):
        run("--set", "recovery_seconds=0")
    assert ChatSettings.load().recovery_seconds == 30


def test_set_several_values():
    printed = run(
        "--set", "rate_limit_per_second=0", "--set", "banner=Hi", "--set", "allow_adhoc_rooms=off"
    )
    assert printed["rate_limit_per_second"] == 0
    assert printed["banner"] == "Hi"
    assert printed["allow_adhoc_rooms"] is False
    settings = ChatSettings.load()
    assert (settings.rate_limit_per_second, settings.banner, settings.allow_adhoc_rooms) == (
        0,
        "Hi",
        False,
    )


def test_value_may_contain_equals_signs():
    assert run("--set", "banner=a=b")["banner"] == "a=b"


@pytest.mark.parametrize(
    ("assignment", "field"),
    [
        ("max_name_length=0", "max_name_length"),
        ("max_name_length=many", "max_name_length"),
        ("max_message_length=10001", "max_message_length"),
        ("rate_limit_per_second=-1", "rate_limit_per_second"),
        ("rate_limit_burst=0", "rate_limit_burst"),
        ("typing_interval_seconds=soon", "typing_interval_seconds"),
        ("allow_adhoc_rooms=maybe", "allow_adhoc_rooms"),
        ("banner=" + "x" * 501, "banner"),
        ("colour=blue", "colour"),
    ],
)
def test_bad_value_names_the_field_and_changes_nothing(assignment, field):
    before = run()
    with pytest.raises(CommandError) as raised:
        call_command("chat_settings", "--set", "banner=changed", "--set", assignment)
    assert field in str(raised.value)
    assert run() == before


@pytest.mark.parametrize("assignment", ["banner", "=x"])
def test_malformed_assignment(assignment):
    with pytest.raises(CommandError, match="key=value"):
        call_command("chat_settings", "--set", assignment)


@pytest.mark.server
def test_exit_status_and_stderr_from_the_shell(server_database):
    import subprocess
    import sys

    from chat.testing import servers

    env = servers.server_env(server_database)
    argv = [sys.executable, "manage.py", "chat_settings", "--set", "max_name_length=-3"]
    result = subprocess.run(
        argv, cwd=servers.PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "max_name_length" in result.stderr
    ok = subprocess.run(
        argv[:3], cwd=servers.PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["max_name_length"] == 32
