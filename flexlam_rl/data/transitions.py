"""Sources -> (o_t, o_t+1) transitions, split by episode, and the batches of each training step.

Batches are a deterministic function of ``(seed, step)`` (:class:`StepBatchSampler`),
so a resumed run sees exactly the batches an uninterrupted one would. Where the frames come
from (Minari datasets, videos, the frame cache) is :mod:`flexlam_rl.data.sources`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import parse_config
from ..errors import DataError
from .sources import VIDEO_FRAME_SIZE, SourceArrays, load_source


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
        src, frame, action, episode_ids, starts = [], [], [], [], []
        for s_idx, e_idx in self.episodes:
            source = self.sources[s_idx]
            n = int(source.episode_lengths[e_idx])
            src.append(np.full(n, s_idx, np.int64))
            frame.append(source.frame_starts[e_idx] + np.arange(n))
            starts.append(np.full(n, source.frame_starts[e_idx], np.int64))
            action.append(source.action_starts[e_idx] + np.arange(n))
            episode_ids.append(np.full(n, e_idx, np.int64))
        empty = np.zeros(0, np.int64)
        self.source_index = np.concatenate(src) if src else empty
        self.frame_index = np.concatenate(frame) if frame else empty
        self.action_index = np.concatenate(action) if action else empty
        self.episode_index = np.concatenate(episode_ids) if episode_ids else empty
        self.episode_start = np.concatenate(starts) if starts else empty  # frame index of each transition's episode start

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

    def _checked(self, indices: Sequence[int]) -> np.ndarray:
        """Transition indices as an int64 array; out-of-range ones are a clear error, not numpy's IndexError
        (or, for negative ones, a silent read from the end)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))]
            raise DataError(f"Transition indices must be in 0..{len(self) - 1} (this set has {len(self)} transitions), got "
                            f"{bad[:5].tolist()}; pick indices from range(len(data)).")
        return idx

    def _frames(self, src: np.ndarray, frame_idx: np.ndarray) -> np.ndarray:
        """Frames ``frame_idx`` of sources ``src`` (one fancy-index per source, in sorted order: sequential reads
        on the memory map)."""
        out = np.empty((len(frame_idx), *self.obs_shape), dtype=self.sources[0].frames.dtype)
        for s_idx in np.unique(src):
            rows = np.nonzero(src == s_idx)[0]
            order = np.argsort(frame_idx[rows])
            out[rows[order]] = self.sources[s_idx].frames[frame_idx[rows][order]]
        return out

    def __getitems__(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        idx = self._checked(indices)
        src, frame_idx = self.source_index[idx], self.frame_index[idx]
        both = self._frames(np.concatenate([src, src]), np.concatenate([frame_idx, frame_idx + 1]))
        out = {"obs": both[: len(idx)], "next_obs": both[len(idx) :], "task": src}
        if self.has_actions:
            out["action"] = self.actions(idx)
        return out

    def stacked_obs(self, indices: Sequence[int], frame_stack: int) -> np.ndarray:
        """o_t with the ``frame_stack - 1`` frames before it as channels, oldest first: ``[N, H, W, n * C]``; frames
        before the episode's start are zeros. What a policy sees of an env wrapped by
        :func:`~flexlam_rl.envs.pixels.stack_frames` (SB3's ``VecFrameStack`` stacks and pads the same way)."""
        idx = self._checked(indices)
        if frame_stack == 1:
            return self.__getitems__(idx)["obs"]
        src, frame_idx, start = self.source_index[idx], self.frame_index[idx], self.episode_start[idx]
        parts = []
        for back in range(frame_stack - 1, -1, -1):
            wanted = frame_idx - back
            part = np.zeros((len(idx), *self.obs_shape), dtype=self.sources[0].frames.dtype)
            inside = wanted >= start
            part[inside] = self._frames(src[inside], wanted[inside])
            parts.append(part)
        return np.concatenate(parts, axis=-1)

    def actions(self, indices: Sequence[int]) -> np.ndarray:
        """The actions of transitions ``indices``, without reading their frames."""
        if not self.has_actions:
            raise DataError("These transitions have no actions (action-free data); label some or use a dataset with actions.")
        idx = self._checked(indices)
        first = self.sources[0].actions
        out = np.empty((len(idx), *first.shape[1:]), dtype=first.dtype)
        for s_idx in np.unique(self.source_index[idx]):
            rows = np.nonzero(self.source_index[idx] == s_idx)[0]
            out[rows] = self.sources[s_idx].actions[self.action_index[idx[rows]]]
        return out

    def names(self, indices: Sequence[int]) -> list[str]:
        """One name per transition that is the same in any split or subset: ``<dataset id>#<frame index>``."""
        idx = self._checked(indices)
        return [f"{self.sources[s].source_id}#{f}" for s, f in zip(self.source_index[idx].tolist(), self.frame_index[idx].tolist())]

    def subset_episodes(self, keep: Sequence[tuple[int, int]]) -> TransitionSet:
        return TransitionSet(self.sources, keep)

    def subset_sources(self, keep: Sequence[str] | set[str]) -> TransitionSet:
        """The episodes of this set that come from the sources (dataset ids) in ``keep``."""
        wanted = {i for i, source in enumerate(self.sources) if source.source_id in set(keep)}
        return self.subset_episodes([(s, e) for s, e in self.episodes if s in wanted])


def require_frames(data: TransitionSet, obs_shape: Sequence[int], owner: str) -> None:
    """Refuse data whose observations a model cannot read: the one check every entry point makes."""
    if tuple(data.obs_shape) != tuple(obs_shape):
        ids = [s.source_id for s in data.sources]
        raise DataError(f"Datasets {ids} have observations {list(data.obs_shape)}, but {owner} expects {list(obs_shape)}; "
                        f"use data collected with the same preprocessing (frame size, grayscale, frame stack).")


def split_episodes(
    sources: Sequence[SourceArrays], heldout_fraction: float, seed: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Per source, hold out a random ``heldout_fraction`` of episodes (at least one when there are two).

    A source's split depends only on its id, the fraction and ``seed``, never on which other
    sources are loaded beside it or in what order: the episodes a LAM held out stay held out
    when the same dataset is loaded again for labels or evaluation.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise DataError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}.")
    return split_off_episodes([(s_idx, e) for s_idx, source in enumerate(sources) for e in range(source.num_episodes)],
                      sources, heldout_fraction, [seed])


def split_off_episodes(episodes: Sequence[tuple[int, int]], sources: Sequence[SourceArrays], fraction: float,
                       stream: list[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Per source, a random ``fraction`` of its ``episodes`` (at least one of two or more, never all), drawn from
    a stream keyed by the source's id: ``(kept, split off)``."""
    kept, taken = [], []
    for s_idx, source in enumerate(sources):
        mine = np.array([e for s, e in episodes if s == s_idx], dtype=np.int64)
        id_key = int.from_bytes(hashlib.sha1(source.source_id.encode()).digest()[:8], "little")
        order = mine[np.random.default_rng([*stream, id_key]).permutation(len(mine))]
        n_take = int(math.ceil(fraction * len(mine))) if fraction > 0 else 0
        n_take = min(max(n_take, 1 if fraction > 0 else 0), len(mine) - 1) if len(mine) >= 2 else 0
        taken += [(s_idx, int(e)) for e in sorted(order[:n_take])]
        kept += [(s_idx, int(e)) for e in sorted(order[n_take:])]
    return kept, taken


@dataclass
class TransitionData:
    """Train / held-out transitions of the datasets a LAM is trained on, and optionally a validation split.

    ``validation`` (episodes taken out of training) is what early stopping reads, so the held-out split the
    final scores read never decided when training stopped. Without one, checks read the held-out split.
    """

    train: TransitionSet
    heldout: TransitionSet
    dataset_ids: list[str]
    validation: TransitionSet | None = None

    @property
    def checks(self) -> TransitionSet:
        """Where held-out checks during training (curves, the plateau rule) are scored."""
        return self.validation if self.validation is not None and len(self.validation) else self.heldout

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
    validation_fraction: float = 0.0,
) -> TransitionData:
    """Open datasets by id (or ``video:`` sources) and split their episodes into train / held-out transitions
    (and a validation split of ``validation_fraction`` of the training episodes, see :func:`split_sources`)."""
    ids = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    if not ids:
        raise DataError("No dataset ids given; set data.datasets=[<minari id>, ...].")
    return split_sources([load_source(i, obs_key, video_frame_size) for i in ids], heldout_fraction, seed, validation_fraction)


def split_sources(sources: Sequence[SourceArrays], heldout_fraction: float = 0.1, seed: int = 0,
                  validation_fraction: float = 0.0) -> TransitionData:
    """Already opened sources -> train / held-out transitions (see :func:`split_episodes`); with
    ``validation_fraction > 0`` that share of each source's training episodes becomes the validation split.
    The held-out split never depends on ``validation_fraction``."""
    ids = [s.source_id for s in sources]
    if not 0.0 <= validation_fraction < 1.0:
        raise DataError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    train_eps, held_eps = split_episodes(sources, heldout_fraction, seed)
    train_eps, val_eps = split_off_episodes(train_eps, sources, validation_fraction, [seed, 1])
    train = TransitionSet(sources, train_eps)
    if len(train) == 0:
        raise DataError(f"Datasets {ids} hold no training transitions (episodes of length 0?).")
    return TransitionData(train, TransitionSet(sources, held_eps), ids, TransitionSet(sources, val_eps) if val_eps else None)


@dataclass
class DataConfig:
    """What a LAM trains on (the Hydra ``data`` group): sources, observation key, split."""

    datasets: list[str]
    obs_key: str | None = None
    video_frame_size: int = VIDEO_FRAME_SIZE  # video:<file|folder> sources: square frames of this size
    heldout_fraction: float = 0.1  # fraction of episodes held out, per dataset
    split_seed: int = 0
    validation_fraction: float = 0.0  # of the training episodes, per dataset: what held-out checks and the plateau read

    def __post_init__(self) -> None:
        if isinstance(self.datasets, str):  # data.datasets=one/id-v0 (no brackets) means one dataset
            self.datasets = [self.datasets]
        if not isinstance(self.datasets, list) or not self.datasets or not all(isinstance(d, str) for d in self.datasets):
            raise DataError(f"data.datasets must be a non-empty list of dataset ids, got {self.datasets!r}; "
                            f"e.g. data.datasets=[flexlam/minigrid-doorkey/noisy50-v0].")

    @classmethod
    def from_dict(cls, values: Any) -> DataConfig:
        return parse_config(cls, values, "data")

    def load(self) -> TransitionData:
        return load_transitions(self.datasets, self.heldout_fraction, self.split_seed, self.obs_key, self.video_frame_size,
                                self.validation_fraction)


# -------------------------------------------------------------------------- batching
class StepBatchSampler(Sampler[list[int]]):
    """Yields the batch of each optimizer step ``start..start+num_steps-1``.

    Epoch ``e`` visits the data in a permutation seeded by ``(seed, e)``; step ``s`` takes
    positions ``[s*B, (s+1)*B)`` of the concatenated epochs. No state to save: a resumed
    run rebuilds the sampler at its step and gets the same batches.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int, num_steps: int,
                 shard: slice = slice(None)):
        if num_items <= 0:
            raise DataError("Cannot sample batches from an empty transition set.")
        self.n, self.batch_size, self.seed = num_items, batch_size, seed
        self.start, self.num_steps, self.shard = start_step, num_steps, shard
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
            yield self.batch_for_step(step)[self.shard]  # a data-parallel process takes its slice of the global batch

    def __len__(self) -> int:
        return self.num_steps


def _passthrough(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def step_loader(
    data: TransitionSet, batch_size: int, seed: int, start_step: int, num_steps: int, num_workers: int = 0,
    shard: slice = slice(None),
) -> DataLoader:
    """DataLoader over the deterministic per-step batches (see :class:`StepBatchSampler`); ``shard``: this
    process's rows of each global batch."""
    sampler = StepBatchSampler(len(data), batch_size, seed, start_step, num_steps, shard)
    return DataLoader(
        data, batch_sampler=sampler, collate_fn=_passthrough, num_workers=num_workers,
        persistent_workers=False, prefetch_factor=4 if num_workers > 0 else None,
    )


def eval_batches(data: TransitionSet, batch_size: int = 256, limit: int | None = None,
                 indices: Sequence[int] | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Batches for evaluation, in order: every transition, the first ``limit``, or the ``indices`` given."""
    order = np.arange(len(data) if limit is None else min(limit, len(data))) if indices is None else np.asarray(indices)
    for start in range(0, len(order), batch_size):
        yield _passthrough(data.__getitems__(order[start : start + batch_size]))
