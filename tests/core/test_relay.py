"""The live relay on a real Redis: what many tasks publish at once reaches the listeners
whole and in order, each publisher told how many heard it."""

import asyncio
import uuid

from core.relay import Relay
from tests.databases import TEST_REDIS_URL, require_redis


async def test_a_burst_of_publishes_arrives_in_order_and_each_is_heard():
    require_redis()
    relay = Relay(TEST_REDIS_URL, namespace=f"test-{uuid.uuid4().hex}")
    heard: list[int] = []
    everything = asyncio.Event()

    async def listener(message: dict) -> None:
        heard.append(message["n"])
        if len(heard) == 200:
            everything.set()

    await relay.subscribe("screens", listener)
    relay.start()
    await asyncio.wait_for(relay.listening.wait(), 10)
    try:
        counts = await asyncio.gather(*(relay.publish("screens", {"n": n}) for n in range(200)))
        await asyncio.wait_for(everything.wait(), 10)
    finally:
        await relay.close()

    assert heard == list(range(200))
    assert counts == [1] * 200
