"""Leave the process without the interpreter's last full garbage collection.

WHY: when a run ends, CPython's finalisation collects every object still tracked by the cyclic
garbage collector: pytest, its plugins, the docker SDK, the parsed facts. That pass, which frees
memory the operating system reclaims anyway a moment later, took 120-200 ms of a 1.3 s module 0 run
on the build VM (benchmarks/module0.py: "exit"), more than any check. ``gc.freeze()`` moves those
objects into the permanent generation, so the last pass has almost nothing to look at.

It is registered with :mod:`atexit`, so it only happens when the interpreter is really exiting: a
``pytest.main()`` or pytester run inside another program leaves that program's objects collectable while it
runs; only its own exit then skips the last collection, the same way. Everything else still
happens as before: pytest's own end of session (which collects garbage to report unraisable
exceptions), other atexit handlers, ``weakref.finalize`` callbacks, the flushing of stdout and
stderr, and the reference-count frees of module teardown. What is skipped is only the freeing of
objects that are unreachable only through reference cycles; this suite closes its files and stops
its processes explicitly, never through a garbage-collected finaliser.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collection() -> None:
    """Once per process: freeze the objects alive at exit, so finalisation skips collecting them."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True
