"""Minari episodes (or video files) -> (o_t, o_t+1) transitions, split by episode, batched.

Each source is decoded once, one episode at a time, into a memory-mapped cache (raw
``frames.bin`` + ``arrays.safetensors`` + ``info.json``), so large image datasets are never
fully decoded into RAM and JPEG-encoded datasets or videos are decoded only once. Actions are
kept aside as labels for alignment; LAM pretraining never sees them. A source is a local
Minari dataset id, or ``video:<file or folder>`` (each video is an action-free episode).

Batches are a deterministic function of ``(seed, step)`` (:class:`StepBatchSampler`),
so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import gymnasium as gym
import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Sampler

CACHE_FORMAT = 3
VIDEO_FRAME_SIZE = 64


class DataError(ValueError):
    """A dataset cannot be used as asked; the message says why and what to do."""


def cache_root() -> Path:
    """Decoded-dataset cache: ``$FLEXLAM_RL_CACHE`` or ``~/.cache/flexlam-rl``."""
    return Path(os.environ.get("FLEXLAM_RL_CACHE") or Path.home() / ".cache" / "flexlam-rl")


# --------------------------------------------------------------------------- sources
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


def load_source(source: str, obs_key: str | None = None, video_frame_size: int = VIDEO_FRAME_SIZE) -> SourceArrays:
    """Open a local Minari dataset id or a ``video:`` source, decoding it into the cache on first use."""
    from .video import is_video_source

    if is_video_source(source):
        return _load_video_source(source, video_frame_size)
    from .collect import minari_root, validate_dataset_id

    validate_dataset_id(source)  # ids also arrive from checkpoints: never a path outside the root
    data_path = minari_root() / source / "data"
    if not data_path.is_dir():
        raise DataError(
            f"Minari dataset {source!r} is not in the local Minari root {minari_root()}. Create it with "
            f"`flexlam-collect env=<task> behaviour=<expert|random|noisy> dataset_id={source}`, download it elsewhere "
            f"with `minari download {source}` and copy it there, or point MINARI_DATASETS_PATH at the folder that "
            f"holds it (`minari list local` shows what is there)."
        )
    import minari

    dataset = minari.load_dataset(source)
    main_file = next((p for p in sorted(data_path.iterdir()) if p.name.startswith("main_data")), None)
    stat = main_file.stat() if main_file else None
    fingerprint = {
        "cache_format": CACHE_FORMAT, "dataset_id": source, "obs_key": obs_key,
        "total_steps": int(dataset.total_steps), "total_episodes": int(dataset.total_episodes),
        "file_size": stat.st_size if stat else None, "file_mtime_ns": stat.st_mtime_ns if stat else None,
    }
    cache_dir = _cache_dir(source, fingerprint)
    if not (cache_dir / "info.json").is_file():
        _build_cache(dataset, obs_key, cache_dir, fingerprint)
    return _open_cache(source, cache_dir, dataset.action_space)


def _cache_dir(source: str, fingerprint: dict[str, Any]) -> Path:
    key = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source)[-120:]
    return cache_root() / "datasets" / safe / key


def _load_video_source(source: str, frame_size: int) -> SourceArrays:
    from .video import read_frames, video_files

    from .config import _check_int

    _check_int("video_frame_size", frame_size, 8, 512)
    files = video_files(source)
    fingerprint = {"cache_format": CACHE_FORMAT, "video": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
                   "frame_size": frame_size}
    cache_dir = _cache_dir(source, fingerprint)
    if not (cache_dir / "info.json").is_file():
        with _building(cache_dir) as tmp:
            lengths, total = [], 0
            with open(tmp / "frames.bin", "wb") as out:
                for path in files:
                    count = 0
                    for frame in read_frames(path, frame_size):
                        out.write(frame.tobytes())
                        count += 1
                    lengths.append(count - 1)
                    total += count
            save_file({"episode_lengths": np.asarray(lengths, np.int64), "episode_returns": np.zeros(len(lengths))},
                      str(tmp / "arrays.safetensors"))
            info = dict(fingerprint, obs_shape=[frame_size, frame_size, 3], obs_dtype="uint8", num_frames=total,
                        preprocess={"kind": "identity"}, env_spec_id=None)
            (tmp / "info.json").write_text(json.dumps(info, indent=2))
    return _open_cache(source, cache_dir, None)


@contextlib.contextmanager
def _building(cache_dir: Path) -> Iterator[Path]:
    """Build a cache in a temporary folder, then rename it into place (or keep a parallel job's)."""
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, cache_dir)
        except OSError:
            if not (cache_dir / "info.json").is_file():
                raise  # not a finished cache from a parallel job: a real error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _select_obs(space: gym.Space, obs_key: str | None, dataset_id: str) -> gym.spaces.Box:
    if isinstance(space, gym.spaces.Dict):
        if obs_key is None:
            raise DataError(
                f"Dataset {dataset_id!r} has dict observations with keys {list(space.spaces)}; "
                f"choose one with data.obs_key=<key>."
            )
        if obs_key not in space.spaces:
            raise DataError(f"obs_key {obs_key!r} is not in dataset {dataset_id!r}; keys: {list(space.spaces)}.")
        space = space.spaces[obs_key]
    elif obs_key is not None:
        raise DataError(f"obs_key={obs_key!r} given, but dataset {dataset_id!r} observations are not a dict.")
    if not isinstance(space, gym.spaces.Box):
        raise DataError(f"Dataset {dataset_id!r} observations are {space}; a LAM needs Box images or vectors.")
    shape = space.shape
    is_image = space.dtype == np.uint8 and len(shape) in (2, 3) and min(shape[:2]) >= 8
    if not is_image and len(shape) != 1:
        raise DataError(
            f"Dataset {dataset_id!r} observations have shape {shape} ({space.dtype}): neither uint8 images "
            f"[H, W, C] nor flat vectors [D]. Re-collect with pixel preprocessing (e.g. preprocess.kind=render_rgb)."
        )
    return space


def _image_layout(shape: Sequence[int]) -> tuple[int, ...]:
    return (shape[0], shape[1], 1) if len(shape) == 2 else tuple(shape)


def _build_cache(dataset: Any, obs_key: str | None, cache_dir: Path, fingerprint: dict) -> None:
    dataset_id = fingerprint["dataset_id"]
    space = _select_obs(dataset.observation_space, obs_key, dataset_id)
    is_image = space.dtype == np.uint8 and len(space.shape) in (2, 3)
    obs_shape = _image_layout(space.shape) if is_image else tuple(space.shape)
    dtype = np.uint8 if is_image else np.float32
    total_frames = fingerprint["total_steps"] + fingerprint["total_episodes"]
    action_space = dataset.action_space
    keep_actions = isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box, gym.spaces.MultiDiscrete))

    with _building(cache_dir) as tmp:
        frames = np.memmap(tmp / "frames.bin", mode="w+", dtype=dtype, shape=(total_frames, *obs_shape))
        lengths, returns, actions, cursor = [], [], [], 0
        for episode in dataset.iterate_episodes():
            obs = episode.observations[obs_key] if obs_key is not None else episode.observations
            obs = np.asarray(obs).reshape(len(obs), *obs_shape)
            if len(obs) != len(episode.rewards) + 1:
                raise DataError(f"Episode {episode.id} of {dataset_id!r} has {len(obs)} observations for "
                                f"{len(episode.rewards)} steps; expected steps + 1.")
            if not is_image and not np.all(np.isfinite(obs)):
                raise DataError(f"Episode {episode.id} of {dataset_id!r} has NaN or inf observations; a LAM cannot "
                                f"learn from them. Drop that episode (minari filter_episodes) or re-collect.")
            if cursor + len(obs) > total_frames:
                raise DataError(f"Dataset {dataset_id!r} holds more frames than its metadata says ({total_frames}).")
            frames[cursor : cursor + len(obs)] = obs
            cursor += len(obs)
            lengths.append(len(episode.rewards))
            returns.append(float(np.sum(episode.rewards)))
            if keep_actions:
                actions.append(np.asarray(episode.actions).reshape(len(episode.rewards), *action_space.shape))
        frames.flush()
        del frames
        if cursor != total_frames:
            raise DataError(f"Dataset {dataset_id!r} metadata says {total_frames} frames but episodes hold {cursor}.")
        arrays = {"episode_lengths": np.asarray(lengths, np.int64), "episode_returns": np.asarray(returns, np.float64)}
        if keep_actions and actions:
            act = np.concatenate(actions)
            arrays["actions"] = act.astype(np.int64) if not isinstance(action_space, gym.spaces.Box) else act.astype(np.float32)
        save_file(arrays, str(tmp / "arrays.safetensors"))
        spec = dataset.env_spec
        spec_kwargs = dict(spec.kwargs) if spec is not None else {}
        info = dict(
            fingerprint, obs_shape=list(obs_shape), obs_dtype=np.dtype(dtype).name, num_frames=total_frames,
            preprocess=spec_kwargs.get("preprocess") or {"kind": "identity"},
            env_spec_id=spec.id if spec is not None else None,
        )
        (tmp / "info.json").write_text(json.dumps(info, indent=2))


def _open_cache(source_id: str, cache_dir: Path, action_space: gym.Space | None) -> SourceArrays:
    info = json.loads((cache_dir / "info.json").read_text())
    arrays = load_file(str(cache_dir / "arrays.safetensors"))
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
        preprocess=info.get("preprocess") or {"kind": "identity"},
        env_spec_id=info.get("env_spec_id"),
    )


# ----------------------------------------------------------------------- transitions
class TransitionSet(Dataset):
    """(o_t, o_t+1, a_t, task) for chosen episodes of one or more sources.

    Items are dicts of numpy arrays; :meth:`__getitems__` fetches a whole batch with one
    fancy-index per source (much faster than per-item reads from a memory map).
    """

    def __init__(self, sources: Sequence[SourceArrays], episodes: Sequence[tuple[int, int]]):
        if not sources:
            raise DataError("No data sources given.")
        shapes = {s.obs_shape for s in sources}
        if len(shapes) != 1:
            detail = ", ".join(f"{s.source_id}: {s.obs_shape}" for s in sources)
            raise DataError(f"Datasets disagree on observation shape ({detail}); collect them with the same preprocessing.")
        self.sources = list(sources)
        self.episodes = list(episodes)
        src, frame, action, episode_ids = [], [], [], []
        for s_idx, e_idx in self.episodes:
            source = self.sources[s_idx]
            n = int(source.episode_lengths[e_idx])
            src.append(np.full(n, s_idx, np.int64))
            frame.append(source.frame_starts[e_idx] + np.arange(n))
            action.append(source.action_starts[e_idx] + np.arange(n))
            episode_ids.append(np.full(n, e_idx, np.int64))
        empty = np.zeros(0, np.int64)
        self.source_index = np.concatenate(src) if src else empty
        self.frame_index = np.concatenate(frame) if frame else empty
        self.action_index = np.concatenate(action) if action else empty
        self.episode_index = np.concatenate(episode_ids) if episode_ids else empty

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.sources[0].obs_shape

    @property
    def has_actions(self) -> bool:
        return all(s.actions is not None for s in self.sources)

    def __len__(self) -> int:
        return len(self.frame_index)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        batch = self.__getitems__([index])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        idx = np.asarray(indices, dtype=np.int64)
        src, frame_idx = self.source_index[idx], self.frame_index[idx]
        obs = np.empty((len(idx), *self.obs_shape), dtype=self.sources[0].frames.dtype)
        next_obs = np.empty_like(obs)
        actions = None
        if self.has_actions:
            first = self.sources[0].actions
            actions = np.empty((len(idx), *first.shape[1:]), dtype=first.dtype)
        for s_idx in np.unique(src):
            rows = np.nonzero(src == s_idx)[0]
            source = self.sources[s_idx]
            wanted = frame_idx[rows]
            order = np.argsort(wanted)  # sorted reads are sequential on the memory map
            both = source.frames[np.concatenate([wanted[order], wanted[order] + 1])]
            obs[rows[order]] = both[: len(rows)]
            next_obs[rows[order]] = both[len(rows) :]
            if actions is not None:
                actions[rows] = source.actions[self.action_index[idx[rows]]]
        out = {"obs": obs, "next_obs": next_obs, "task": src}
        if actions is not None:
            out["action"] = actions
        return out

    def subset_episodes(self, keep: Sequence[tuple[int, int]]) -> TransitionSet:
        return TransitionSet(self.sources, keep)


def split_episodes(
    sources: Sequence[SourceArrays], heldout_fraction: float, seed: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Per source, hold out a random ``heldout_fraction`` of episodes (at least one when there are two)."""
    if not 0.0 <= heldout_fraction < 1.0:
        raise DataError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}.")
    train, heldout = [], []
    for s_idx, source in enumerate(sources):
        order = np.random.default_rng([seed, s_idx]).permutation(source.num_episodes)
        n_held = int(math.ceil(heldout_fraction * source.num_episodes)) if heldout_fraction > 0 else 0
        if source.num_episodes >= 2:
            n_held = min(max(n_held, 1 if heldout_fraction > 0 else 0), source.num_episodes - 1)
        else:
            n_held = 0
        heldout += [(s_idx, int(e)) for e in sorted(order[:n_held])]
        train += [(s_idx, int(e)) for e in sorted(order[n_held:])]
    return train, heldout


@dataclass
class TransitionData:
    """Train / held-out transitions of the datasets a LAM is trained on."""

    train: TransitionSet
    heldout: TransitionSet
    dataset_ids: list[str]

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.train.obs_shape

    @property
    def is_image(self) -> bool:
        return len(self.obs_shape) == 3

    @property
    def preprocess(self) -> dict[str, Any]:
        """Observation preprocessing of the first dataset (all share the frame layout)."""
        return dict(self.train.sources[0].preprocess)

    def obs_stats(self, max_items: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean/std of training observations (used to standardize vectors)."""
        n = len(self.train)
        idx = np.arange(n) if n <= max_items else np.sort(np.random.default_rng(0).choice(n, max_items, replace=False))
        obs = self.train.__getitems__(idx)["obs"].reshape(len(idx), -1).astype(np.float64)
        return obs.mean(0), obs.std(0) + 1e-6


def load_transitions(
    dataset_ids: Sequence[str] | str,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    obs_key: str | None = None,
    video_frame_size: int = VIDEO_FRAME_SIZE,
) -> TransitionData:
    """Open datasets by id (or ``video:`` sources) and split their episodes into train / held-out transitions."""
    ids = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    if not ids:
        raise DataError("No dataset ids given; set data.datasets=[<minari id>, ...].")
    sources = [load_source(i, obs_key, video_frame_size) for i in ids]
    train_eps, held_eps = split_episodes(sources, heldout_fraction, seed)
    train = TransitionSet(sources, train_eps)
    if len(train) == 0:
        raise DataError(f"Datasets {ids} hold no training transitions (episodes of length 0?).")
    return TransitionData(train, TransitionSet(sources, held_eps), ids)


# -------------------------------------------------------------------------- batching
class StepBatchSampler(Sampler[list[int]]):
    """Yields the batch of each optimizer step ``start..start+num_steps-1``.

    Epoch ``e`` visits the data in a permutation seeded by ``(seed, e)``; step ``s`` takes
    positions ``[s*B, (s+1)*B)`` of the concatenated epochs. No state to save: a resumed
    run rebuilds the sampler at its step and gets the same batches.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int, num_steps: int):
        if num_items <= 0:
            raise DataError("Cannot sample batches from an empty transition set.")
        self.n, self.batch_size, self.seed = num_items, batch_size, seed
        self.start, self.num_steps = start_step, num_steps
        self._epoch, self._perm = -1, np.zeros(0, np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perm

    def batch_for_step(self, step: int) -> list[int]:
        out, pos = [], step * self.batch_size
        while len(out) < self.batch_size:
            epoch, offset = divmod(pos, self.n)
            take = min(self.batch_size - len(out), self.n - offset)
            out.extend(self._permutation(epoch)[offset : offset + take].tolist())
            pos += take
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.start + self.num_steps):
            yield self.batch_for_step(step)

    def __len__(self) -> int:
        return self.num_steps


def _passthrough(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def step_loader(
    data: TransitionSet, batch_size: int, seed: int, start_step: int, num_steps: int, num_workers: int = 0
) -> DataLoader:
    """DataLoader over the deterministic per-step batches (see :class:`StepBatchSampler`)."""
    sampler = StepBatchSampler(len(data), batch_size, seed, start_step, num_steps)
    return DataLoader(
        data, batch_sampler=sampler, collate_fn=_passthrough, num_workers=num_workers,
        persistent_workers=False, prefetch_factor=4 if num_workers > 0 else None,
    )


def eval_batches(data: TransitionSet, batch_size: int = 256, limit: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Sequential batches for evaluation (optionally the first ``limit`` transitions)."""
    n = len(data) if limit is None else min(limit, len(data))
    for start in range(0, n, batch_size):
        yield _passthrough(data.__getitems__(range(start, min(start + batch_size, n))))
