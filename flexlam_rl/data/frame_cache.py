"""The frame cache: each source decoded once into a memory-mapped ``frames.bin`` beside its arrays and header.

A cache is built in a temporary folder and renamed into place (a parallel job's finished cache is kept);
every open checks the frame file's size against the header and a checksum, and a damaged cache is rebuilt
from its source. Which sources there are and where their caches live: :mod:`flexlam_rl.data.sources`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from safetensors.numpy import load_file

from ..envs.pixels import recorded_preprocess

CACHE_FORMAT = 4  # 4: info.json records the frame file's size and a checksum, verified on every open
CHECKSUM_BLOCK = 1 << 20  # bytes hashed at each end of frames.bin (with all of arrays.safetensors)


class CacheDamaged(Exception):
    """A frame cache failed its checks on open; it is rebuilt from its source (internal, never shown to users)."""


@dataclass
class SourceArrays:
    """One decoded dataset: frames on disk (memory-mapped), bookkeeping in RAM."""

    source_id: str
    frames_path: Path
    obs_shape: tuple[int, ...]
    obs_dtype: str
    num_frames: int
    episode_lengths: np.ndarray  # [E] transitions per episode
    episode_returns: np.ndarray  # [E]
    actions: np.ndarray | None  # [S] or [S, A]; None when the source has no usable actions
    action_space: gym.Space | None
    preprocess: dict[str, Any] = field(default_factory=lambda: {"kind": "identity"})
    env_spec_id: str | None = None  # Gymnasium id the data was collected in, when recorded
    _frames: np.ndarray | None = field(default=None, repr=False)

    @property
    def frames(self) -> np.ndarray:
        """``[F, *obs_shape]`` memory map; opened lazily so DataLoader workers reopen it."""
        if self._frames is None:
            self._frames = np.memmap(self.frames_path, dtype=np.dtype(self.obs_dtype), mode="r",
                                     shape=(self.num_frames, *self.obs_shape))
        return self._frames

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_frames"] = None  # never pickle the mapped data into workers
        return state

    @property
    def num_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def frame_starts(self) -> np.ndarray:
        """Index of each episode's first frame (episodes hold length + 1 frames)."""
        sizes = self.episode_lengths + 1
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @property
    def action_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)

    @property
    def is_image(self) -> bool:
        return len(self.obs_shape) == 3

    def describe(self) -> str:
        """One line for error messages: the id, the observation layout and the actions."""
        return (f"{self.source_id!r} (observations {list(self.obs_shape)} {self.obs_dtype}, "
                f"actions {self.action_space if self.action_space is not None else 'none'})")


def cached(source: str, cache_dir: Path, action_space: gym.Space | None, build: Any) -> SourceArrays:
    """Open the cache at ``cache_dir``, building it first if it is missing and rebuilding it if it is damaged."""
    if (cache_dir / "info.json").is_file():
        try:
            return open_cache(source, cache_dir, action_space)
        except CacheDamaged as damage:
            import sys

            print(f"flexlam-rl: the frame cache of {source} at {cache_dir} is damaged ({damage}); rebuilding it from the "
                  f"source.", file=sys.stderr)
            shutil.rmtree(cache_dir, ignore_errors=True)
    build()
    return open_cache(source, cache_dir, action_space)


@contextlib.contextmanager
def building(cache_dir: Path) -> Iterator[Path]:
    """Build a cache in a temporary folder, then rename it into place (or keep a parallel job's)."""
    from ..checkpoint import normal_permissions

    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir.parent))
    try:
        yield tmp
        normal_permissions(tmp)  # mkdtemp and safetensors write 0700 / 0600
        try:
            os.rename(tmp, cache_dir)
        except OSError:
            if not (cache_dir / "info.json").is_file():
                raise  # not a finished cache from a parallel job: a real error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def checksum(cache_dir: Path) -> str:
    """blake2b of the first and last ``CHECKSUM_BLOCK`` bytes of frames.bin and all of arrays.safetensors."""
    digest = hashlib.blake2b(digest_size=16)
    frames = cache_dir / "frames.bin"
    size = frames.stat().st_size
    with open(frames, "rb") as handle:
        digest.update(handle.read(CHECKSUM_BLOCK))
        handle.seek(max(0, size - CHECKSUM_BLOCK))
        digest.update(handle.read(CHECKSUM_BLOCK))
    digest.update((cache_dir / "arrays.safetensors").read_bytes())
    return digest.hexdigest()


def write_info(tmp: Path, info: dict[str, Any]) -> None:
    info = dict(info, frames_bytes=(tmp / "frames.bin").stat().st_size, checksum=checksum(tmp))
    (tmp / "info.json").write_text(json.dumps(info, indent=2))


def open_cache(source_id: str, cache_dir: Path, action_space: gym.Space | None) -> SourceArrays:
    """Open a built cache after checking it: the frame file's size against the header, then the checksum."""
    try:
        info = json.loads((cache_dir / "info.json").read_text())
        expected = int(info["num_frames"]) * math.prod(info["obs_shape"]) * np.dtype(info["obs_dtype"]).itemsize
        size = (cache_dir / "frames.bin").stat().st_size
        if size != expected or size != info["frames_bytes"]:
            raise CacheDamaged(f"frames.bin holds {size} bytes, its header says {expected}")
        if checksum(cache_dir) != info["checksum"]:
            raise CacheDamaged("its checksum does not match")
        arrays = load_file(str(cache_dir / "arrays.safetensors"))
    except CacheDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:  # missing files, bad JSON, unreadable safetensors
        raise CacheDamaged(f"{type(exc).__name__}: {exc}") from None
    return SourceArrays(
        source_id=source_id,
        frames_path=cache_dir / "frames.bin",
        obs_shape=tuple(info["obs_shape"]),
        obs_dtype=info["obs_dtype"],
        num_frames=int(info["num_frames"]),
        episode_lengths=arrays["episode_lengths"],
        episode_returns=arrays["episode_returns"],
        actions=arrays.get("actions"),
        action_space=action_space if "actions" in arrays else None,
        preprocess=dict(recorded_preprocess(info.get("preprocess") or {"kind": "identity"})),
        env_spec_id=info.get("env_spec_id"),
    )
