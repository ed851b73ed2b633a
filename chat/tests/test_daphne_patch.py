"""wrap_once: Daphne's methods are wrapped once, however often the ASGI app is loaded."""

from chat.daphne_patch import wrap_once


def test_a_method_is_wrapped_once_and_keeps_its_name():
    class Protocol:
        def reply(self, message: str) -> str:
            return message

    def shout(original):
        def reply(self, message: str) -> str:
            return original(self, message).upper() + "!"

        return reply

    wrap_once(Protocol, "reply", shout)
    wrap_once(Protocol, "reply", shout)
    assert Protocol().reply("hi") == "HI!"
    assert Protocol.reply.__name__ == "reply"
