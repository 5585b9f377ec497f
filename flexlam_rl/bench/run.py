"""Run the token-budget benchmark: per suite and seed, one FlexLAM vs a fixed LAM per budget.

For each suite (a set of tasks with action-free Minari data) and seed: train one FlexLAM with
K tokens and, for every budget k, a fixed LAM with K = k (same data, same updates, same seed).
Then, per budget:

1. ``recon``: held-out next-frame MSE (FlexLAM truncated to k vs the fixed LAM with K = k);
2. ``align``: translator accuracy (Discrete) or R^2 (Box) on held-out expert transitions;
3. ``bc_return``: latent BC + translator mean return over the suite's tasks;
4. ``ppo_return``: SB3 PPO in latent space on the stress task after a fixed step budget;

2-4 under both label protocols (``standard``: random labels from every task; ``low_return``:
labels only from the lowest-return episodes of the stress task). Each seed's results are saved on
their own, so runs resume and parallel jobs (one seed each) share work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..align import AlignConfig, LabelConfig, label_and_eval_sets, run_alignment
from ..checkpoint import atomic_write_json, read_json
from ..collect import ensure_dataset
from ..config import LAMConfig
from ..data import load_transitions
from ..envs import task_at_frame_size
from ..errors import ConfigError
from ..evaluate import reconstruction_by_budget
from ..latent_bc import LatentBCTrainConfig, evaluate_latent_bc, train_latent_bc
from ..media import write_gif
from ..train import TrainConfig
from .cache import config_hash, ppo_cached, train_cached, translator_dir
from .report import jsonable, write_reports
from .spec import METRICS, BenchConfig, SuiteSpec

EVAL_SEED_BASE = 100_000  # latent BC episodes of seed s reset with EVAL_SEED_BASE + 1000 s + i: never a data episode
GIF_EPISODE_SEED = 7  # the one rollout drawn into each GIF
PPO_ALGO_KWARGS = {"n_steps": 64, "batch_size": 128}  # short PPO runs: update often


def collect_suite(suite: SuiteSpec, data_seed: int) -> dict[str, dict[str, str]]:
    """Collect (or reuse) every task x behaviour dataset of a suite: ``{task: {behaviour: id}}``."""
    ids: dict[str, dict[str, str]] = {}
    for task in suite.tasks:
        preprocess = dict(task_at_frame_size(task, suite.frame_size).preprocess)
        for behaviour, spec in suite.data.items():
            dataset_id, _ = ensure_dataset(
                suite.dataset_id(task, behaviour), task, behaviour, num_episodes=int(spec["episodes"]),
                seed=suite.collection_seed(data_seed, task, behaviour), epsilon=float(spec.get("epsilon", 0.3)),
                preprocess=preprocess,
            )
            ids.setdefault(task, {})[behaviour] = dataset_id
    return ids


def lam_variants(cfg: BenchConfig, obs_shape: Sequence[int], is_image: bool, preprocess: dict) -> dict[str, LAMConfig]:
    """``flexlam`` (K tokens, nested dropout) and ``fixed_<k>`` (K = k, no dropout) for every budget."""
    base = dict(obs_shape=list(obs_shape), obs_dtype="uint8" if is_image else "float32", preprocess=preprocess, **cfg.lam)
    variants = {"flexlam": LAMConfig(**base, num_tokens=cfg.num_tokens, nested_dropout=True)}
    # a fixed LAM never samples a prefix: pin those fields so prefix-distribution ablations reuse its cache
    fixed_base = {**base, "prefix_dist": LAMConfig.prefix_dist, "geometric_p": LAMConfig.geometric_p}
    variants.update({f"fixed_{k}": LAMConfig(**fixed_base, num_tokens=k, nested_dropout=False) for k in cfg.budgets})
    return variants


def model_at(method: str, k: int) -> str:
    """The model that stands for ``method`` at budget k (FlexLAM is truncated to k)."""
    return "flexlam" if method == "flexlam" else f"fixed_{k}"


def run_seed(cfg: BenchConfig, suite: SuiteSpec, seed: int, cache_root: Path, gif_dir: Path | None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """All metrics of one suite and seed: ``{metric: {protocol: {method: {k: value}}}}`` plus extras."""
    ids = collect_suite(suite, cfg.data_seed)
    all_ids = [i for task in suite.tasks for i in ids[task].values()]
    expert_ids = [ids[t]["expert"] for t in suite.tasks]
    data = load_transitions(all_ids, cfg.heldout_fraction, cfg.data_seed)
    pool, eval_set = label_and_eval_sets(all_ids, expert_ids, cfg.heldout_fraction, cfg.data_seed)
    bc_set = data.train.subset_sources(expert_ids)
    label_count = max(1, int(round(cfg.label_fraction * len(data.train))))

    train_cfg = TrainConfig(**{**cfg.train, "seed": seed, "progress": False})
    models, compute = {}, {}
    for name, lam_cfg in lam_variants(cfg, data.obs_shape, data.is_image, data.preprocess).items():
        log(f"  [{suite.name} seed {seed}] LAM {name}")
        models[name], compute[name] = train_cached(data, lam_cfg, train_cfg, cache_root)

    out: dict[str, Any] = {m: {} for m in METRICS}
    recon = {name: reconstruction_by_budget(lam, data.heldout) for name, lam in models.items()}
    # reconstruction does not depend on labels: one entry, under the pseudo-protocol "any"
    out["recon"] = {"any": {m: {k: recon[model_at(m, k)]["mse"][k] for k in cfg.budgets} for m in ("flexlam", "fixed")}}
    out["code_usage"] = {name: r["code_usage"] for name, r in recon.items()}
    out["copy_baseline"] = recon["flexlam"]["copy"]

    bc_policies = {}
    for name, lam in models.items():
        log(f"  [{suite.name} seed {seed}] latent BC {name}")
        bc_policies[name] = train_latent_bc(lam, bc_set, LatentBCTrainConfig(**{**cfg.bc, "seed": seed}))

    align_cfg = AlignConfig(**{**cfg.translator, "seed": seed})
    for protocol in cfg.protocols:
        protocol_pool = pool if protocol == "standard" else pool.subset_sources(list(ids[suite.stress_task].values()))
        label_cfg = LabelConfig(protocol=protocol, count=min(label_count, len(protocol_pool)),
                                quantile=cfg.low_return_quantile, seed=seed)
        translators, translator_dirs, align = {}, {}, {"flexlam": {}, "fixed": {}}
        for name, lam in models.items():
            budgets = cfg.budgets if name == "flexlam" else [lam.num_tokens]
            result = run_alignment(lam, protocol_pool, eval_set, label_cfg, align_cfg, budgets)
            where = translator_dir(lam, {"protocol": protocol, "labels": result.labels.tolist(), "align": asdict(align_cfg)})
            result.translator.save(where, extra={"protocol": protocol, "labels": len(result.labels), "seed": seed,
                                                 "align": asdict(align_cfg)})
            translators[name], translator_dirs[name] = result.translator, where
            if name == "flexlam":
                align["flexlam"] = result.scores
            else:
                align["fixed"][lam.num_tokens] = result.scores[lam.num_tokens]
        out["align"][protocol] = align
        log(f"  [{suite.name} seed {seed}] {protocol}: align flexlam {_fmt(align['flexlam'])} fixed {_fmt(align['fixed'])}")

        bc = {"flexlam": {}, "fixed": {}}
        for method in ("flexlam", "fixed"):
            for k in cfg.budgets:
                name = model_at(method, k)
                returns = [evaluate_latent_bc(bc_policies[name], models[name], translators[name], task, [k], cfg.eval_episodes,
                                              EVAL_SEED_BASE + seed * 1000, suite.frame_size)[k]["mean"] for task in suite.tasks]
                bc[method][k] = float(np.mean(returns))
        out["bc_return"][protocol] = bc
        if gif_dir is not None and protocol == "standard" and cfg.gif_budget in cfg.budgets:
            for method in ("flexlam", "fixed"):
                name, k = model_at(method, cfg.gif_budget), cfg.gif_budget
                frames: dict[int, list[np.ndarray]] = {}
                evaluate_latent_bc(bc_policies[name], models[name], translators[name], suite.tasks[0], [k], 1,
                                   GIF_EPISODE_SEED, suite.frame_size, gif_frames=frames)
                write_gif(frames[k], gif_dir / f"{suite.name}_{method}_k{k}.gif", scale=max(1, 128 // suite.frame_size))

        if suite.ppo:
            ppo = {"flexlam": {}, "fixed": {}}
            for method in ("flexlam", "fixed"):
                for k in cfg.budgets:
                    name = model_at(method, k)
                    ppo[method][k] = ppo_cached(_ppo_config(cfg, suite, models[name].source_path, translator_dirs[name], k, seed),
                                                translator_dirs[name])
            out["ppo_return"][protocol] = ppo
            log(f"  [{suite.name} seed {seed}] {protocol}: ppo flexlam {_fmt(ppo['flexlam'])} fixed {_fmt(ppo['fixed'])}")
    out["compute"] = compute
    out["labels"] = {"count": label_count, "pool": len(data.train)}
    return out


def _ppo_config(cfg: BenchConfig, suite: SuiteSpec, lam_dir: str, translator: Path, k: int, seed: int) -> Any:
    from ..agents.train import AgentConfig

    return AgentConfig(
        env=suite.stress_task, frame_size=suite.frame_size, lam_dir=str(lam_dir), translator_dir=str(translator),
        prefix_len=k, total_timesteps=cfg.ppo_steps, n_envs=cfg.ppo_n_envs, seed=seed, eval_freq=10**9,
        eval_episodes=cfg.ppo_eval_episodes, device="cpu", progress_bar=False, gif=False, algo_kwargs=dict(PPO_ALGO_KWARGS),
    )


def _fmt(scores: dict[int, float]) -> str:
    return " ".join(f"k{k}={v:.3f}" for k, v in scores.items())


def suite_key(cfg: BenchConfig, suite: SuiteSpec) -> str:
    """What a suite's saved seeds depend on: every setting but the seed list and the run name."""
    record = jsonable(asdict(cfg))
    shared = {k: v for k, v in record.items() if k not in ("seeds", "name", "suites", "gif_seed")}
    return config_hash({**shared, "suite": jsonable(asdict(suite))})


def run_benchmark(cfg: BenchConfig, out_dir: Path, cache_root: Path, command: str, only: Sequence[str] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every (suite, seed) not already saved (``only``: these suites), then report all saved work."""
    names = [s.name for s in cfg.suites]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ConfigError(f"only={sorted(only)} names unknown suites {unknown}; this scale has {names}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    stamped = lambda msg: log(f"[{time.time() - t_start:7.1f}s] {msg}")  # noqa: E731
    for suite in cfg.suites:
        if only and suite.name not in only:
            continue
        key = suite_key(cfg, suite)
        for seed in cfg.seeds:
            path = out_dir / "seeds" / f"{suite.name}_seed{seed}.json"
            if path.is_file() and read_json(path, "seed result").get("config_key") == key:
                stamped(f"[{suite.name} seed {seed}] already done")
                continue
            stamped(f"[{suite.name} seed {seed}] running")
            t0 = time.time()
            metrics = run_seed(cfg, suite, seed, cache_root, out_dir / "gifs" if seed == cfg.gif_seed else None, stamped)
            atomic_write_json(path, jsonable({"config_key": key, "seed": seed, "suite": suite.name,
                                              "wall_time_s": time.time() - t0, "metrics": metrics}))
    return write_reports(cfg, out_dir, command, {s.name: suite_key(cfg, s) for s in cfg.suites})
