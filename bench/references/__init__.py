"""Designs the chat is measured against; written for the benchmark, not part of the app."""
