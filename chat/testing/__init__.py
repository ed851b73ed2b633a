"""Real components for the tests and the benchmark alike: server processes, redis-server,
WebSocket client helpers (as channels.testing serves Channels' own tests)."""
