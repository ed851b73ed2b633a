"""The chat page in a real Chromium: how to launch it, and one person's page."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, Playwright, expect

from chat.testing.servers import PROJECT_DIR

# The distribution's Chromium (`make test` installs it): Playwright's own
# browser download is not reachable from every machine that runs the suite.
CHROMIUM = "/usr/bin/chromium"
# No sandbox because CI runs as root; the rest keep Chromium from reaching for
# update, sync and metrics servers that a closed test network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Generous: other test suites may share the machine's two cores, and a
# reconnect waits for a server process to start plus a backoff delay.
EXPECT_TIMEOUT_MS = 20_000

# Set to a folder (relative to the project) to save the README's screenshots.
SCREENSHOTS_ENV = "CHAT_SCREENSHOTS"


def launch(playwright: Playwright) -> Browser:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def exactly(text: str) -> re.Pattern[str]:
    """Match an element's whole text, not a part of it."""
    return re.compile("^" + re.escape(text) + "$")


def save_screenshot(page: Page, filename: str) -> None:
    """Save a screenshot for the README, only when asked to."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        page.screenshot(path=PROJECT_DIR / Path(folder) / filename)


@dataclass(frozen=True)
class Words:
    """What a person reads on the page in one language, written out here (not
    taken from the message files) so that a missing translation fails a test."""

    locale: str
    lang: str
    your_name: str
    message: str
    send: str
    joined_as: str
    time: re.Pattern[str]
    # An own message's state: typed while away, then not confirmed in time.
    waiting: str
    not_confirmed: str
    send_again: str


ENGLISH = Words(
    locale="en-US",
    lang="en",
    your_name="Your name",
    message="Message",
    send="Send",
    joined_as="You joined as {name}.",
    time=re.compile(r"^\d{2}:\d{2}\s(AM|PM)$"),
    waiting="Waiting to be sent…",
    not_confirmed="Not confirmed by the server; it may not have been delivered.",
    send_again="Send again",
)
PORTUGUESE = Words(
    locale="pt-BR",
    lang="pt-BR",
    your_name="Seu nome",
    message="Mensagem",
    send="Enviar",
    joined_as="Você entrou como {name}.",
    time=re.compile(r"^\d{2}:\d{2}$"),
    waiting="Aguardando envio…",
    not_confirmed="O servidor não confirmou; talvez não tenha sido entregue.",
    send_again="Enviar de novo",
)

# How many times a line of the log says `text` (a line said again shows a count).
SAID_JS = """([kind, text]) => [...document.querySelectorAll("#log li." + kind)]
  .filter((li) => li.querySelector(".text").textContent === text)
  .reduce((sum, li) => sum + Number(li.dataset.times || 1), 0)"""


class ChatPage:
    """One person's chat page, read the way a person (or a screen reader) finds things."""

    def __init__(self, page: Page, words: Words = ENGLISH) -> None:
        self.page = page
        self.words = words
        page.set_default_timeout(EXPECT_TIMEOUT_MS)
        self.name = page.get_by_label(words.your_name)
        self.message = page.get_by_label(words.message, exact=True)
        self.send_button = page.get_by_role("button", name=words.send)
        self.log = page.locator("#log")
        self.messages = self.log.locator("li.message")
        self.notices = self.log.locator("li.notice")
        self.errors = self.log.locator("li.error")
        self.warnings = self.log.locator("li.warning")
        self.members = page.locator("#members li")
        self.count = page.locator("#member-count")
        self.typing = page.locator("#typing")
        self.state = page.locator("#state")
        self.heading = page.locator("h1")
        self.new_messages = page.locator("#new-messages")
        self.reconnect = page.locator("#reconnect")

    def expect_connected(self) -> None:
        expect(self.state).to_have_attribute("data-state", "open")

    def join(self, name: str) -> None:
        """Type a name and press Enter, as a newcomer does."""
        self.name.fill(name)
        self.name.press("Enter")
        self.expect_joined(name)

    def said(self, text: str, kind: str = "notice") -> int:
        return self.page.evaluate(SAID_JS, [kind, text])

    def expect_said(self, text: str, times: int = 1, kind: str = "notice") -> None:
        """The log says `text` `times` times, in lines of its own or counted on one."""
        self.page.wait_for_function(f"(args) => ({SAID_JS})(args) === {times}", arg=[kind, text])

    def expect_joined(self, name: str, times: int = 1) -> None:
        self.expect_said(self.words.joined_as.format(name=name), times)

    def say(self, text: str) -> None:
        """Type a message and press Enter."""
        self.message.fill(text)
        self.message.press("Enter")

    def message_from(self, name: str, text: str) -> Locator:
        """The chat lines showing `text` from `name`."""
        return self.messages.filter(has=self.page.locator(".who", has_text=exactly(name))).filter(
            has=self.page.locator(".text", has_text=exactly(text))
        )

    def expect_message(self, name: str, text: str) -> None:
        """`text` from `name` is shown exactly once."""
        expect(self.message_from(name, text)).to_have_count(1)

    def expect_confirmed(self, text: str) -> None:
        """This page's own `text` is shown once, confirmed: not pending, not failed."""
        line = self.message_from(self.name.input_value(), text)
        expect(line).to_have_count(1)
        expect(line).not_to_have_class(re.compile(r"\b(pending|failed)\b"))
        expect(line.locator(".status")).to_have_count(0)

    def expect_waiting(self, text: str) -> None:
        """This page's own `text` is shown once, waiting to be sent."""
        line = self.message_from(self.name.input_value(), text)
        expect(line).to_have_count(1)
        expect(line).to_have_class(re.compile(r"\bpending\b"))
        expect(line.locator(".status > span")).to_have_text(self.words.waiting)

    def expect_error(self, fragment: str) -> None:
        expect(self.errors.filter(has_text=fragment)).to_have_count(1)
