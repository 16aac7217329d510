"""Show what a long setup step is doing and for how long (cluster creation, image pulls).

Minimal version; the report work refines how it is displayed. API: ``with step("creating cluster"):``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def step(what: str) -> Iterator[None]:
    start = time.monotonic()
    out = sys.__stderr__
    if out is not None:
        print(f"[labcheck] {what} ...", file=out, flush=True)
    try:
        yield
    finally:
        if out is not None:
            print(f"[labcheck] {what}: {time.monotonic() - start:.1f}s", file=out, flush=True)
