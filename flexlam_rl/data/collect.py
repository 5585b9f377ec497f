"""Record episodes of a behaviour into a real local Minari dataset, atomically.

Minari's ``DataCollector`` needs JAX (``minari[create]``), so episodes are built as
``EpisodeBuffer``s here and written with ``minari.create_dataset_from_buffers`` - the
same on-disk dataset, listed by ``minari list local`` and loadable by
``minari.load_dataset(id)`` anywhere. The dataset is written under a hidden temporary
root inside the Minari root and renamed into place, so a crash never leaves a
half-written dataset that would break ``list_local_datasets()`` or block the id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import Episodes
from ..envs import get_task, make_behaviour
from ..errors import DataError, DatasetExistsError
from .sources import dataset_exists, dataset_preprocess, default_dataset_id, minari_frames, minari_root, validate_dataset_id


@contextlib.contextmanager
def dataset_lock(dataset_id: str) -> Iterator[None]:
    """An exclusive inter-process lock per dataset id (a lock file beside the datasets, via ``filelock``)."""
    from filelock import FileLock

    root = minari_root()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".flexlam-lock-{validate_dataset_id(dataset_id).replace('/', '__')}")):
        yield


@dataclass
class CollectStats:
    dataset_id: str
    episodes: int
    steps: int
    mean_return: float
    path: Path


FLUSH_EVERY = 25  # episodes written to the dataset at a time


def run_episodes(
    env: gym.Env, policy: Callable[[gym.Env], Any], num_episodes: int, seed: int
) -> Iterator[Any]:
    """Yield one ``EpisodeBuffer`` per episode; episode i is reset with ``seed + i``."""
    from minari.data_collector import EpisodeBuffer

    for i in range(num_episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = policy(env)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            done = terminated or truncated
        yield EpisodeBuffer(
            id=i,
            seed=seed + i,
            observations=np.stack(observations),
            actions=np.stack([np.asarray(a) for a in actions]),
            rewards=rewards,
            terminations=terms,
            truncations=truncs,
        )


@contextlib.contextmanager
def _minari_root_override(path: Path) -> Iterator[None]:
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def collect_dataset(
    dataset_id: str | None, env: str, behaviour: str = "expert", episodes: Episodes | None = None, *,
    epsilon: float = 0.3, preprocess: dict[str, Any] | None = None, overwrite: bool = False,
) -> CollectStats:
    """Run ``behaviour`` (``noisy``: the expert with probability ``epsilon`` of a random action) in ``env`` for
    ``episodes`` (default 50 from seed 0, the task's own step limit) and write a Minari dataset.

    Pixels are stored losslessly (no JPEG): a LAM learns to predict next frames, and JPEG artifacts would be part of
    its target. Episodes are written ``FLUSH_EVERY`` at a time, so a long collection never holds them all.
    """
    episodes = episodes or Episodes(50, 0)
    num_episodes, seed, max_episode_steps = episodes.count, episodes.seed, episodes.max_steps
    task = get_task(env, preprocess)
    if dataset_id is None:
        dataset_id = default_dataset_id(env, behaviour, epsilon if behaviour == "noisy" else None)
    validate_dataset_id(dataset_id)
    root = minari_root()
    final = root / dataset_id
    if final.exists() and not overwrite:
        raise DatasetExistsError(
            f"Minari dataset {dataset_id!r} already exists at {final}. Replace it with if_exists=overwrite "
            f"(overwrite=True in Python), reuse it with if_exists=skip, or choose another id/version."
        )
    gym_env = task.make(max_episode_steps=max_episode_steps)
    policy = make_behaviour(behaviour, gym_env.action_space, task.expert, seed, epsilon)
    root.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".flexlam-tmp-", dir=root))  # hidden: Minari skips it
    try:
        steps, returns, dataset = 0, [], None
        with _minari_root_override(tmp_root):
            chunk = []
            for episode in run_episodes(gym_env, policy, num_episodes, seed):
                chunk.append(episode)
                steps += len(episode.rewards)
                returns.append(float(np.sum(episode.rewards)))
                if len(chunk) >= FLUSH_EVERY:
                    dataset = _write_chunk(dataset, dataset_id, chunk, gym_env, behaviour, task.name)
                    chunk = []
            if chunk:
                dataset = _write_chunk(dataset, dataset_id, chunk, gym_env, behaviour, task.name)
        _ensure_namespace(dataset_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=".flexlam-old-", dir=root))
            os.replace(final, trash / "old")
            os.replace(tmp_root / dataset_id, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp_root / dataset_id, final)
    finally:
        gym_env.close()
        shutil.rmtree(tmp_root, ignore_errors=True)
    return CollectStats(dataset_id, num_episodes, steps, float(np.mean(returns)), final)


def ensure_dataset(
    dataset_id: str | None, env: str, behaviour: str = "expert", episodes: Episodes | None = None, *,
    epsilon: float = 0.3, preprocess: dict[str, Any] | None = None,
) -> tuple[str, CollectStats | None]:
    """Collect the dataset unless it exists: ``(id, stats)``, with ``stats=None`` when it was reused.

    The check and the collection hold the dataset's lock, so parallel jobs that need the same
    data collect it once and the others reuse it.
    """
    if dataset_id is None:
        dataset_id = default_dataset_id(env, behaviour, epsilon if behaviour == "noisy" else None)
    with dataset_lock(dataset_id):
        if dataset_exists(dataset_id):
            _check_same_preprocess(dataset_id, get_task(env, preprocess).preprocess)
            return dataset_id, None
        stats = collect_dataset(dataset_id, env, behaviour, episodes, epsilon=epsilon, preprocess=preprocess)
    return dataset_id, stats


def _check_same_preprocess(dataset_id: str, wanted: dict[str, Any]) -> None:
    """Refuse to reuse a dataset collected under other observation or env settings (say, before the Atari
    conventions): its frames are not what this run would collect."""
    from ..envs.pixels import validate_preprocess

    stored, wanted = dataset_preprocess(dataset_id), validate_preprocess(wanted)
    if stored != wanted:
        keys = sorted(set(stored) | set(wanted))
        differ = {key: (stored.get(key), wanted.get(key)) for key in keys if stored.get(key) != wanted.get(key)}
        raise DataError(f"Dataset {dataset_id!r} at {minari_root() / dataset_id} was collected with other settings than this run "
                        f"asks for (recorded vs asked: {differ}); re-collect it (flexlam-collect ... dataset_id={dataset_id} "
                        f"if_exists=overwrite) or delete that folder.")


def _write_chunk(dataset: Any, dataset_id: str, chunk: list, env: gym.Env, behaviour: str, task: str) -> Any:
    import minari

    with warnings.catch_warnings(), minari_frames(False) as jpeg_option:
        warnings.filterwarnings("ignore", message=".*(code_permalink|author_email|eval_env).*", category=UserWarning)
        if dataset is not None:  # Minari nags about optional metadata (email, permalink) above
            dataset.update_dataset_from_buffer(chunk)
            return dataset
        created = minari.create_dataset_from_buffers(
            dataset_id=dataset_id,
            buffer=chunk,
            env=env,
            algorithm_name=f"flexlam-rl/{behaviour}",
            author="flexlam-rl",
            description=f"{behaviour} episodes of {task} ({env.spec.id if env.spec else task}), collected by flexlam-collect.",
            **jpeg_option,
        )
        if not jpeg_option:  # Minari 0.5.3 records nothing; 0.5.4+ readers would take raw frames for JPEG
            created.storage.update_metadata({"jpeg_encoding": False})
        return created


def _ensure_namespace(dataset_id: str) -> None:
    """Create the id's namespace in the real root (metadata Minari expects beside datasets)."""
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = dataset_id.rsplit("/", 1)[0] if "/" in dataset_id else None
    if namespace and namespace not in list_local_namespaces():
        create_namespace(namespace)
