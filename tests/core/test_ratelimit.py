"""Rate limits behave the same in memory and in Redis, and Redis shares them across clients."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

import pytest

from core.ratelimit import LocalLimits, RateLimits, RedisLimits
from tests.databases import TEST_REDIS_URL as REDIS_URL
from tests.databases import require_redis


@pytest.fixture(params=["local", "redis"])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[RateLimits]:
    if request.param == "redis":
        require_redis(REDIS_URL)
        shared: RateLimits = RedisLimits(REDIS_URL)
    else:
        shared = LocalLimits()
    yield shared
    await shared.close()


def _key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_a_window_allows_the_limit_then_says_how_long_to_wait(limits: RateLimits) -> None:
    key = _key()
    assert [await limits.hit(key, 3, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limits.peek(key, 3) > 59
    assert 59 < await limits.hit(key, 3, 60) <= 60


async def test_a_window_ends(limits: RateLimits) -> None:
    key = _key()
    await limits.hit(key, 1, 0.2)
    assert await limits.hit(key, 1, 0.2) > 0
    await asyncio.sleep(0.25)
    assert await limits.hit(key, 1, 0.2) == 0.0


async def test_clearing_forgets_the_attempts(limits: RateLimits) -> None:
    key = _key()
    await limits.hit(key, 1, 60)
    await limits.clear(key)
    assert await limits.peek(key, 1) == 0.0
    assert await limits.hit(key, 1, 60) == 0.0


async def test_a_pace_spaces_the_slots(limits: RateLimits) -> None:
    key = _key()
    waits = [await limits.pace(key, 10) for _ in range(5)]
    # Each reservation is 0.1 s after the previous one (less the time the calls took).
    assert waits[0] == 0.0
    for earlier, later in itertools.pairwise(waits):
        assert 0.05 < later - earlier <= 0.1 + 1e-6


async def test_redis_counts_are_shared_by_every_replica() -> None:
    require_redis(REDIS_URL)
    first, second = RedisLimits(REDIS_URL), RedisLimits(REDIS_URL)
    try:
        key = _key()
        assert await first.hit(key, 1, 60) == 0.0
        assert await second.hit(key, 1, 60) > 0
        assert await second.pace(key, 10) == 0.0
        assert await first.pace(key, 10) > 0.05
    finally:
        await first.close()
        await second.close()


async def test_slots_taken_in_blocks_by_two_replicas_stay_spaced(limits: RateLimits) -> None:
    """Two replicas (on Redis; in memory, one process's two callers) each reserving blocks of
    slots on one key: no two sends closer than the spacing, and none left waiting longer
    than the reserved slots ahead of it."""
    other = RedisLimits(REDIS_URL) if isinstance(limits, RedisLimits) else limits
    key = _key()
    try:
        loop = asyncio.get_running_loop()
        slots = []
        for _ in range(3):
            for replica in (limits, other):
                for _ in range(2):
                    slots.append(loop.time() + await replica.pace_in_blocks(key, 20, 4))
    finally:
        if other is not limits:
            await other.close()
    ordered = sorted(slots)
    assert all(later - earlier > 0.04 for earlier, later in itertools.pairwise(ordered))
    assert ordered[-1] - ordered[0] < 16 * 0.05


async def test_a_block_whose_slots_passed_unused_is_given_up(limits: RateLimits) -> None:
    key = _key()
    assert await limits.pace_in_blocks(key, 10, 4) == 0.0
    await asyncio.sleep(0.5)  # the block's three other slots pass meanwhile
    assert await limits.pace_in_blocks(key, 10, 4) == 0.0  # not a burst of stale slots
    assert 0.05 < await limits.pace_in_blocks(key, 10, 4) <= 0.1
