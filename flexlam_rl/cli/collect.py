"""``flexlam-collect``: record a behaviour's episodes into a local Minari dataset."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ..collect import collect_dataset, dataset_exists, default_dataset_id
from ._common import CONFIG_PATH, clean_errors, to_plain

IF_EXISTS = ("error", "skip", "overwrite")


def collect_from_config(cfg: DictConfig) -> str:
    """Collect (or reuse) the dataset a collect config describes; returns its id."""
    if cfg.if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {IF_EXISTS}, got {cfg.if_exists!r}.")
    dataset_id = cfg.dataset_id or default_dataset_id(cfg.env, cfg.behaviour, cfg.epsilon if cfg.behaviour == "noisy" else None)
    if cfg.if_exists == "skip" and dataset_exists(dataset_id):
        print(f"dataset {dataset_id} exists; skipping collection (if_exists=skip)")
        return dataset_id
    stats = collect_dataset(
        dataset_id=dataset_id, env=cfg.env, behaviour=cfg.behaviour, num_episodes=int(cfg.episodes),
        seed=int(cfg.seed), epsilon=float(cfg.epsilon), max_episode_steps=cfg.max_episode_steps,
        preprocess=to_plain(cfg.preprocess), overwrite=cfg.if_exists == "overwrite",
    )
    print(f"collected {stats.episodes} episodes / {stats.steps} steps (mean return {stats.mean_return:.3f}) "
          f"-> {stats.dataset_id} at {stats.path}")
    return stats.dataset_id


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="collect")
@clean_errors
def main(cfg: DictConfig) -> None:
    collect_from_config(cfg)


if __name__ == "__main__":
    main()
