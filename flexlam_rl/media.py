"""GIFs of evaluation episodes (imageio; no moviepy needed) and the pyplot every figure is drawn with."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display on a server or in CI). matplotlib's INFO lines
    (a fresh HOME's "generated new fontManager") are kept out of a run's output: Hydra logs INFO to stdout."""
    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rgb_frame(frame: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` -> RGB ``[H, W, 3]`` for display: a stack shows its newest frame (the last 3 channels of
    stacked RGB, the last channel of stacked grayscale, repeated to RGB)."""
    if frame.shape[-1] % 3 == 0:
        return frame[..., -3:]
    return np.repeat(frame[..., -1:], 3, axis=-1)


def rgb_frames(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W, C]`` frames -> ``[N, H, W, 3]`` RGB, each as :func:`rgb_frame` shows it."""
    return np.stack([rgb_frame(f) for f in frames])


def write_gif(frames: Sequence[np.ndarray], path: str | Path, scale: int = 4, duration_ms: int = 120) -> Path | None:
    """Frames ``[H, W, C]`` -> looping RGB GIF (see :func:`rgb_frame`), upscaled (nearest) and written atomically.

    Returns ``None`` when there is nothing to draw (no frames, or vector observations).
    """
    import imageio.v3 as iio

    if not frames or np.asarray(frames[0]).ndim != 3:
        return None
    big = [np.repeat(np.repeat(rgb_frame(np.asarray(f, dtype=np.uint8)), scale, axis=0), scale, axis=1) for f in frames]
    with atomic_path(path, suffix=".tmp.gif") as tmp:  # imageio picks the format from the suffix
        iio.imwrite(tmp, big, duration=duration_ms, loop=0)
    return path
