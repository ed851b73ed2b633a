"""The ASGI application: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

# Set up Django (apps, models) before anything imports the consumers.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat import (  # noqa: E402
    daphne_drain,
    daphne_limits,
    daphne_quiet,
    daphne_reasons,
    daphne_writes,
    uvicorn_exit,
)
from chat.origin import AllowedHostsOrNoOriginValidator  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chatsite.gc_tuning import tune_for_long_lived_connections  # noqa: E402

daphne_limits.install()
daphne_reasons.install()
daphne_drain.install()
daphne_quiet.install()
daphne_writes.install()
uvicorn_exit.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOrNoOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)

# Last: everything built so far lives as long as the process.
tune_for_long_lived_connections()
