"""Dataset tests: the helper module sits next to them (``ds_helpers``)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _ctrl_c_raises() -> Iterator[None]:
    """Some tests press Ctrl-C (SIGINT to this process): make it raise KeyboardInterrupt even
    when the suite was launched with SIGINT ignored (a background job, nohup)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
