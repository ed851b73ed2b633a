"""`make bench`: the chat against two reference designs, side by side (docs/performance.md)."""
