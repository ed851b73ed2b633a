"""chat.presence.listing: a process's copies of large rooms' lists, without Redis.

The pieces fed in are what the claim script answers (chat/presence/lua):
the stored list is "\\n<json>\\n<json>\\n", a piece is the list from an offset.
"""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from chat.presence.listing import MemberLists


def stored(names: list[str]) -> str:
    """The list as Redis stores it."""
    return "".join("\n" + orjson.dumps(name).decode() for name in names) + "\n"


def size(names: list[str]) -> int:
    return len(stored(names).encode())


def test_a_small_room_is_not_kept():
    lists = MemberLists(keep_above=3)
    assert lists.asking("r") == ("", 0)
    names = ["a", "b"]
    assert orjson.loads(lists.claimed("r", epoch="1", offset=0, piece=stored(names), count=2)) == [
        "a",
        "b",
    ]
    assert len(lists) == 0
    assert lists.asking("r") == ("", 0)


def test_a_large_room_grows_from_pieces():
    lists = MemberLists(keep_above=2)
    names = ["Ana", "Bea", "Çelik"]
    lists.asking("r")
    lists.claimed("r", epoch="7", offset=0, piece=stored(names), count=3)
    assert lists.asking("r") == ("7", size(names))
    grown = [*names, "Dão", "Eve"]
    # The piece starts right after the copy's bytes; non-ASCII names count in bytes.
    piece = stored(grown).encode()[size(names) :].decode()
    joined = lists.claimed("r", epoch="7", offset=size(names), piece=piece, count=5)
    assert orjson.loads(joined) == grown
    assert lists.asking("r") == ("7", size(grown))


def test_a_reply_that_repeats_what_the_copy_has_adds_only_the_rest():
    """Two claims sent with the same copy: the second's piece overlaps the first's."""
    lists = MemberLists(keep_above=1)
    base = ["a", "b"]
    lists.asking("r")
    lists.claimed("r", epoch="1", offset=0, piece=stored(base), count=2)
    known = lists.asking("r")
    assert lists.asking("r") == known  # both sent before either is answered
    first = [*base, "c"]
    second = [*first, "d"]
    piece = stored(first).encode()[known[1] :].decode()
    assert orjson.loads(lists.claimed("r", epoch="1", offset=known[1], piece=piece, count=3)) == (
        first
    )
    piece = stored(second).encode()[known[1] :].decode()
    assert orjson.loads(lists.claimed("r", epoch="1", offset=known[1], piece=piece, count=4)) == (
        second
    )


def test_a_new_epoch_replaces_the_copy():
    lists = MemberLists(keep_above=1)
    lists.asking("r")
    lists.claimed("r", epoch="1", offset=0, piece=stored(["a", "b", "c"]), count=3)
    lists.asking("r")
    after = ["a", "c", "d"]  # "b" left: the list was rewritten
    assert orjson.loads(lists.claimed("r", epoch="2", offset=0, piece=stored(after), count=3)) == (
        after
    )
    assert lists.asking("r") == ("2", size(after))


def test_a_piece_without_its_copy_is_refused():
    """Another writer changed the list under the same epoch: the caller reads it all."""
    lists = MemberLists(keep_above=1)
    lists.asking("r")
    assert lists.claimed("r", epoch="1", offset=12, piece='"x"\n', count=3) is None
    lists.asking("r")
    lists.claimed("r", epoch="1", offset=0, piece=stored(["a", "b"]), count=2)
    lists.asking("r")
    assert lists.claimed("r", epoch="1", offset=size(["a", "b"]) + 4, piece='"x"\n', count=3) is (
        None
    )
    assert lists.asking("r") == ("", 0)


def test_the_copy_goes_with_the_last_member_but_not_under_a_pending_claim():
    lists = MemberLists(keep_above=1)
    lists.asking("r")
    lists.claimed("r", epoch="1", offset=0, piece=stored(["a", "b"]), count=2)
    known = lists.asking("r")  # a claim in flight
    lists.released("r")  # the only member leaves meanwhile
    assert len(lists) == 1
    piece = stored(["a", "b", "c"]).encode()[known[1] :].decode()
    assert orjson.loads(lists.claimed("r", epoch="1", offset=known[1], piece=piece, count=3)) == [
        "a",
        "b",
        "c",
    ]
    lists.released("r")
    assert len(lists) == 0


def test_a_refused_claim_lets_the_copy_go():
    lists = MemberLists(keep_above=1)
    lists.asking("r")
    lists.claimed("r", epoch="1", offset=0, piece=stored(["a", "b"]), count=2)
    lists.released("r")
    assert len(lists) == 0
    lists.asking("r")
    lists.refused("r")
    assert len(lists) == 0 and lists.asking("r") == ("", 0)


names_strategy = st.lists(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=6),
    min_size=3,
    max_size=40,
    unique=True,
)


@given(names=names_strategy, data=st.data())
def test_pieces_in_any_split_rebuild_the_list(names, data):
    """However the joins fall into replies (and overlap), the copy is the list."""
    lists = MemberLists(keep_above=1)
    full = stored(names).encode()
    start = data.draw(st.integers(min_value=2, max_value=len(names)))
    lists.asking("r")
    lists.claimed("r", epoch="5", offset=0, piece=stored(names[:start]), count=start)
    at = start
    while at < len(names):
        # Up to three claims sent before the first is answered: all with one copy.
        sent = [lists.asking("r") for _ in range(data.draw(st.integers(1, 3)))]
        for known in sent:
            at = data.draw(st.integers(min_value=min(at + 1, len(names)), max_value=len(names)))
            piece = stored(names[:at]).encode()[known[1] :].decode()
            members = lists.claimed("r", epoch="5", offset=known[1], piece=piece, count=at)
            assert orjson.loads(members) == names[:at]
    assert lists.asking("r") == ("5", len(full))
