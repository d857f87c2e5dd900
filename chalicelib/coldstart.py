"""Garbage collection through a cold start.

Importing a function (~480 modules with its libraries) and serving its first event allocate
millions of objects that live as long as the process: modules, classes, the botocore session
and its service models. With CPython's default thresholds the cyclic collector runs hundreds
of times over them during that first invocation, 20-40 ms of a cold start of ~250 ms
(bench/cold_start.py). So collection is rare from the moment app.py starts until the first
invocation is answered; then what exists is frozen (moved out of the collector's reach; it
is never garbage) and the default thresholds return for the warm life of the process.
"""
from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

_DEFAULT_THRESHOLDS = gc.get_threshold()
# A young collection per 100,000 net allocations instead of 700, none of the older ones.
_COLD_THRESHOLDS = (100_000, 1_000, 1_000)
_cold = False


def begin() -> None:
    """Called first thing by app.py, before anything heavy is imported."""
    global _cold
    _cold = True
    gc.set_threshold(*_COLD_THRESHOLDS)


def end() -> None:
    """After the first invocation: freeze what the cold start built, collect as usual."""
    global _cold
    if _cold:
        _cold = False
        gc.freeze()
        gc.set_threshold(*_DEFAULT_THRESHOLDS)


def is_cold() -> bool:
    return _cold


def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware (every event type): ends the cold start once the first event is
    handled, however it ended."""
    try:
        return get_response(event)
    finally:
        if _cold:
            end()
