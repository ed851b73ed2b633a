"""What every Redis backend of the chat shares: errors, Lua scripts, the pipeline, retries.

The backends (chat.layers.redis, chat.presence.redis) build on these and
nothing here knows of them: `errors` (what an outage raises, and keeping
`cancel()` final in loops that catch it), `scripts` (Lua scripts kept as
files and run by SHA1), `pipeline` (one connection shared by many callers),
`resp` (the pipeline's commands packed for the wire), `loops` (the
per-event-loop holder of a backend's connections, and the one retry loop
of its background tasks).
"""
