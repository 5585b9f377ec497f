"""GIFs of evaluation episodes (imageio; no moviepy needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .checkpoint import atomic_path


def write_gif(frames: Sequence[np.ndarray], path: str | Path, scale: int = 4, duration_ms: int = 120) -> Path | None:
    """RGB frames ``[H, W, 3]`` -> looping GIF, upscaled (nearest) and written atomically.

    Returns ``None`` when there is nothing to draw (no frames, or vector observations).
    """
    import imageio.v3 as iio

    if not frames or np.asarray(frames[0]).ndim != 3:
        return None
    big = [np.repeat(np.repeat(np.asarray(f, dtype=np.uint8), scale, axis=0), scale, axis=1) for f in frames]
    with atomic_path(path, suffix=".tmp.gif") as tmp:  # imageio picks the format from the suffix
        iio.imwrite(tmp, big, duration=duration_ms, loop=0)
    return path
