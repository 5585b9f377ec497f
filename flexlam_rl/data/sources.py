"""Action-free data sources: local Minari datasets and video files, decoded once into a frame cache.

Each source is decoded once, one episode at a time, into a memory-mapped cache (raw
``frames.bin`` + ``arrays.safetensors`` + ``info.json``), so large image datasets are never
fully decoded into RAM and JPEG-encoded datasets or videos are decoded only once. Actions are
kept aside as labels for alignment; LAM pretraining never sees them. A source is a local
Minari dataset id, or ``video:<file or folder>`` (each video is an action-free episode).
The Minari root and dataset-id helpers live here too: every other module goes through them.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from safetensors.numpy import save_file

from ..config import check_int
from ..errors import DataError
from .frame_cache import CACHE_FORMAT, SourceArrays, building, cached, write_info

VIDEO_FRAME_SIZE = 64


def cache_root() -> Path:
    """Decoded-dataset cache: ``$FLEXLAM_RL_CACHE`` or ``~/.cache/flexlam-rl``."""
    return Path(os.environ.get("FLEXLAM_RL_CACHE") or Path.home() / ".cache" / "flexlam-rl")


# ------------------------------------------------------------------- Minari ids
def minari_root() -> Path:
    """Where Minari keeps local datasets: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``."""
    from minari.storage import get_dataset_path

    return get_dataset_path()


def validate_dataset_id(dataset_id: str) -> str:
    """Check the ``namespace/name-vN`` form with Minari's own parser, before anything touches the disk.

    Minari's grammar has no dots and no leading slash, so an id (which also arrives from checkpoints)
    can never name a path outside the root; we additionally require the version.
    """
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        _, _, version = parse_dataset_id(dataset_id)
    except (ValueError, TypeError):  # TypeError: Minari's own int(None) for an id without a version
        version = None
    if version is None:
        raise DataError(
            f"Invalid Minari dataset id {dataset_id!r}: use 'namespace/name-vN' with letters, digits, "
            f"'-' or '_' (no dots), ending in a version, e.g. 'flexlam/minigrid-doorkey/expert-v0'."
        )
    return dataset_id


def dataset_exists(dataset_id: str) -> bool:
    return (minari_root() / validate_dataset_id(dataset_id) / "data").is_dir()


def dataset_preprocess(dataset_id: str) -> dict[str, Any]:
    """The observation preprocessing a local dataset was collected with (its env spec's record, read as it was
    meant then: :func:`~flexlam_rl.envs.pixels.recorded_preprocess`), normalized; identity when none is recorded."""
    from ..envs.pixels import recorded_preprocess, validate_preprocess

    spec = _open_minari(validate_dataset_id(dataset_id)).env_spec
    return validate_preprocess(recorded_preprocess((dict(spec.kwargs) if spec is not None else {}).get("preprocess")))


def default_dataset_id(env: str, behaviour: str, epsilon: float | None = None, version: int = 0) -> str:
    """``flexlam/<env>/<behaviour>-v0``; noisy data carries its epsilon (``noisy50``)."""
    name = behaviour if behaviour != "noisy" or epsilon is None else f"noisy{int(round(epsilon * 100))}"
    return f"flexlam/{env.replace('/', '-').lower()}/{name}-v{version}"


# ---------------------------------------------------------------------- sources
def local_dataset_ids(max_depth: int = 4) -> list[str]:
    """The dataset ids under the local Minari root (folders holding ``data/``), for "did you mean" suggestions."""
    root = minari_root()
    found: list[str] = []
    level = [root] if root.is_dir() else []
    for _ in range(max_depth):
        level = [child for folder in level for child in sorted(folder.iterdir()) if child.is_dir() and child.name != "data"]
        found += [str(folder.relative_to(root)) for folder in level if (folder / "data").is_dir()]
    return found


def load_source(source: str, obs_key: str | None = None, video_frame_size: int = VIDEO_FRAME_SIZE) -> SourceArrays:
    """Open a local Minari dataset id or a ``video:`` source, decoding it into the cache on first use."""
    from .video import is_video_source

    if is_video_source(source):
        return _load_video_source(source, video_frame_size)
    validate_dataset_id(source)  # ids also arrive from checkpoints: never a path outside the root
    data_path = minari_root() / source / "data"
    if not data_path.is_dir():
        close = difflib.get_close_matches(source, local_dataset_ids(), n=1, cutoff=0.8)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        elsewhere = ("" if source.startswith("flexlam/") else  # flexlam-collect's ids exist only where they were collected
                     f"download it elsewhere with `minari download {source}` and copy it there, ")
        raise DataError(
            f"Minari dataset {source!r} is not in the local Minari root {minari_root()}. {hint}Create it with "
            f"`flexlam-collect env=<task> behaviour=<expert|random|noisy> dataset_id={source}`, {elsewhere}or point "
            f"MINARI_DATASETS_PATH at the folder that holds it (`minari list local` shows what is there)."
        )
    dataset = _open_minari(source)
    main_file = next((p for p in sorted(data_path.iterdir()) if p.name.startswith("main_data")), None)
    stat = main_file.stat() if main_file else None
    fingerprint = {
        "cache_format": CACHE_FORMAT, "dataset_id": source, "obs_key": obs_key,
        "total_steps": int(dataset.total_steps), "total_episodes": int(dataset.total_episodes),
        "file_size": stat.st_size if stat else None, "file_mtime_ns": stat.st_mtime_ns if stat else None,
    }
    cache_dir = _cache_dir(source, fingerprint)
    return cached(source, cache_dir, dataset.action_space, lambda: _build_cache(dataset, obs_key, cache_dir, fingerprint))


def _open_minari(source: str) -> Any:
    """``minari.load_dataset``, with a clear error for a truncated, corrupt or half-copied dataset."""
    import minari

    try:
        dataset = minari.load_dataset(source)
        _ = dataset.total_steps, dataset.total_episodes, dataset.observation_space, dataset.action_space
        _read_raw_frames_as_stored(dataset)
        return dataset
    except Exception as exc:  # h5py, pyarrow, JSON and Minari's own errors all mean the same thing here
        raise DataError(_broken_dataset(source, exc)) from None


def _read_raw_frames_as_stored(dataset: Any) -> None:
    """Minari 0.5.4+ JPEG-decodes the frames of any dataset without a ``jpeg_encoding`` record; flexlam-rl wrote its
    0.5.3 datasets (numpy<2: the procgen extra) with frames stored raw and no record. Frames stored as uint8 arrays
    are read as they are, so a dataset collected in one environment loads in the other."""
    storage = getattr(dataset, "storage", None)
    if not getattr(storage, "_jpeg_encoding", False) or "jpeg_encoding" in storage.metadata:
        return
    path = Path(storage.data_path) / "main_data.hdf5"
    if not path.is_file():
        return
    import h5py

    with h5py.File(path, "r") as f:
        first = next(iter(f.values()), None)
        obs = first.get("observations") if isinstance(first, h5py.Group) else None
        if isinstance(obs, h5py.Dataset) and obs.dtype == np.uint8 and obs.ndim >= 3:
            storage._jpeg_encoding = False


def _broken_dataset(source: str, exc: Exception) -> str:
    if "does not support the dataset generated by Minari" in str(exc):  # a newer Minari wrote it: nothing is broken
        import minari

        return (f"Minari dataset {source!r} at {minari_root() / source} was written by a newer Minari than the installed "
                f"{minari.__version__} ({exc}). Read it where that Minari is installed (the procgen extra holds numpy<2 "
                f"and with it Minari 0.5.3; a venv without it gets the newest), or re-collect it here "
                f"(`flexlam-collect ... dataset_id={source} if_exists=overwrite`).")
    return (f"Minari dataset {source!r} at {minari_root() / source} cannot be read ({type(exc).__name__}: {exc}); its files "
            f"are truncated, corrupt or incomplete. Re-collect it (`flexlam-collect ... dataset_id={source} "
            f"if_exists=overwrite`) or download it again (`minari download {source}`).")


def _cache_dir(source: str, fingerprint: dict[str, Any]) -> Path:
    key = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source)[-120:]
    return cache_root() / "datasets" / safe / key


def _load_video_source(source: str, frame_size: int) -> SourceArrays:
    from .video import read_frames, video_files

    check_int("video_frame_size", frame_size, 8, 512)
    files = video_files(source)
    fingerprint = {"cache_format": CACHE_FORMAT, "video": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
                   "frame_size": frame_size}
    cache_dir = _cache_dir(source, fingerprint)

    def build() -> None:
        with building(cache_dir) as tmp:
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
            write_info(tmp, info)

    return cached(source, cache_dir, None, build)


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

    with building(cache_dir) as tmp:
        frames = np.memmap(tmp / "frames.bin", mode="w+", dtype=dtype, shape=(total_frames, *obs_shape))
        lengths, returns, actions, cursor = [], [], [], 0
        for episode in _episodes(dataset, dataset_id):
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
        write_info(tmp, info)


@contextlib.contextmanager
def minari_frames(jpeg: bool = False) -> Iterator[dict[str, bool]]:
    """Inside: Minari writes and reads pixel frames exactly (``jpeg=False``); yields the keyword to pass to
    ``create_dataset_from_buffers``.

    Minari 0.5.4+ has ``jpeg_encoding``. Minari 0.5.3, what numpy<2 resolves to (the procgen extra pins it),
    has none: its HDF5 writer JPEG-encodes every uint8 frame (lossy, and it fails on 1-channel frames) and its
    reader JPEG-decodes every image space of 32 px or more. There, both tests are switched off inside, so
    frames are stored and read back as the arrays they are (a plain ``minari.load_dataset`` on 0.5.3 would
    then try to JPEG-decode them; flexlam-rl's readers do not).
    """
    import minari

    if "jpeg_encoding" in inspect.signature(minari.create_dataset_from_buffers).parameters:
        yield {"jpeg_encoding": jpeg}
        return
    from minari.dataset._storages import hdf5_storage

    saved = hdf5_storage._is_image, hdf5_storage.is_image_space
    if not jpeg:
        hdf5_storage._is_image = hdf5_storage.is_image_space = lambda _: False
    try:
        yield {}
    finally:
        hdf5_storage._is_image, hdf5_storage.is_image_space = saved


def _episodes(dataset: Any, dataset_id: str) -> Iterator[Any]:
    """The dataset's episodes, frames exact (:func:`minari_frames`); a read error mid-way (a truncated file)
    becomes a clear error."""
    with minari_frames():
        iterator = iter(dataset.iterate_episodes())
        while True:
            try:
                episode = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                raise DataError(_broken_dataset(dataset_id, exc)) from None
            yield episode
