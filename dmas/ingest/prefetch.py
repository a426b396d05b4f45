"""Read ahead in a background thread, so parsing the next chunk overlaps validating this one.

Arrow's CSV/Parquet readers and compute kernels release the GIL, so on two cores this hides most
of the reading time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield `items` in order while a thread produces up to `depth` ahead; re-raises the producer's error."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stopped.is_set():
                    try:
                        buffer.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stopped.is_set():
                    return
            buffer.put(("end", _END))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(("error", exc))

    thread = threading.Thread(target=produce, name="dmas-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stopped.set()
        thread.join(timeout=5)
