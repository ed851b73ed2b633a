"""The chat's channel layers: in the process (`memory`), and across processes on Redis (`redis`).

settings.CHANNEL_LAYERS names one of them, as it would any Channels layer.
"""
