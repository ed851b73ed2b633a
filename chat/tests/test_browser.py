"""The page in a real Chromium against a real server process.

Each person is a browser context of their own (their own localStorage). Tests
that need no server restart or settings change share one server and keep out
of each other's way by using a room of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from chat.testing import servers
from chat.tests.browser import ChatPage, exactly, launch, save_screenshot

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1100, "height": 680}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}

OpenChat = Callable[..., ChatPage]

# The README's conversation, also the one the first and the phone tests hold.
CONVERSATION = [
    ("Seiya", "Olá, Shiryu! Training at the waterfall tonight?"),
    ("Shiryu", "Yes. Bring Pegasus' cloth, the old man wants to see it."),
    ("Seiya", "Deal. Hyoga says he is in too, if the ice holds."),
    ("Shiryu", "Then we meet at seven by the old bridge."),
]

# Parts of the page that stick out sideways, past the viewport: the part of
# each element that its overflow-clipping ancestors let through must fit.
OUTSIDE_VIEWPORT_JS = """() => {
  const outside = [];
  for (const element of document.body.querySelectorAll("*")) {
    let { left, right, width, height } = element.getBoundingClientRect();
    if (!width || !height) continue;
    for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX === "visible") continue;
      const clip = up.getBoundingClientRect();
      left = Math.max(left, clip.left);
      right = Math.min(right, clip.right);
    }
    if (right > left && (left < -1 || right > innerWidth + 1)) {
      outside.push(element.id || element.className || element.tagName);
    }
  }
  const html = document.documentElement;
  if (html.scrollWidth > html.clientWidth) outside.push("the page itself");
  return outside;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for every test here (each person gets a context of their own).

    Module-scoped, not session-scoped: while Playwright's sync API is running it
    marks its event loop as running in this thread, and the async tests of the
    other modules could not start theirs.
    """
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[servers.ServerProcess]:
    """One runserver process for the tests of this module that do not restart it."""
    directory = tmp_path_factory.mktemp("browser-server")
    database = directory / "chat.sqlite3"
    servers.migrate(servers.server_env(database))
    with servers.server_process("runserver", database, directory) as process:
        yield process


@pytest.fixture
def room(request) -> str:
    """A room named after the test, so tests sharing a server never meet."""
    return re.sub(r"[^a-z0-9_-]+", "-", request.node.name.lower()).strip("-_")[:48]


@pytest.fixture
def open_chat(browser: Browser) -> Iterator[OpenChat]:
    """Open the chat page as a new person; every page is closed after the test."""
    contexts = []

    def open_page(
        server: servers.ServerProcess, room: str, *, connected: bool = True, **context_options
    ) -> ChatPage:
        context_options.setdefault("viewport", DESKTOP)
        context = browser.new_context(**context_options)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{server.base_url}/websocket/{room}/")
        chat = ChatPage(page)
        if connected:
            chat.expect_connected()
        return chat

    yield open_page
    for context in contexts:
        context.close()


def talk(people: dict[str, ChatPage]) -> None:
    """Hold the README's conversation: each line is sent by one page, seen by the other."""
    for name, text in CONVERSATION:
        people[name].say(text)
        for other, page in people.items():
            if other != name:
                page.expect_message(name, text)


def test_two_people_talk_and_a_page_that_has_not_joined_hears_nothing(server, open_chat):
    bystander = open_chat(server, "lobby")
    seiya = open_chat(server, "lobby")
    shiryu = open_chat(server, "lobby")
    seiya.join("Seiya")
    shiryu.join("Shiryu")

    talk({"Seiya": seiya, "Shiryu": shiryu})

    # Each sender sees its own lines too, once the server has confirmed them.
    last_name, last_text = CONVERSATION[-1]
    expect(shiryu.message_from(last_name, last_text)).to_have_class(re.compile(r"\bmine\b"))
    expect(shiryu.message_from(last_name, last_text)).not_to_have_class(re.compile(r"\bpending\b"))
    expect(seiya.messages).to_have_count(len(CONVERSATION))
    expect(shiryu.messages).to_have_count(len(CONVERSATION))
    # The others have heard everything, so the bystander would have by now.
    expect(bystander.messages).to_have_count(0)
    expect(bystander.members).to_have_count(0)
    expect(bystander.notices).to_have_count(0)
    save_screenshot(seiya.page, "screenshot.png")


def test_members_join_and_leave_notices_and_typing(server, room, open_chat):
    seiya = open_chat(server, room)
    shiryu = open_chat(server, room)
    seiya.join("Seiya")
    expect(seiya.members).to_have_text(["Seiya"])
    expect(seiya.count).to_have_text("1")

    shiryu.join("Shiryu")
    expect(seiya.notices.filter(has_text=exactly("Shiryu joined."))).to_have_count(1)
    expect(seiya.members).to_have_text(["Seiya", "Shiryu"])
    expect(seiya.count).to_have_text("2")
    expect(shiryu.members).to_have_text(["Seiya", "Shiryu"])
    expect(shiryu.count).to_have_text("2")

    shiryu.message.press_sequentially("On my way")
    expect(seiya.typing).to_have_text("Shiryu is typing…")
    expect(shiryu.typing).to_have_text("")
    shiryu.message.press("Enter")
    seiya.expect_message("Shiryu", "On my way")
    expect(seiya.typing).to_have_text("")

    shiryu.page.close()
    expect(seiya.notices.filter(has_text=exactly("Shiryu left."))).to_have_count(1)
    expect(seiya.members).to_have_text(["Seiya"])
    expect(seiya.count).to_have_text("1")


def test_server_errors_are_shown_readably(start_server, server_database, open_chat):
    # Two messages at once, then one every 20 s: the third in a row is refused.
    # Only the rooms an operator made exist (a fresh install has the lobby).
    servers.chat_settings(
        server_database, rate_limit_per_second=0.05, rate_limit_burst=2, allow_adhoc_rooms=0
    )
    server = start_server()
    seiya = open_chat(server, "lobby")
    shiryu = open_chat(server, "lobby")
    seiya.join("Seiya")

    shiryu.name.fill("seiya")
    shiryu.name.press("Enter")
    shiryu.expect_error("already called seiya")
    expect(shiryu.name).to_be_editable()
    expect(shiryu.name).to_be_focused()
    expect(shiryu.name).to_have_value("seiya")
    shiryu.join("Shiryu")

    shiryu.message.fill("one")
    shiryu.send_button.click()
    seiya.expect_message("Shiryu", "one")
    expect(shiryu.message).to_be_focused()
    shiryu.say("two")
    seiya.expect_message("Shiryu", "two")
    shiryu.say("three")
    shiryu.expect_error("sending messages too fast")
    # The refused message is marked and back in the box, ready to resend.
    expect(shiryu.message_from("Shiryu", "three")).to_have_class(re.compile(r"\bfailed\b"))
    expect(shiryu.message).to_have_value("three")
    expect(seiya.messages).to_have_count(2)

    # A room that does not exist: the page says so and stops trying.
    nowhere = open_chat(server, "nowhere", connected=False)
    expect(nowhere.state).to_have_attribute("data-state", "gone")
    expect(nowhere.state).to_have_text("There is no such room.")
    expect(nowhere.message).to_be_disabled()


def test_name_survives_a_reload(server, room, open_chat):
    seiya = open_chat(server, room)
    shiryu = open_chat(server, room)
    shiryu.join("Shiryu")
    seiya.join("Seiya")
    seiya.page.reload()
    seiya.expect_connected()
    expect(seiya.name).to_have_value("Seiya")
    # The remembered name is used by the first message, no retyping needed.
    seiya.say("I'm back 👋")
    shiryu.expect_message("Seiya", "I'm back 👋")
    seiya.expect_joined("Seiya")


def test_the_fields_count_characters_as_the_server_does(server, room, open_chat):
    """An emoji is one character to the server and two UTF-16 units to `maxlength`."""
    hyoga = open_chat(server, room)
    hyoga.name.press_sequentially("x" * 33)
    expect(hyoga.name).to_have_value("x" * 32)
    hyoga.name.fill("")
    longest = "🧊" * 32
    hyoga.name.press_sequentially(longest + "🧊")
    expect(hyoga.name).to_have_value(longest)
    hyoga.name.press("Enter")
    hyoga.expect_joined(longest)


def test_markup_in_messages_and_names_is_shown_as_text(server, room, open_chat):
    attack = '<img src=x onerror="window.__xss=1">'
    seiya = open_chat(server, room)
    ikki = open_chat(server, room)
    seiya.join("Seiya")
    ikki.join("<b>Ikki</b>")
    ikki.say(attack)
    seiya.expect_message("<b>Ikki</b>", attack)
    expect(seiya.members).to_have_text(["Seiya", "<b>Ikki</b>"])
    for page in (seiya.page, ikki.page):
        expect(page.locator("#log img, #members b")).to_have_count(0)
        assert page.evaluate("typeof window.__xss") == "undefined"


def test_reconnects_and_rejoins_after_a_server_restart(start_server, server_database, open_chat):
    server = start_server()
    seiya = open_chat(server, "lobby")
    shiryu = open_chat(server, "lobby")
    seiya.join("Seiya")
    shiryu.join("Shiryu")

    server.stop()
    for chat in (seiya, shiryu):
        expect(chat.state).to_have_attribute("data-state", "closed")
        expect(chat.state).to_contain_text("Disconnected")
        expect(chat.members).to_have_count(0)
    expect(seiya.page.locator("#members-hint")).to_have_text("Rejoining as Seiya when connected.")
    seiya.say("anyone there?")
    seiya.expect_error("Not connected")
    expect(seiya.message).to_have_value("anyone there?")

    # The operator lowers the message limit while the server is down.
    servers.chat_settings(server_database, max_message_length=12)
    server.start()
    for chat, name in ((seiya, "Seiya"), (shiryu, "Shiryu")):
        chat.expect_connected()
        chat.expect_joined(name, times=2)
        expect(chat.count).to_have_text("2")

    seiya.say("back again")
    shiryu.expect_message("Seiya", "back again")
    # The page was served with the old limit: the server's refusal is shown.
    seiya.say("a message longer than twelve")
    seiya.expect_error("at most 12 characters")
    expect(shiryu.messages).to_have_count(1)


def test_phone_layout_has_no_sideways_scroll_and_keeps_the_message_field(server, open_chat):
    phone = open_chat(server, "rozan", **PHONE)
    desktop = open_chat(server, "rozan")
    phone.join("Shiryu")
    desktop.join("Seiya")
    talk({"Seiya": desktop, "Shiryu": phone})
    save_screenshot(phone.page, "screenshot-phone.png")

    # A word too long for the screen, a long name, and enough lines to fill it
    # (fewer than the default burst of ten messages).
    desktop.say("https://example.invalid/" + "a-very-long-path-segment" * 8)
    longest = open_chat(server, "rozan")
    longest.join("Shunrei-of-Rozan-the-Five-Peaks")
    line = "long enough to wrap over several lines on a phone."
    for number in range(6):
        longest.say(f"Message {number}, {line}")
    phone.expect_message("Shunrei-of-Rozan-the-Five-Peaks", f"Message 5, {line}")

    assert phone.page.evaluate(OUTSIDE_VIEWPORT_JS) == []
    expect(phone.message).to_be_in_viewport(ratio=1)
    expect(phone.send_button).to_be_in_viewport(ratio=1)
    expect(phone.messages.last).to_be_in_viewport()

    # The longest room name a slug allows, with nowhere to break a line, fits the header.
    long_room = open_chat(server, "the_longest_room_name_without_a_break".ljust(48, "9"), **PHONE)
    assert long_room.page.evaluate(OUTSIDE_VIEWPORT_JS) == []


def test_usable_by_keyboard_alone_and_announced(server, room, open_chat):
    seiya = open_chat(server, room)
    listener = open_chat(server, room)
    listener.join("Shiryu")

    expect(seiya.log).to_have_attribute("aria-live", "polite")
    expect(seiya.state).to_have_attribute("role", "status")
    # A first visit starts in the name field.
    expect(seiya.name).to_be_focused()
    keyboard = seiya.page.keyboard
    keyboard.type("Seiya")
    keyboard.press("Enter")
    seiya.expect_joined("Seiya")
    expect(seiya.message).to_be_focused()

    keyboard.type("typed and sent with Enter")
    keyboard.press("Enter")
    listener.expect_message("Seiya", "typed and sent with Enter")
    expect(seiya.message).to_be_focused()
    expect(seiya.message).to_have_value("")

    keyboard.type("sent with the button")
    keyboard.press("Tab")
    expect(seiya.send_button).to_be_focused()
    keyboard.press("Space")
    listener.expect_message("Seiya", "sent with the button")
    expect(seiya.message).to_be_focused()
