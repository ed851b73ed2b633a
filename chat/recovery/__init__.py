"""Recovery after a short disconnect (SPEC "Nothing lost across a short disconnect").

- `window`: a room's recent messages by offset, as the in-process channel
  layer keeps them (the Redis layer keeps the same in a Redis stream);
- `tokens`: the signed `resume` token that a `joined` frame carries.

The channel layers number and keep the messages (their "history"
extension); the consumer asks them for what a rejoining member missed.
"""
