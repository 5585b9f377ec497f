"""``flexlam-quickstart``: the main job on a small default, end to end.

collect local Minari datasets (reused when present) -> pretrain a FlexLAM -> align a
translator on a few labels -> latent BC on action-free expert data of another task ->
an SB3 agent in latent space there -> print where every checkpoint is.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ..collect import ensure_dataset
from ..config import plain
from ._common import hydra_entry, run_dir
from .align import align_from_config
from .latent_bc import latent_bc_from_config
from .pretrain import pretrain_from_config
from .train_agent import agent_from_config


def _collect(env: str, specs: list[dict[str, Any]]) -> list[str]:
    ids = []
    for spec in specs:
        dataset_id, stats = ensure_dataset(spec.get("dataset_id"), env, spec["behaviour"], int(spec["episodes"]),
                                           int(spec["seed"]), float(spec.get("epsilon", 0.3)))
        if stats is None:
            print(f"[collect] reusing {dataset_id}")
        else:
            print(f"[collect] {dataset_id}: {stats.episodes} episodes, {stats.steps} steps, mean return {stats.mean_return:.3f}")
        ids.append(dataset_id)
    return ids


def _stage(title: str) -> None:
    print(f"\n=== {title} ===")


def quickstart(cfg: DictConfig) -> None:
    out = run_dir().resolve()
    _stage("collect")
    ids = _collect(cfg.env, plain(cfg.collect))
    expert_id = _collect(cfg.env, [{"behaviour": "expert", **plain(cfg.expert)}])[0]
    act_expert_id = _collect(cfg.act_env, [{"behaviour": "expert", **plain(cfg.expert)}])[0]

    _stage("pretrain")
    with open_dict(cfg):  # the collected ids become the pretraining data
        cfg.data.datasets = ids
    pretrain_from_config(cfg, out)
    lam_dir = out / "lam"

    _stage("align")
    align_from_config(OmegaConf.create({
        "lam_dir": str(lam_dir), "out": None, "overwrite": True, "labels": plain(cfg.labels),
        "translator": plain(cfg.translator),
        "eval": {"datasets": [expert_id], "budgets": cfg.eval.budgets, "supervised_idm": cfg.eval.supervised_idm},
    }))

    _stage("latent BC")
    latent_bc_from_config(OmegaConf.create({
        "lam_dir": str(lam_dir), "translator_dir": None, "env": cfg.act_env, "expert_datasets": [act_expert_id], "out": None,
        "gif": True, "bc": plain(cfg.bc), **plain(cfg.latent_bc),
    }))

    _stage("agent in latent space")
    agent_from_config(OmegaConf.create({"agent": {**plain(cfg.agent), "lam_dir": str(lam_dir)}}), out / "agent")

    print(f"\nquickstart done. Checkpoints in {out}:")
    for name in ("lam", "translator", "latent_bc", "agent/model.zip", "checkpoints"):
        print(f"  {out / name}")


main = hydra_entry("quickstart", quickstart)

if __name__ == "__main__":
    main()
