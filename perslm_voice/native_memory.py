"""Fewer malloc arenas, so that a long voice session does not keep growing.

glibc gives each thread that allocates its own arena, up to 8 per core. A voice session runs
Whisper, the VAD, Piper and the echo checks on worker threads, each allocating and freeing buffers
of many sizes; with an arena per thread, the freed memory stays scattered across them and the
process grows turn after turn. Measured with ``scripts/soak.py --turns 40 --voice 12`` (talked
over, in the echo room): resident memory grew 37 MB over 29 turns with glibc's default arenas,
and 4.6 MB over 31 turns with two (``MALLOC_ARENA_MAX=2``); the typed-only path stayed flat both
ways. The cost is some lock contention inside malloc, not measurable beside model inference.

``MALLOC_ARENA_MAX`` set by the user wins; elsewhere than glibc (macOS, musl, Windows) nothing
is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

ARENAS = 2
M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the rest of the process (call it before threads start).
    True when the cap was set here."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc: at most %d arenas (%s)", arenas, "set" if done else "refused")
    return done
