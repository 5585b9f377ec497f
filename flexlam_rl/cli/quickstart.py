"""``flexlam-quickstart``: the main job on a small default, end to end.

collect local Minari datasets (reused when present) -> pretrain a FlexLAM -> align a
translator on a few labels -> latent BC on action-free expert data of another task ->
an SB3 agent in latent space there -> print where every checkpoint is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ..config import Episodes, plain
from ..data.collect import ensure_dataset
from ..pretrain.runs import RunLayout
from ._common import hydra_entry, run_dir
from .align import align_from_config
from .latent_bc import latent_bc_from_config
from .pretrain import pretrain_from_config
from .train_agent import agent_from_config


def _collect(env: str, specs: list[dict[str, Any]]) -> list[str]:
    ids = []
    for spec in specs:
        dataset_id, stats = ensure_dataset(spec.get("dataset_id"), env, spec["behaviour"],
                                           Episodes(int(spec["episodes"]), int(spec["seed"])), epsilon=float(spec.get("epsilon", 0.3)))
        if stats is None:
            print(f"[collect] reusing {dataset_id}")
        else:
            print(f"[collect] {dataset_id}: {stats.episodes} episodes, {stats.steps} steps, mean return {stats.mean_return:.3f}")
        ids.append(dataset_id)
    return ids


@contextmanager
def _stage(title: str, seconds: dict[str, float]) -> Iterator[None]:
    """Print a stage's header and record its wall time: the closing line tells a user on a slow machine which
    stage to shrink (``train.steps`` is most of it)."""
    print(f"\n=== {title} ===", flush=True)
    start = time.perf_counter()
    yield
    seconds[title] = time.perf_counter() - start


def stage_times_line(seconds: dict[str, float]) -> str:
    """The closing ``stage times:`` line (``benchmarks/quickstart.py`` parses it)."""
    return "stage times: " + " | ".join(f"{name} {s:.0f} s" for name, s in seconds.items()) + f" | total {sum(seconds.values()):.0f} s"


def parse_stage_times(text: str) -> dict[str, float]:
    """The stage times of a quickstart's printed output (the last ``stage times:`` line), total included."""
    lines = [line for line in text.splitlines() if line.startswith("stage times: ")]
    if not lines:
        raise ValueError("no 'stage times:' line in this output: it is not a finished flexlam-quickstart run")
    parts = [part.rsplit(" ", 2) for part in lines[-1].removeprefix("stage times: ").split(" | ")]
    return {name: float(value) for name, value, _unit in parts}


def quickstart(cfg: DictConfig) -> None:
    out = run_dir().resolve()
    seconds: dict[str, float] = {}
    with _stage("collect", seconds):
        ids = _collect(cfg.env, plain(cfg.collect))
        expert_id = _collect(cfg.env, [{"behaviour": "expert", **plain(cfg.expert)}])[0]
        act_expert_id = _collect(cfg.act_env, [{"behaviour": "expert", **plain(cfg.expert)}])[0]

    with _stage("pretrain", seconds):
        with open_dict(cfg):  # the collected ids become the pretraining data
            cfg.data.datasets = ids
        pretrain_from_config(cfg, out)
    layout = RunLayout(out)
    lam_dir = layout.lam

    with _stage("align", seconds):
        _align(cfg, lam_dir, expert_id)
    with _stage("latent BC", seconds):
        _latent_bc(cfg, lam_dir, act_expert_id)
    with _stage("agent in latent space", seconds):
        agent_from_config(OmegaConf.create({"agent": {**plain(cfg.agent), "lam_dir": str(lam_dir)}}), layout.agent)

    print(f"\n{stage_times_line(seconds)}")
    print(f"quickstart done. Checkpoints in {out}:")
    for name in ("lam", "translator", "latent_bc", "agent/model.zip", "checkpoints"):
        print(f"  {out / name}")


def _align(cfg: DictConfig, lam_dir: Path, expert_id: str) -> None:
    align_from_config(OmegaConf.create({
        "lam_dir": str(lam_dir), "out": None, "overwrite": True, "labels": plain(cfg.labels),
        "translator": plain(cfg.translator),
        "eval": {"datasets": [expert_id], "budgets": cfg.eval.budgets, "supervised_idm": cfg.eval.supervised_idm,
                 "idm_ceiling": cfg.eval.idm_ceiling},
    }))


def _latent_bc(cfg: DictConfig, lam_dir: Path, act_expert_id: str) -> None:
    latent_bc_from_config(OmegaConf.create({
        "lam_dir": str(lam_dir), "translator_dir": None, "env": cfg.act_env, "expert_datasets": [act_expert_id], "out": None,
        "gif": True, "bc": plain(cfg.bc), **plain(cfg.latent_bc),
    }))


main = hydra_entry("quickstart", quickstart)

if __name__ == "__main__":
    main()
