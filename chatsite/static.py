"""WhiteNoise on an ASGI site: static files as WhiteNoise serves them, the rest left async.

WhiteNoise's middleware is synchronous only. Django runs such a middleware,
and so every request behind it, in its one thread for synchronous code, so
/healthz and /metrics would queue behind any page render or ORM call. This
one looks the file up the same way, serves a hit from a worker thread (the
file is opened and read there) and hands every other request on, on the
event loop.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoiseMiddleware with an asynchronous `__call__`."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        assert iscoroutinefunction(get_response), "Django adapts the chain for async_capable"
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:
            # DEBUG: every request looks in the apps' static folders on disk.
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info
            )
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
