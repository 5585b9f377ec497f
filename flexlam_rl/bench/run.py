"""Run the token-budget benchmark: per suite and seed, one FlexLAM vs a fixed LAM per budget.

For each suite (a set of tasks with action-free Minari data) and seed, every LAM trains on the
same data with the same rule (``train``: to a plateau of its held-out loss, see
:class:`~flexlam_rl.pretrain.train.Plateau`): one FlexLAM with K tokens and, for every budget k, a fixed LAM
with K = k. Two views of fairness are scored:

- ``equal_updates``: every model as trained to its own plateau (same rule, same cap);
- ``equal_compute``: the FlexLAM's training FLOPs are split evenly over the fixed LAMs it replaces;
  each fixed LAM stops at its plateau or when its share is spent, whichever comes first.

Per budget k, with FlexLAM truncated to k tokens and the fixed LAM with K = k:

1. ``recon``: held-out next-frame MSE;
2. ``align``: translator accuracy (Discrete) or R^2 (Box) on held-out expert transitions; for Discrete actions also
   ``align_balanced`` (balanced accuracy) and, not a comparison, ``majority_rate`` (always answering the commonest action);
3. ``bc_return``: latent BC + translator mean return, per task;
4. ``ppo_return`` (secondary, when the suite runs PPO): SB3 PPO in latent space on the stress task;

2-4 under both label protocols (``standard``: random labels from every task; ``low_return``:
labels only from the lowest-return episodes of the stress task). Each seed's results are saved on
their own, so runs resume and parallel jobs (one seed each) share work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._version import NUMERICS_VERSION
from ..act.latent_bc import LatentBCTrainConfig, evaluate_latent_bc, train_latent_bc
from ..align import AlignConfig, AlignOptions, LabelConfig, action_spec, embed_transitions, label_and_eval_sets, run_alignment
from ..align.training import all_label_idm
from ..checkpoint import atomic_write_json, read_json
from ..config import Episodes, LAMConfig
from ..data.collect import ensure_dataset
from ..data.transitions import load_transitions
from ..envs import task_at_frame_size
from ..errors import ConfigError
from ..evaluate.diagnosis import controllability, sample
from ..evaluate.inspect import prediction_gif
from ..evaluate.reconstruction import reconstruction_by_budget
from ..media import write_gif
from ..model.lam import FlexLAM
from ..pretrain.supervision import SupervisionConfig
from ..pretrain.train import TrainConfig, update_flops
from .cache import config_hash, numerics_key, ppo_cached, train_cached, translator_dir
from .experiment import code_record, jsonable, machine, versions
from .report import protocol_key, write_reports
from .spec import METRICS, BenchConfig, SuiteSpec

EVAL_SEED_BASE = 100_000  # latent BC episodes of seed s reset with EVAL_SEED_BASE + 1000 s + i: never a data episode
GIF_EPISODE_SEED = 7  # the one rollout drawn into each GIF
PROBE_SEED_BASE = 900_000  # token probe rollouts of seed s reset with PROBE_SEED_BASE + 1000 s + i: never a data episode
PPO_ALGO_KWARGS = {"n_steps": 64, "batch_size": 128}  # short PPO runs: update often


def collect_suite(suite: SuiteSpec, data_seed: int) -> dict[str, dict[str, str]]:
    """Collect (or reuse) every task x behaviour dataset of a suite: ``{task: {behaviour: id}}``."""
    ids: dict[str, dict[str, str]] = {}
    for task in suite.tasks:
        preprocess = dict(task_at_frame_size(task, suite.frame_size).preprocess)
        for behaviour, spec in suite.data.items():
            episodes = Episodes(int(spec["episodes"]), suite.collection_seed(data_seed, task, behaviour), suite.max_episode_steps)
            dataset_id, _ = ensure_dataset(suite.dataset_id(task, behaviour), task, behaviour, episodes,
                                           epsilon=float(spec.get("epsilon", 0.3)), preprocess=preprocess)
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


def train_models(cfg: BenchConfig, data: Any, train_cfg: TrainConfig, cache_root: Path, log: Callable[[str], None],
                 fixed: bool = True, supervision: SupervisionConfig | None = None,
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Train (or reuse) every LAM of one seed: ``({view: {model_name: FlexLAM}}, {model_name: cost record})``;
    only the FlexLAM without ``fixed``; every one with the same action labels in pretraining when ``supervision``."""
    variants = lam_variants(cfg, data.obs_shape, data.is_image, data.preprocess)
    configs = {name: train_cfg if name == "flexlam" else replace(train_cfg, prefix_samples=1) for name in variants}
    flops = {name: update_flops(lam_cfg, data, configs[name]) for name, lam_cfg in variants.items()}
    log("LAM flexlam")
    flexlam = train_cached(data, variants["flexlam"], configs["flexlam"], cache_root, supervision=supervision)
    budget = flexlam.info["updates"] * flops["flexlam"]  # the equal-compute view splits this over the fixed LAMs
    models = {"equal_updates": {"flexlam": flexlam.lam}, "equal_compute": {"flexlam": flexlam.lam}}
    records = {"flexlam": _cost(flexlam.info, flops["flexlam"])}
    for k in cfg.budgets if fixed else []:
        name = f"fixed_{k}"
        share = max(1, int(budget / len(cfg.budgets) / flops[name]))
        log(f"LAM {name} (equal-compute share: {share} updates)")
        trained = train_cached(data, variants[name], configs[name], cache_root, snapshot_updates=share, supervision=supervision)
        models["equal_updates"][name] = trained.lam
        models["equal_compute"][name] = trained.snapshot or trained.lam
        records[name] = _cost(trained.info, flops[name])
        records[name]["equal_compute"] = _cost(trained.snapshot_info or trained.info, flops[name])
    return models, records


def seed_models(cfg: BenchConfig, suite: SuiteSpec, seed: int, cache_root: Path,
                log: Callable[[str], None] = print, flexlam_only: bool = False) -> tuple[dict[str, FlexLAM], Any]:
    """One seed's equal-updates models (``{"flexlam": ..., "fixed_k": ...}``; just the FlexLAM with
    ``flexlam_only``) and its data, for analyses after a benchmark run: what the run trained comes from the
    cache (anything missing is trained, by the same rule and under the same cache key)."""
    work = SeedWork.prepare(cfg, suite, seed, log)
    train_cfg = TrainConfig(**{**cfg.train, "seed": seed, "progress": False})
    models, _ = train_models(cfg, work.data, train_cfg, cache_root, log, fixed=not flexlam_only, supervision=work.supervision())
    return models["equal_updates"], work.data


def suite_data(cfg: BenchConfig, dataset_ids: list[str]) -> Any:
    """A suite's LAM data: train / validation (the plateau rule's) / held-out (the scores') transitions."""
    return load_transitions(dataset_ids, cfg.heldout_fraction, cfg.data_seed, validation_fraction=cfg.validation_fraction)


def _cost(info: dict[str, Any], flops_per_update: float) -> dict[str, Any]:
    out = {key: info[key] for key in ("updates", "wall_s", "plateaued") if key in info}
    out.update(samples=info.get("samples", 0), flops=info["updates"] * flops_per_update, flops_per_update=flops_per_update)
    if "curve" in info:
        out["curve"] = [{"updates": c["updates"], "wall_s": c["wall_s"], "mse": c["mse"]} for c in info["curve"]]
    return out


def run_seed(cfg: BenchConfig, suite: SuiteSpec, seed: int, cache_root: Path, gif_dir: Path | None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """All metrics of one suite and seed: ``{"values": {view: {metric: {protocol: {method: {k: value}}}}}, ...}``.

    A value is a number, or for ``bc_return`` a list with one return per task (its stratum).
    """
    work = SeedWork.prepare(cfg, suite, seed, lambda msg: log(f"  [{suite.name} seed {seed}] {msg}"))
    train_cfg = TrainConfig(**{**cfg.train, "seed": seed, "progress": False})
    models, records = train_models(cfg, work.data, train_cfg, cache_root, work.say, supervision=work.supervision())

    distinct = {id(lam): lam for view in models.values() for lam in view.values()}  # a fixed LAM may stand in both views
    with_ppo = {id(lam) for lam in models["equal_updates"].values()} if suite.ppo else set()  # secondary: one view only
    scored = {key: work.score(lam, key in with_ppo) for key, lam in distinct.items()}
    scores = {key: value.scores for key, value in scored.items()}
    values: dict[str, Any] = {}
    for view, named in models.items():
        values[view] = {metric: {} for metric in METRICS}
        for metric in METRICS:
            if not all(metric in scores[id(lam)] for lam in named.values()):
                continue
            for protocol in scores[id(named["flexlam"])].get(metric, {}):
                values[view][metric][protocol] = {
                    method: {k: scores[id(named[model_at(method, k)])][metric][protocol][k] for k in cfg.budgets}
                    for method in ("flexlam", "fixed")}
    if gif_dir is not None and cfg.gif_budget in cfg.budgets:
        for method in ("flexlam", "fixed"):
            lam = models["equal_updates"][model_at(method, cfg.gif_budget)]
            work.write_gif(lam, scored[id(lam)], gif_dir / f"{suite.name}_{method}_k{cfg.gif_budget}.gif")
    if gif_dir is not None and cfg.prediction_gifs:
        work.write_prediction_gif(models["equal_updates"], gif_dir / f"{suite.name}_predictions.gif")
    flex_scores = scores[id(models["equal_updates"]["flexlam"])]
    return {"values": values, "models": records, "code_usage": {name: scores[id(lam)]["code_usage"]
                                                                 for name, lam in models["equal_updates"].items()},
            "copy_baseline": flex_scores["copy_baseline"], "labels": {"count": work.label_count, "pool": len(work.data.train)},
            **({"majority_rate": flex_scores["majority_rate"]} if "majority_rate" in flex_scores else {}),
            **({"idm_all_labels": work.idm_ceiling(models["equal_updates"]["flexlam"])} if cfg.idm_ceiling is not None else {}),
            **({"token_probes": work.token_probes(models["equal_updates"])} if suite.token_probes else {}),
            **({"baselines": work.baselines(models["equal_updates"]["flexlam"])} if work.bc_set is not None else {})}


@dataclass
class ScoredModel:
    """One LAM's metrics, and what scoring it trained that the GIFs reuse (kept in memory, never saved)."""

    scores: dict[str, Any]
    policy: Any  # its latent BC policy
    translators: dict[str, dict[str, Any]]  # per label run: task -> its translator


@dataclass
class AlignGroup:
    """Tasks of a suite that share an action space, and so one translator: its label pool (training episodes of
    the tasks' datasets), evaluation set (their held-out expert transitions, or every behaviour's without experts)
    and label count at the default fraction."""

    tasks: list[str]
    pool: Any
    eval_set: Any
    transitions: int  # the LAM's training transitions from these tasks: what label fractions are of
    label_count: int


@dataclass
class SeedWork:
    """What every model of one (suite, seed) is scored on: data, alignment groups, expert sets.

    A suite whose tasks share an action space (MiniGrid) has one alignment group: one translator from labels of
    every task. Games with different action sets (Breakout's 4, Pong's 6) get one group, and one translator,
    per task; an alignment score is then a list with one entry per group (its stratum), as latent BC's is.
    """

    cfg: BenchConfig
    suite: SuiteSpec
    seed: int
    ids: dict[str, dict[str, str]]  # task -> behaviour -> dataset id
    data: Any  # the suite's TransitionData
    groups: list[AlignGroup]
    bc_set: Any  # expert training transitions (latent BC targets); None: the suite has no expert data
    say: Callable[[str], None]

    @classmethod
    def prepare(cls, cfg: BenchConfig, suite: SuiteSpec, seed: int, say: Callable[[str], None]) -> SeedWork:
        ids = collect_suite(suite, cfg.data_seed)
        all_ids = [i for task in suite.tasks for i in ids[task].values()]
        expert_ids = [ids[t]["expert"] for t in suite.tasks] if suite.has_expert else []
        data = suite_data(cfg, all_ids)
        groups = []
        for tasks in action_groups(data, ids, suite.tasks):  # one group of every task where the suite shares actions
            mine = [i for task in tasks for i in ids[task].values()]
            experts = [ids[t]["expert"] for t in tasks] if suite.has_expert else mine
            pool, eval_set = label_and_eval_sets(mine, experts, cfg.heldout_fraction, cfg.data_seed)
            transitions = len(data.train.subset_sources(mine))
            groups.append(AlignGroup(tasks, pool, eval_set, transitions, label_count(cfg.label_fraction, transitions)))
        bc_set = data.train.subset_sources(expert_ids) if expert_ids else None
        return cls(cfg, suite, seed, ids, data, groups, bc_set, say)

    @property
    def label_count(self) -> int:
        return sum(group.label_count for group in self.groups)

    def supervision(self) -> SupervisionConfig | None:
        """The scale's action labels in pretraining: this seed's standard labels at ``label_fraction``, the ones its
        translators get (``share`` < 1: a subset of them), so pretraining adds no labels."""
        if self.cfg.supervision is None:
            return None
        if len(self.groups) != 1:
            raise ConfigError(f"scale.supervision needs a suite whose tasks share one action space; {self.suite.name} has "
                              f"{len(self.groups)} ({[g.tasks for g in self.groups]}): give each its own suite.")
        group = self.groups[0]
        return SupervisionConfig(**self.cfg.supervision, count=min(group.label_count, len(group.pool)), seed=self.seed,
                                 heldout_fraction=self.cfg.heldout_fraction, split_seed=self.cfg.data_seed,
                                 datasets=[i for task in group.tasks for i in self.ids[task].values()])

    def token_probes(self, models: dict[str, FlexLAM]) -> dict[str, Any]:
        """What each model's first tokens read on fresh rollouts of the stress task: the action or the distractors
        (:func:`~flexlam_rl.evaluate.probes.token_probes`; FlexLAM at every budget, each fixed LAM at its K)."""
        from ..evaluate.probes import probe_rollouts, token_probes

        flexlam = models["flexlam"]
        rollouts = probe_rollouts(self.suite.stress_task, flexlam, seed=PROBE_SEED_BASE + self.seed * 1000)
        fixed = {name: lam for name, lam in models.items() if name != "flexlam"}
        return token_probes(flexlam, rollouts, fixed, self.cfg.budgets, seed=self.seed)

    def idm_ceiling(self, lam: FlexLAM) -> dict[str, Any] | list[dict[str, Any]]:
        """Per alignment group, a supervised IDM on every transition of its label pool, scored on its evaluation set
        (``score``: accuracy or R^2; ``balanced``: Discrete actions); one dict for a single group."""
        align_cfg = AlignConfig(**{**self.cfg.translator, **(self.cfg.idm_ceiling or {}), "seed": self.seed})
        out = []
        for group in self.groups:
            spec = action_spec(group.pool.sources[int(group.pool.source_index[0])].action_space)
            scored = embed_transitions(lam, group.eval_set, np.arange(len(group.eval_set)))
            score, balanced = all_label_idm(lam, group.pool, scored, spec, align_cfg)
            out.append({"score": score, **({"balanced": balanced} if balanced is not None else {})})
        return out[0] if len(out) == 1 else out

    def score(self, lam: FlexLAM, ppo: bool = False) -> ScoredModel:
        """Every metric of one LAM at the budgets it stands for (all of them for FlexLAM, its K for a fixed LAM)."""
        cfg, seed = self.cfg, self.seed
        budgets = cfg.budgets if lam.config.nested_dropout else [lam.num_tokens]
        recon = reconstruction_by_budget(lam, self.data.heldout, budgets)
        out: dict[str, Any] = {"recon": {"any": recon["mse"]}, "align": {}, "code_usage": recon["code_usage"],
                               "copy_baseline": recon["copy"]}
        if cfg.diagnostics:
            picks = sample(len(self.data.heldout), cfg.diagnostic_transitions, seed)
            report = controllability(lam, self.data.heldout, budgets, picks)
            out["recon_changed"] = {"any": {k: report["mse_changed"][k]["own"] for k in budgets}}
            out["controllability"] = {"any": report["controllability"]}
        name = "flexlam" if lam.config.nested_dropout else f"fixed_{lam.num_tokens}"
        policy = None
        if self.bc_set is not None:
            out["bc_return"] = {}
            policy = train_latent_bc(lam, self.bc_set, LatentBCTrainConfig(**{**cfg.bc, "seed": seed}))
        align_cfg = AlignConfig(**{**cfg.translator, "seed": seed})
        # once per model and group, reused by every label run
        evaluations = [embed_transitions(lam, g.eval_set, np.arange(len(g.eval_set))) for g in self.groups]
        translators: dict[str, dict[str, Any]] = {}
        for run, protocol, fraction, quantile in cfg.label_runs(self.suite):
            results = {}
            for group, evaluation in zip(self.groups, evaluations):
                if protocol != "standard" and self.suite.stress_task not in group.tasks:
                    continue  # stress labels come from the stress task alone: no translator for other action sets
                count = group.label_count if fraction == cfg.label_fraction else label_count(fraction, group.transitions)
                results[tuple(group.tasks)] = run_alignment(
                    lam, self.label_pool(group, protocol), group.eval_set, self.label_config(group, protocol, count, quantile),
                    align_cfg, AlignOptions(budgets), scored=evaluation)
            translators[run] = {task: result.translator for tasks, result in results.items() for task in tasks}
            scores = [result.scores for result in results.values()]
            out["align"][run] = scores[0] if len(self.groups) == 1 else {k: [s[k] for s in scores] for k in budgets}
            if all(result.balanced is not None for result in results.values()):  # discrete actions: what accuracy is read against
                balanced = [result.balanced for result in results.values()]
                out.setdefault("align_balanced", {})[run] = (balanced[0] if len(balanced) == 1
                                                             else {k: [b[k] for b in balanced] for k in budgets})
                rates = [result.majority_rate for result in results.values()]
                out.setdefault("majority_rate", {})[run] = rates[0] if len(rates) == 1 else rates
            if policy is not None:
                memos: dict[int, dict[int, Any]] = {}  # one translation (and memo) per translator and budget
                episodes = Episodes(cfg.eval_episodes, EVAL_SEED_BASE + seed * 1000, self.suite.max_episode_steps)
                by_task = [evaluate_latent_bc(policy, lam, translators[run][task], task, budgets, episodes,
                                              translations=memos.setdefault(id(translators[run][task]), {}))
                           for task in self.suite.tasks if task in translators[run]]
                out["bc_return"][run] = {k: [returns[k]["mean"] for returns in by_task] for k in budgets}
            if ppo:
                stress = next(result for tasks, result in results.items() if self.suite.stress_task in tasks)
                out.setdefault("ppo_return", {})[run] = self.ppo_returns(lam, stress, run, align_cfg, budgets)
            self.say(f"{name} {run}: align {' | '.join(_fmt(s) for s in scores)}")
        return ScoredModel(out, policy, translators)

    def baselines(self, lam: FlexLAM) -> dict[str, dict[str, Any]]:
        """Per task: random actions, the scripted expert and true-action BC (this seed's, on the task's expert training
        episodes) over the episodes latent BC is scored on, with its step cap (:mod:`flexlam_rl.act.baselines`)."""
        from ..act.baselines import baseline_returns
        from ..act.wrappers import lam_env

        out = {}
        train = LatentBCTrainConfig(**{**self.cfg.bc, "seed": self.seed})
        for task in self.suite.tasks:
            expert = self.bc_set.subset_sources([self.ids[task]["expert"]])
            # one episode (smoke scales) leaves none to hold out: train to the step cap, as the record then says
            fit = train if len(expert.episodes) >= 2 else replace(train, until_plateau=False)
            bc = (fit, list(lam.config.channels), lam.config.hidden_dim)
            with lam_env(task, lam, max_episode_steps=self.suite.max_episode_steps) as env:
                out[task] = baseline_returns(env, task, self.cfg.eval_episodes, EVAL_SEED_BASE + self.seed * 1000, expert, bc,
                                             self.suite.max_episode_steps).to_dict()
        return out

    def label_pool(self, group: AlignGroup, protocol: str) -> Any:
        return group.pool if protocol == "standard" else group.pool.subset_sources(list(self.ids[self.suite.stress_task].values()))

    def label_config(self, group: AlignGroup, protocol: str, count: int, quantile: float) -> LabelConfig:
        return LabelConfig(protocol=protocol, count=min(count, len(self.label_pool(group, protocol))), quantile=quantile,
                           seed=self.seed)

    def ppo_returns(self, lam: FlexLAM, result: Any, protocol: str, align_cfg: AlignConfig, budgets: list[int]) -> dict[int, float]:
        where = translator_dir(lam, {"protocol": protocol, "labels": result.labels.tolist(), "align": asdict(align_cfg)})
        result.translator.save(where, extra={"protocol": protocol, "labels": len(result.labels), "seed": self.seed})
        return {k: ppo_cached(_ppo_config(self.cfg, self.suite, lam.source_path, where, k, self.seed), where) for k in budgets}

    def write_prediction_gif(self, models: dict[str, FlexLAM], path: Path) -> None:
        """Real vs predicted next frames over the stress task's first held-out episode (expert data when there is
        some): FlexLAM at every budget on the first row, the fixed LAM of each budget on the second."""
        behaviour = "expert" if self.suite.has_expert else next(iter(self.suite.data))
        episode = self.data.heldout.subset_sources([self.ids[self.suite.stress_task][behaviour]])
        budgets = self.cfg.budgets
        rows = [[(models["flexlam"], k) for k in budgets], [(models[f"fixed_{k}"], k) for k in budgets]]
        prediction_gif(rows, episode, path, scale=max(1, 128 // self.suite.frame_size))

    def write_gif(self, lam: FlexLAM, scored: ScoredModel, path: Path) -> None:
        """One latent BC episode at the GIF budget, with the policy and standard-label translator scoring trained."""
        cfg = self.cfg
        if scored.policy is None:  # no expert data, no latent BC policy to roll out
            return
        standard = next((run for run, protocol, fraction, _ in cfg.label_runs(self.suite)
                         if protocol == "standard" and fraction == cfg.label_fraction), None)
        task = self.suite.tasks[0]
        translator = scored.translators.get(standard, {}).get(task) if standard else None
        if translator is None:  # no standard run at the default fraction: align one as those runs would
            group = next(g for g in self.groups if task in g.tasks)
            translator = run_alignment(lam, group.pool, group.eval_set, self.label_config(group, "standard", group.label_count, 0.25),
                                       AlignConfig(**{**cfg.translator, "seed": self.seed}), AlignOptions([lam.num_tokens])).translator
        frames: dict[int, list[np.ndarray]] = {}
        evaluate_latent_bc(scored.policy, lam, translator, task, [cfg.gif_budget],
                           Episodes(1, GIF_EPISODE_SEED, self.suite.max_episode_steps), gif_frames=frames)
        write_gif(frames[cfg.gif_budget], path, scale=max(1, 128 // self.suite.frame_size))


def label_count(fraction: float, transitions: int) -> int:
    """Labels at ``fraction`` of ``transitions`` (at least one)."""
    return max(1, int(round(fraction * transitions)))


def action_groups(data: Any, ids: dict[str, dict[str, str]], tasks: Sequence[str]) -> list[list[str]]:
    """The suite's tasks grouped by action space (each group gets one translator), in suite order."""
    spaces = {source.source_id: source.action_space for source in data.train.sources}
    groups: list[tuple[Any, list[str]]] = []
    for task in tasks:
        space = spaces[next(iter(ids[task].values()))]
        match = next((members for other, members in groups if other == space), None)
        if match is None:
            groups.append((space, [task]))
        else:
            match.append(task)
    return [members for _, members in groups]


def _ppo_config(cfg: BenchConfig, suite: SuiteSpec, lam_dir: str, translator: Path, k: int, seed: int) -> Any:
    from ..agents.train import AgentConfig

    return AgentConfig(
        env=suite.stress_task, frame_size=suite.frame_size, lam_dir=str(lam_dir), translator_dir=str(translator),
        prefix_len=k, total_timesteps=cfg.ppo_steps, n_envs=cfg.ppo_n_envs, seed=seed, eval_freq=10**9,
        max_episode_steps=suite.max_episode_steps,
        eval_episodes=cfg.ppo_eval_episodes, device="cpu", progress_bar=False, gif=False, algo_kwargs=dict(PPO_ALGO_KWARGS),
    )


def _fmt(scores: dict[int, float]) -> str:
    return " ".join(f"k{k}={v:.3f}" for k, v in scores.items())


# Settings added after results were saved: at these values they are left out of the key, so those results still match.
LATER_DEFAULTS = {"label_fractions": None, "low_return_quantiles": None, "validation_fraction": 0.0, "diagnostics": False,
                  "diagnostic_transitions": 1024, "supervision": None, "idm_ceiling": None}
LATER_SUITE_DEFAULTS = {"max_episode_steps": None, "protocols": None, "token_probes": False}  # the same, for a suite's settings
NOT_IN_KEY = ("seeds", "name", "suites", "gif_seed", "date_fixed", "confirm", "prediction_gifs", "margins", "primary",
              "exploration_seeds")  # results never depend on these


def suite_key(cfg: BenchConfig, suite: SuiteSpec) -> str:
    """What a suite's saved seeds depend on: every setting but the seed list, the run name and the protocol date."""
    record = jsonable(asdict(cfg))
    shared = {k: v for k, v in record.items() if k not in NOT_IN_KEY
              and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
    spec = {k: v for k, v in jsonable(asdict(suite)).items() if not (k in LATER_SUITE_DEFAULTS and v == LATER_SUITE_DEFAULTS[k])}
    return config_hash({**shared, "suite": spec, **numerics_key()})


def run_benchmark(cfg: BenchConfig, out_dir: Path, cache_root: Path, command: str, only: Sequence[str] | None = None,
                  log: Callable[[str], None] = print, allow_mixed_code: bool = False) -> dict[str, Any]:
    """Run every (suite, seed) not already saved (``only``: these suites), then report all saved work; every seed
    file records the code and versions that made it (see :func:`~flexlam_rl.bench.report.seeds_code`)."""
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
            atomic_write_json(path, jsonable({"config_key": key, "seed": seed, "suite": suite.name, "code": code_record(),
                                              "protocol": protocol_key(cfg), "numerics": NUMERICS_VERSION,
                                              "versions": versions(), "machine": machine(),  # numerics depend on the CPU kind
                                              "wall_time_s": time.time() - t0, "metrics": metrics}))
    return write_reports(cfg, out_dir, command, {s.name: suite_key(cfg, s) for s in cfg.suites}, allow_mixed_code=allow_mixed_code)
