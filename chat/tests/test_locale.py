"""The message files: every sentence of the source translated, none fuzzy, the .mo current.

`makemessages` runs on a copy of the project, so the test sees what a
developer would get after adding a sentence, without touching the tree.
Needs GNU gettext (`make test` installs it), as Django's own commands do.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chat.testing.servers import PROJECT_DIR

LANGUAGES = ["pt_BR"]
# What makemessages reads: the app, the project and the page.
SOURCES = ["manage.py", "chat", "chatsite", "templates", "locale"]
# A line that starts a field of an entry: its keyword and its first string.
KEYWORD_RE = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")$")
# How the committed files are made (the Makefile's `messages` target too).
MAKEMESSAGES = ["makemessages", "--add-location=file", "--no-obsolete", "--ignore=chat/tests"]


@dataclass
class Entry:
    msgid: str
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False
    context: str | None = None


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (enough of the format for what makemessages writes)."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        entry = Entry(msgid="")
        current: str | None = None
        values: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith("#~"):
                entry.obsolete = True
                continue
            if line.startswith("#,"):
                entry.flags.update(flag.strip() for flag in line[2:].split(","))
                continue
            if line.startswith("#"):
                continue
            keyword = KEYWORD_RE.match(line)
            if keyword:
                current = keyword[1]
                values[current] = ast.literal_eval(keyword[2])
            elif line.startswith('"') and current:
                values[current] += ast.literal_eval(line)
        entry.msgid = values.get("msgid", "")
        entry.msgid_plural = values.get("msgid_plural")
        entry.context = values.get("msgctxt")
        entry.msgstr = [value for key, value in sorted(values.items()) if key.startswith("msgstr")]
        entries.append(entry)
    return entries


def problems(entries: list[Entry]) -> list[str]:
    """Entries a reader of the language would trip over: untranslated, fuzzy or obsolete."""
    found = []
    for entry in entries:
        if entry.obsolete:
            found.append(f"obsolete: {entry.msgid!r}")
        elif "fuzzy" in entry.flags:
            found.append(f"fuzzy: {entry.msgid!r}")
        elif not entry.msgstr or not all(entry.msgstr):
            found.append(f"untranslated: {entry.msgid!r}")
    return found


def po_path(root: Path, language: str) -> Path:
    return root / "locale" / language / "LC_MESSAGES" / "django.po"


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: install GNU gettext (make test does, with apt).")


@pytest.fixture(scope="module")
def fresh_tree(tmp_path_factory) -> Path:
    """A copy of the project whose message files makemessages has just updated."""
    require("xgettext")
    require("msgmerge")
    root = tmp_path_factory.mktemp("project")
    for name in SOURCES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    for language in LANGUAGES:
        subprocess.run(
            [sys.executable, "manage.py", *MAKEMESSAGES, "-l", language],
            cwd=root,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return root


def test_read_po_finds_what_is_wrong(tmp_path):
    """The check itself can fail: each kind of problem is reported."""
    sample = tmp_path / "django.po"
    sample.write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Send"\nmsgstr "Enviar"\n\n'
        'msgid "New"\nmsgstr ""\n\n'
        '#, fuzzy, python-format\nmsgid "%(name)s left."\nmsgstr "%(name)s saiu."\n\n'
        'msgid "one"\nmsgid_plural "many"\nmsgstr[0] "um"\nmsgstr[1] ""\n\n'
        '#~ msgid "Old"\n#~ msgstr "Velho"\n',
        encoding="utf-8",
    )
    assert problems(read_po(sample)) == [
        "untranslated: 'New'",
        "fuzzy: '%(name)s left.'",
        "untranslated: 'one'",
        "obsolete: ''",
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sentence_of_the_source_is_translated(fresh_tree, language):
    assert problems(read_po(po_path(fresh_tree, language))) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_message_file_is_the_one_makemessages_makes(fresh_tree, language):
    """No sentence the source no longer has, none it has that the file lacks."""

    def catalogue(path: Path) -> dict[tuple[str | None, str], list[str]]:
        return {(entry.context, entry.msgid): entry.msgstr for entry in read_po(path)[1:]}

    assert catalogue(po_path(PROJECT_DIR, language)) == catalogue(po_path(fresh_tree, language))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_mo_is_compiled_from_the_po(tmp_path, language):
    """`make run` uses the committed .mo: it must say what the .po says."""
    require("msgfmt")
    po = po_path(PROJECT_DIR, language)
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", compiled, po], check=True, timeout=60)

    def messages(path: Path) -> dict:
        with path.open("rb") as mo:
            return gettext.GNUTranslations(mo)._catalog

    assert messages(po.with_suffix(".mo")) == messages(compiled)
