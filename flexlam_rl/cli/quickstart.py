"""``flexlam-quickstart``: the main job on a small default, end to end.

collect local Minari datasets (reused when present) -> pretrain a FlexLAM -> align a
translator on a few labels -> latent BC on action-free expert data of another task ->
an SB3 agent in latent space there -> print where every checkpoint is.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from ..collect import collect_dataset, dataset_exists, default_dataset_id
from ._common import CONFIG_PATH, clean_errors, run_dir, to_plain
from .align import align_from_config
from .latent_bc import latent_bc_from_config
from .pretrain import pretrain_from_config
from .train_agent import agent_from_config


def collect_missing(env: str, specs: list) -> list[str]:
    """Collect each dataset in ``specs`` unless it already exists; returns their ids."""
    ids = []
    for spec in specs:
        epsilon = float(spec.get("epsilon", 0.3))
        dataset_id = spec.get("dataset_id") or default_dataset_id(env, spec["behaviour"], epsilon if spec["behaviour"] == "noisy" else None)
        if dataset_exists(dataset_id):
            print(f"[collect] reusing {dataset_id}")
        else:
            stats = collect_dataset(dataset_id, env, spec["behaviour"], int(spec["episodes"]), int(spec["seed"]), epsilon)
            print(f"[collect] {dataset_id}: {stats.episodes} episodes, {stats.steps} steps, mean return {stats.mean_return:.3f}")
        ids.append(dataset_id)
    return ids


def _stage(title: str) -> None:
    print(f"\n=== {title} ===")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="quickstart")
@clean_errors
def main(cfg: DictConfig) -> None:
    out = run_dir().resolve()
    _stage("collect")
    ids = collect_missing(cfg.env, list(cfg.collect))
    expert_id = collect_missing(cfg.env, [{"behaviour": "expert", **cfg.expert}])[0]
    act_expert_id = collect_missing(cfg.act_env, [{"behaviour": "expert", **cfg.expert}])[0]

    _stage("pretrain")
    with open_dict(cfg):  # the collected ids become the pretraining data
        cfg.data.datasets = ids
    pretrain_from_config(cfg, out)
    lam_dir = out / "lam"

    _stage("align")
    align_from_config(OmegaConf.create({
        "lam_dir": str(lam_dir), "out": None, "labels": to_plain(cfg.labels), "translator": to_plain(cfg.translator),
        "eval": {"datasets": [expert_id], "budgets": cfg.eval.budgets, "supervised_idm": cfg.eval.supervised_idm},
    }))

    _stage("latent BC")
    latent_bc_from_config(OmegaConf.create({
        "lam_dir": str(lam_dir), "translator_dir": None, "env": cfg.act_env, "expert_datasets": [act_expert_id], "out": None,
        "gif": True, "bc": to_plain(cfg.bc), **to_plain(cfg.latent_bc),
    }))

    _stage("agent in latent space")
    agent_cfg = {**to_plain(cfg.agent), "lam_dir": str(lam_dir)}  # resolves ${act_env}
    agent_from_config(OmegaConf.create({"agent": agent_cfg}), out / "agent")

    print(f"\nquickstart done. Checkpoints in {out}:")
    for name in ("lam", "translator", "latent_bc", "agent/model.zip", "checkpoints"):
        print(f"  {out / name}")


if __name__ == "__main__":
    main()
