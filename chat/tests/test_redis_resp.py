"""chat.redis.resp packs a command byte for byte as redis-py does, for what the chat sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection

from chat.redis.resp import pack

# A command name, then any arguments of the kinds the chat sends.
commands = st.tuples(
    st.sampled_from(["EVALSHA", "PUBLISH", "PING", "ECHO"]),
    st.lists(st.one_of(st.binary(), st.text(), st.integers()), max_size=14),
).map(lambda parts: (parts[0], *parts[1]))


@given(commands)
def test_pack_is_what_redis_py_packs(command):
    assert pack(command) == b"".join(Connection().pack_commands([command]))


def test_an_evalsha_of_a_chat_message_as_redis_reads_it():
    assert pack(("EVALSHA", "ab", 0, b"k", "é", -3)) == (
        b"*6\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n0\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n$2\r\n-3\r\n"
    )


@pytest.mark.parametrize("arg", [1.5, True, None, ["a"]])
def test_an_argument_of_another_kind_is_refused(arg):
    with pytest.raises(TypeError, match="cannot send a"):
        pack(("ECHO", arg))
