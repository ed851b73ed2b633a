"""Wrapping one of Daphne's methods once, and under Daphne only (daphne_limits, daphne_reasons)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

# Set on a wrapper, so that a second install (runserver's autoreloader, a
# test importing the ASGI app again) does not wrap the wrapper.
_MARK = "chat_wrapped"


def under_daphne() -> bool:
    """Whether this process is Daphne's (runserver or `daphne`); never true under uvicorn."""
    return "daphne.server" in sys.modules


def wrap_once(
    owner: type, attribute: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    """Replace `owner.attribute` with `wrap(original)`, unless it is wrapped already."""
    original = getattr(owner, attribute)
    if getattr(original, _MARK, False):
        return
    wrapper = functools.wraps(original)(wrap(original))
    setattr(wrapper, _MARK, True)
    setattr(owner, attribute, wrapper)
