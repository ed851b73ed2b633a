"""Minimal settings for the Channels tutorial reference: stock layer, no database."""

SECRET_KEY = "benchmark-reference-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["daphne", "channels"]
ROOT_URLCONF = "bench.references.channels_tutorial.urls"
ASGI_APPLICATION = "bench.references.channels_tutorial.asgi.application"
DATABASES: dict = {}
USE_TZ = True
# The tutorial's configuration: the stock in-memory layer with its defaults.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
