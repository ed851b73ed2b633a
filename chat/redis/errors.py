"""What a Redis outage raises, and how a loop that catches it stays cancellable."""

import asyncio

from redis.exceptions import RedisError

# What a Redis outage raises: redis-py's own errors, and the OS's when a
# socket breaks underneath it.
REDIS_ERRORS = (RedisError, OSError)


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task has been asked to stop.

    redis-py can turn a cancellation that lands in the middle of a command
    into its own connection error. A loop that catches those errors to retry
    would then swallow the request to stop and run forever (and whoever
    awaits it after `cancel()` would hang). Calling this after each caught
    error keeps `cancel()` final.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
