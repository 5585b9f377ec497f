"""GIFs of evaluation episodes (imageio; no moviepy needed)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np


def write_gif(frames: Sequence[np.ndarray], path: str | Path, scale: int = 4, duration_ms: int = 120) -> Path | None:
    """RGB frames ``[H, W, 3]`` -> looping GIF, upscaled (nearest) and written atomically.

    Returns ``None`` when there is nothing to draw (no frames, or vector observations).
    """
    import imageio.v3 as iio

    if not frames or np.asarray(frames[0]).ndim != 3:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    big = [np.repeat(np.repeat(np.asarray(f, dtype=np.uint8), scale, axis=0), scale, axis=1) for f in frames]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".gif", dir=path.parent)
    os.close(fd)
    try:
        iio.imwrite(tmp, big, duration=duration_ms, loop=0)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
