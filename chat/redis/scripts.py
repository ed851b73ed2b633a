"""Lua scripts kept as files beside their backend, run by SHA1 with a fallback to EVAL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

from .pipeline import RedisPipeline


@dataclass(frozen=True, slots=True)
class LuaScript:
    """One script's source and the SHA1 that EVALSHA runs it by."""

    name: str
    source: str
    sha: str

    @classmethod
    def from_source(cls, name: str, source: str) -> LuaScript:
        return cls(name=name, source=source, sha=hashlib.sha1(source.encode()).hexdigest())

    @classmethod
    def load(cls, folder: Path, name: str, *, prelude: str = "") -> LuaScript:
        """`folder/<name>.lua`, after `prelude` (a library of functions the script calls)."""
        return cls.from_source(name, prelude + (folder / f"{name}.lua").read_text())

    async def run(self, pipeline: RedisPipeline, *args: str | int) -> Any:
        """Run on `pipeline` with no keys and `args` as ARGV; the script's reply.

        EVALSHA first: a script's source travels once per Redis, not per call.
        A Redis restarted or flushed since has forgotten it, and EVAL caches
        it again.
        """
        try:
            return await pipeline.execute("EVALSHA", self.sha, 0, *args)
        except NoScriptError:
            return await pipeline.execute("EVAL", self.source, 0, *args)
