"""The `resume` token: which member may recover what, signed so that no client can forge one.

Signed with Django's `signing` and the deployment's SECRET_KEY, so every
process of a deployment verifies what any of them issued, and nothing is
stored. It binds the room, the epoch (the run of offsets it counts in), the
member it was issued to (its connection's channel name, which the name's
holder is recorded under: chat.presence) and the offset of that member's
first join, before which it can recover nothing. It does not expire by
itself: the window does (chat.recovery.window, the Redis stream's expiry).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from ..protocol import MAX_RESUME_LENGTH

SALT = "chat.recovery.resume"


@dataclass(frozen=True, slots=True)
class ResumeToken:
    room: str
    epoch: str
    member: str
    first: int  # the room's offset at the member's first join

    def sign(self) -> str:
        token = signing.dumps(
            [self.room, self.epoch, self.member, self.first], salt=SALT, compress=True
        )
        # A room slug, an epoch and a channel name keep it far below the limit.
        assert len(token) <= MAX_RESUME_LENGTH, len(token)
        return token


def verify(token: str, *, room: str) -> ResumeToken | None:
    """The token's content if this deployment signed it for `room`; None otherwise."""
    try:
        content = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    match content:
        case [str(token_room), str(epoch), str(member), int(first)] if token_room == room:
            return ResumeToken(room=token_room, epoch=epoch, member=member, first=first)
    return None
