"""The chat page in a real Chromium: how to launch it, and one person's page."""

from __future__ import annotations

import os
import re
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


class ChatPage:
    """One person's chat page, read the way a person (or a screen reader) finds things."""

    def __init__(self, page: Page) -> None:
        self.page = page
        page.set_default_timeout(EXPECT_TIMEOUT_MS)
        self.name = page.get_by_label("Your name")
        self.message = page.get_by_label("Message", exact=True)
        self.send_button = page.get_by_role("button", name="Send")
        self.log = page.locator("#log")
        self.messages = self.log.locator("li.message")
        self.notices = self.log.locator("li.notice")
        self.errors = self.log.locator("li.error")
        self.members = page.locator("#members li")
        self.count = page.locator("#member-count")
        self.typing = page.locator("#typing")
        self.state = page.locator("#state")

    def expect_connected(self) -> None:
        expect(self.state).to_have_attribute("data-state", "open")

    def join(self, name: str) -> None:
        """Type a name and press Enter, as a newcomer does."""
        self.name.fill(name)
        self.name.press("Enter")
        self.expect_joined(name)

    def expect_joined(self, name: str, times: int = 1) -> None:
        expect(self.notices.filter(has_text=exactly(f"You joined as {name}."))).to_have_count(times)

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

    def expect_error(self, fragment: str) -> None:
        expect(self.errors.filter(has_text=fragment)).to_have_count(1)
