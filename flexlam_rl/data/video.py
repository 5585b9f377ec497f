"""Video files as action-free LAM data: each file is one episode of RGB frames.

Frames are center-cropped to a square and resized to ``frame_size``. GIFs read with Pillow;
MP4/WebM/AVI need an ffmpeg plugin (``pip install "flexlam-rl[video]"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import VideoError

VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv")
VIDEO_PREFIX = "video:"


def is_video_source(source: str) -> bool:
    return isinstance(source, str) and source.startswith(VIDEO_PREFIX)


def video_files(source: str) -> list[Path]:
    """``video:<file or folder>`` -> the video files it names (sorted), or a clear error."""
    path = Path(source[len(VIDEO_PREFIX):]).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise VideoError(f"Folder {path} holds no video files ({', '.join(VIDEO_SUFFIXES)}).")
        return files
    if not path.is_file():
        raise VideoError(f"Video source {path} does not exist; give a video file or a folder of videos.")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"{path} is not a video file; supported: {', '.join(VIDEO_SUFFIXES)}.")
    return [path]


def to_square_rgb(frame: np.ndarray, frame_size: int) -> np.ndarray:
    """Any [H, W], [H, W, 1|3|4] frame -> center-cropped, resized uint8 [S, S, 3]."""
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise VideoError(f"Unsupported frame shape {arr.shape}; expected [H, W] or [H, W, 1|3|4].")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = arr[top : top + side, left : left + side]
    return np.array(Image.fromarray(crop).resize((frame_size, frame_size), Image.Resampling.BILINEAR), dtype=np.uint8)


def read_frames(path: Path, frame_size: int) -> Iterator[np.ndarray]:
    """Stream a video's frames as uint8 [S, S, 3]; errors say what is wrong with the file."""
    import imageio.v3 as iio

    if path.stat().st_size == 0:
        raise VideoError(f"Video {path} is empty (0 bytes); re-export it or remove it from the data.")
    count = 0
    try:
        for frame in iio.imiter(path):
            count += 1
            yield to_square_rgb(frame, frame_size)
    except VideoError:
        raise
    except Exception as exc:  # imageio/PIL/ffmpeg raise many types for unreadable files
        hint = "" if path.suffix.lower() == ".gif" else ' (MP4/WebM/AVI need: pip install "flexlam-rl[video]")'
        raise VideoError(f"Cannot decode video {path}: {type(exc).__name__}: {exc}. Is the file corrupt?{hint}") from None
    if count < 2:
        raise VideoError(f"Video {path} has {count} frame(s); a transition needs at least 2.")
