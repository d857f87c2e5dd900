"""Garbage collection through a cold start.

Importing a function (~480 modules with its libraries) and serving its first event leave
~100,000-115,000 more objects for the cyclic collector to track, nearly all of them living as
long as the process: modules, classes, functions, the botocore session and its service
models; fewer than 1,000 are garbage (measured by collecting after a cold start with the
collector off). With CPython's default thresholds the collector runs hundreds of times over
them during that first invocation, 20-40 ms of a cold start of ~200 ms (bench/cold_start.py),
and even one young collection near the end costs ~20 ms. So, from the moment app.py starts
until the first invocation is answered, a young collection waits for a million tracked
objects (a normal cold start never gets there; a process that imports the app and serves
nothing still collects); then what exists is frozen (moved out of the collector's reach) and
the default thresholds return for the warm life of the process.
"""
from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

_DEFAULT_THRESHOLDS = gc.get_threshold()
# A young collection per 1,000,000 net allocations of tracked objects instead of 700.
_COLD_THRESHOLDS = (1_000_000, 10, 10)
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


def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware (every event type): ends the cold start once the first event is
    handled, however it ended."""
    try:
        return get_response(event)
    finally:
        end()
