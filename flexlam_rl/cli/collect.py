"""``flexlam-collect``: record a behaviour's episodes into a local Minari dataset."""

from __future__ import annotations

from omegaconf import DictConfig

from ..config import Episodes, plain
from ..data.collect import collect_dataset, ensure_dataset
from ..data.sources import default_dataset_id
from ..errors import ConfigError
from ._common import hydra_entry

IF_EXISTS = ("error", "skip", "overwrite")


def collect(cfg: DictConfig) -> None:
    if cfg.if_exists not in IF_EXISTS:
        raise ConfigError(f"if_exists must be one of {IF_EXISTS}, got {cfg.if_exists!r}.")
    epsilon = float(cfg.epsilon)
    dataset_id = cfg.dataset_id or default_dataset_id(cfg.env, cfg.behaviour, epsilon if cfg.behaviour == "noisy" else None)
    kwargs = dict(env=cfg.env, behaviour=cfg.behaviour, episodes=Episodes(int(cfg.episodes), int(cfg.seed), cfg.max_episode_steps),
                  epsilon=epsilon, preprocess=plain(cfg.preprocess))
    if cfg.if_exists == "skip":
        dataset_id, stats = ensure_dataset(dataset_id, **kwargs)
    else:
        stats = collect_dataset(dataset_id, **kwargs, overwrite=cfg.if_exists == "overwrite")
    if stats is None:
        print(f"dataset {dataset_id} exists; skipping collection (if_exists=skip)")
    else:
        print(f"collected {stats.episodes} episodes / {stats.steps} steps (mean return {stats.mean_return:.3f}) "
              f"-> {stats.dataset_id} at {stats.path}")


main = hydra_entry("collect", collect)

if __name__ == "__main__":
    main()
