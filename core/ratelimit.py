"""Rate limits shared by every process of the clinic.

Two kinds: a **window** counts attempts per key (logins per account, widget messages per
client address) and says how long to wait once the limit is reached; a **pace** spaces sends
on one key (a provider's throughput cap) so that, across every worker, no more than the
given number go out per second. On the embedded default one process of each kind runs and
the counts live in memory; in production (`REDIS_URL`) they live in Redis, so every replica
sees the same counts, and each step is one atomic script.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis

KEY_PREFIX = "omniclinica:limits:"


class RateLimits(ABC):
    @abstractmethod
    async def hit(self, key: str, limit: int, window: float) -> float:
        """Count one attempt on `key`: 0.0 while at most `limit` happened in the current
        window of `window` seconds, else the seconds until the window ends."""

    @abstractmethod
    async def peek(self, key: str, limit: int) -> float:
        """Like `hit` without counting: the seconds to wait before the next attempt."""

    @abstractmethod
    async def clear(self, key: str) -> None:
        """Forget the attempts on `key` (a successful login, a lock lifted by an admin)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._blocks: dict[str, _Block] = {}
        self._refilling: dict[str, asyncio.Lock] = {}  # one refill of a key's block at a time

    @abstractmethod
    async def pace(self, key: str, per_second: float, slots: int = 1) -> float:
        """Reserve the next `slots` send slots on `key`, sends spaced 1/`per_second` apart:
        the seconds to wait before the first (0.0 when it is now)."""

    async def pace_in_blocks(self, key: str, per_second: float, block: int) -> float:
        """Like `pace`, but this process reserves `block` slots at a time and hands them out
        in order, one call to the shared store per block instead of per send. Slots whose time
        passed unused are given up (the next send reserves a new block), so a lull never lets
        a burst through; a process that stops leaves at most a block's gap in the pace."""
        async with self._refilling.setdefault(key, asyncio.Lock()):
            current = self._blocks.get(key)
            spacing = 1.0 / per_second
            if current is None or not current.left or current.next_at < self._clock() - spacing:
                wait = await self.pace(key, per_second, block)
                current = self._blocks[key] = _Block(self._clock() + wait, block, spacing)
            slot = current.take()
        return max(0.0, slot - self._clock())

    @abstractmethod
    async def close(self) -> None:
        """Release the connection, if any."""


class _Block:
    """Send slots this process reserved in one go: `left` of them, the next at `next_at`
    (monotonic clock), `spacing` seconds apart."""

    def __init__(self, next_at: float, left: int, spacing: float) -> None:
        self.next_at, self.left, self.spacing = next_at, left, spacing

    def take(self) -> float:
        """The next slot's time."""
        slot = self.next_at
        self.next_at += self.spacing
        self.left -= 1
        return slot


class LocalLimits(RateLimits):
    """Counts in this process's memory: right while one process of each kind runs."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._windows: dict[str, tuple[int, float]] = {}
        self._next_slot: dict[str, float] = {}

    def _window(self, key: str) -> tuple[int, float]:
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= self._clock():
            self._windows.pop(key, None)
            return 0, 0.0
        return count, ends

    async def hit(self, key: str, limit: int, window: float) -> float:
        count, ends = self._window(key)
        now = self._clock()
        if not count:
            ends = now + window
        self._windows[key] = (count + 1, ends)
        return 0.0 if count + 1 <= limit else ends - now

    async def peek(self, key: str, limit: int) -> float:
        count, ends = self._window(key)
        return 0.0 if count < limit else ends - self._clock()

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    async def pace(self, key: str, per_second: float, slots: int = 1) -> float:
        now = self._clock()
        slot = max(now, self._next_slot.get(key, 0.0))
        self._next_slot[key] = slot + slots / per_second
        if len(self._next_slot) > 10_000:  # forget keys whose slots are long past
            self._next_slot = {k: v for k, v in self._next_slot.items() if v > now}
        return slot - now

    async def close(self) -> None:
        """Nothing to release."""


# KEYS[1] the counter; ARGV[1] the window in ms. Returns {count, ms left in the window}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""
# KEYS[1] the next free slot (µs, Redis clock); ARGV[1] the spacing in µs, ARGV[2] how many
# slots. Returns the µs to wait for the first. Redis's own clock, so workers on different
# machines agree on "now".
_PACE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local reserved = tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], slot + reserved, 'PX', math.ceil(reserved / 1000) + 60000)
return slot - now
"""


class RedisLimits(RateLimits):
    """Counts in Redis: every replica shares them."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._redis = aioredis.Redis.from_url(url)
        self._hit = self._redis.register_script(_HIT)
        self._pace = self._redis.register_script(_PACE)

    async def hit(self, key: str, limit: int, window: float) -> float:
        count, left_ms = cast(
            list[int], await self._hit(keys=[KEY_PREFIX + key], args=[math.ceil(window * 1000)])
        )
        return 0.0 if count <= limit else max(left_ms, 0) / 1000

    async def peek(self, key: str, limit: int) -> float:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(KEY_PREFIX + key)
            pipe.pttl(KEY_PREFIX + key)
            count, left_ms = await pipe.execute()
        return 0.0 if int(count or 0) < limit else max(left_ms, 0) / 1000

    async def clear(self, key: str) -> None:
        await self._redis.delete(KEY_PREFIX + key)

    async def pace(self, key: str, per_second: float, slots: int = 1) -> float:
        spacing_us = math.ceil(1_000_000 / per_second)
        wait_us = await self._pace(keys=[KEY_PREFIX + "pace:" + key], args=[spacing_us, slots])
        return int(wait_us) / 1_000_000

    async def close(self) -> None:
        await self._redis.aclose()


def build_limits(redis_url: str) -> RateLimits:
    return RedisLimits(redis_url) if redis_url else LocalLimits()
