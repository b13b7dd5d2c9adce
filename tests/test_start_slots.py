"""The line for server starts (StartSlots): first come first served, nothing lost when a start gives up."""

import asyncio

import pytest

from mydocker_hub.swarm.start_slots import StartSlots


async def _hold(slots: StartSlots, name: str, order: list[str], release: asyncio.Event, places: list | None = None):
    async with slots.slot(on_wait=places.append if places is not None else None, report_every=0.01):
        order.append(name)
        await release.wait()


def test_starts_beyond_the_slots_wait_and_go_in_arrival_order():
    async def scenario():
        slots, order, release = StartSlots(2), [], asyncio.Event()
        places: list[int] = []
        tasks = [
            asyncio.create_task(_hold(slots, f"s{i}", order, release, places if i == 4 else None)) for i in range(5)
        ]
        await asyncio.sleep(0.05)
        assert order == ["s0", "s1"] and slots.waiting == 3
        assert places == [2]  # the fifth start is told that two are ahead of it
        release.set()
        await asyncio.gather(*tasks)
        assert order == ["s0", "s1", "s2", "s3", "s4"]
        assert slots.holders == 0 and slots.waiting == 0

    asyncio.run(scenario())


def test_a_start_cancelled_in_line_leaves_its_place_and_the_others_go_on():
    async def scenario():
        slots, order, release = StartSlots(1), [], asyncio.Event()
        first = asyncio.create_task(_hold(slots, "first", order, release))
        await asyncio.sleep(0.01)
        gives_up = asyncio.create_task(_hold(slots, "gives-up", order, release))
        third = asyncio.create_task(_hold(slots, "third", order, release))
        await asyncio.sleep(0.01)
        gives_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gives_up
        assert slots.waiting == 1
        release.set()
        await asyncio.gather(first, third)
        assert order == ["first", "third"] and slots.holders == 0

    asyncio.run(scenario())


def test_a_failing_start_frees_its_slot():
    async def scenario():
        slots = StartSlots(1)
        with pytest.raises(RuntimeError):
            async with slots.slot():
                raise RuntimeError("image missing")
        async with slots.slot():
            assert slots.holders == 1
        assert slots.holders == 0

    asyncio.run(scenario())


def test_more_slots_let_waiting_starts_in_and_no_limit_lets_all():
    async def scenario():
        slots, order, release = StartSlots(1), [], asyncio.Event()
        tasks = [asyncio.create_task(_hold(slots, f"s{i}", order, release)) for i in range(4)]
        await asyncio.sleep(0.01)
        assert len(order) == 1
        slots.resize(3)
        await asyncio.sleep(0.01)
        assert len(order) == 3
        slots.resize(0)
        await asyncio.sleep(0.01)
        assert len(order) == 4
        release.set()
        await asyncio.gather(*tasks)
        assert slots.holders == 0

    asyncio.run(scenario())
