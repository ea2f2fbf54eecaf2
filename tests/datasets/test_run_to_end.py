"""`run_to_end`: a KeyboardInterrupt raised inside the coroutine is raised to the caller once."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from tlm_hooks.datasets.sync import run_to_end


def test_an_interrupt_from_inside_is_raised_and_not_logged_again_later(caplog: pytest.LogCaptureFixture) -> None:
    def scorer(i: int) -> int:
        if i == 3:
            raise KeyboardInterrupt("raised in a scorer")
        return i

    async def work() -> list[int]:  # a batch of sync scores on worker threads, as score_batch runs them
        return list(await asyncio.gather(*(asyncio.to_thread(scorer, i) for i in range(8))))

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(KeyboardInterrupt, match="raised in a scorer"):
            run_to_end(work)
        gc.collect()  # an unretrieved task exception is logged when the task is collected
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_the_result_comes_back() -> None:
    async def work() -> int:
        return 7

    assert run_to_end(work) == 7
