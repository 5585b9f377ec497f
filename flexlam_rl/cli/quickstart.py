"""``flexlam-quickstart``: the main job on a small default, end to end.

collect local Minari datasets (reused when present) -> pretrain a FlexLAM -> held-out
reconstruction error per token budget -> print where the checkpoint is.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, open_dict

from ..collect import collect_dataset, dataset_exists, default_dataset_id
from ._common import CONFIG_PATH, clean_errors, run_dir
from .pretrain import pretrain_from_config


def collect_missing(env: str, specs: list) -> list[str]:
    """Collect each dataset in ``specs`` unless it already exists; returns their ids."""
    ids = []
    for spec in specs:
        epsilon = float(spec.get("epsilon", 0.3))
        dataset_id = spec.get("dataset_id") or default_dataset_id(env, spec.behaviour, epsilon if spec.behaviour == "noisy" else None)
        if dataset_exists(dataset_id):
            print(f"[collect] reusing {dataset_id}")
        else:
            stats = collect_dataset(dataset_id, env, spec.behaviour, int(spec.episodes), int(spec.seed), epsilon)
            print(f"[collect] {dataset_id}: {stats.episodes} episodes, {stats.steps} steps, mean return {stats.mean_return:.3f}")
        ids.append(dataset_id)
    return ids


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="quickstart")
@clean_errors
def main(cfg: DictConfig) -> None:
    out = run_dir()
    ids = collect_missing(cfg.env, list(cfg.collect))
    with open_dict(cfg):  # the collected ids become the pretraining data
        cfg.data.datasets = ids
    pretrain_from_config(cfg, out)
    print(f"\nquickstart done. Checkpoints: {out.resolve()}/lam (FlexLAM.load), {out.resolve()}/checkpoints")


if __name__ == "__main__":
    main()
