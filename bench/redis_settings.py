"""Settings for the Redis column: the app's own settings with REDIS_URL set.

Until the app has its Redis presence backend (chat.presence_redis), the layer
is channels-redis and presence stays in-process, which is exact for the one
server process a benchmark column runs.
"""

import importlib.util

from chatsite.settings import *  # noqa: F403

if importlib.util.find_spec("chat.presence_redis") is None:
    REDIS_URL = None
