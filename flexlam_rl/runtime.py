"""Process-level settings for training and scoring on the CPU (what the command-line tools apply at start)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling for it: blocks up to this size come from the heap
TRIM_THRESHOLD = 2**30  # free heap kept before glibc returns any of it to the kernel


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc reuse freed blocks instead of handing them back to the kernel; True if applied (glibc only).

    Why: a LAM's activations at 64x64 are blocks of several MB that are freed after every call. By default glibc
    returns them to the kernel (mmap below its threshold, heap trimming above it) and the kernel zero-fills the
    pages again on the next call: measured on a games LAM's held-out check, up to half its time in the kernel
    (``benchmarks/results/eval_memory``). Freed memory stays with the process up to its peak use, as with
    PyTorch's recommended allocators (jemalloc, tcmalloc); the same settings as environment variables, for any
    Python process: ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824``.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))
