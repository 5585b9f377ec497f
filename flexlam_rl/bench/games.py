"""LAMs on Atari and Procgen: the games recipe ablation (which LAM variant's code does not collapse), the suite (the
shipped recipe on every game) and its plateau runs. ``benchmarks/games.py`` is the command line.

Per game, action-labelled data is collected once (Atari: an epsilon-0.5 noised scripted expert; Procgen: random
actions held about 4 steps), then per variant and seed one FlexLAM (K = 8) is trained and scored on held-out
episodes: code usage per slot, controllability per budget, a probe from tokens to the true action, and the
translator's accuracy from 2% labels per budget against a supervised IDM trained on the same labels (with both
confusion matrices). The variants are configs (``configs/games/variants.yaml``); the rule that chose the shipped one
is :data:`RECIPE_RULE`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..align import AlignConfig, AlignOptions, LabelConfig, label_and_eval_sets, run_alignment
from ..checkpoint import read_json
from ..config import Episodes
from ..data.collect import ensure_dataset
from ..data.sources import cache_root
from ..data.transitions import load_transitions
from ..envs import get_task
from ..errors import ConfigError
from ..evaluate.diagnosis import COLLAPSED_PERPLEXITY, action_probe, controllability, sample
from ..metrics import balanced_accuracy, confusion_matrix, majority_rate
from ..model.lam import null_fill
from ..pretrain.train import TrainConfig, lam_config_for
from ..tables import at_budget, markdown_table
from .cache import train_cached
from .experiment import Experiment

# game -> (behaviour, episodes, epsilon, max episode steps) of the LAM's action-free (here: labelled) data
GAME_DATA = {
    "breakout": ("noisy", 40, 0.5, 400), "pong": ("noisy", 40, 0.5, 400), "freeway": ("noisy", 40, 0.5, 400),
    "procgen-coinrun": ("sticky", 60, 0.0, 300), "procgen-bigfish": ("sticky", 160, 0.0, 300),
    "procgen-starpilot": ("sticky", 160, 0.0, 300), "procgen-maze": ("sticky", 60, 0.0, 300),
}
SUITE = ["breakout", "pong", "freeway", "procgen-coinrun", "procgen-bigfish", "procgen-starpilot"]
RECIPE_GAMES = ["breakout", "pong", "procgen-coinrun"]
PPO_GAMES = ["breakout", "procgen-coinrun"]  # one game per family whose code is used (BigFish's is not: results/games)
PPO_EPISODE_STEPS = 1000
TARGET_RATIO = 0.85  # the bar: best translator accuracy >= 0.85 x the supervised IDM on the same labels
CONTROL_FLOOR = 0.05  # the recipe rule's "not collapsed": controllability at k = 8 above this on every game ...
FIRST_SLOT_FLOOR = 1.1  # ... and the first slot's perplexity above this
RECIPE_RULE = ("no collapse on any ablation game (first-slot perplexity > 1.1, controllability at k=8 > 0.05), "
               "then the highest mean translator / IDM ratio; ties to the simpler variant")  # fixed 2026-12-01
# scale=default's stop rule (fixed 2026-12-01: a check every 250 updates on 512 validation transitions, every budget's
# mean of its last 4 checks not 2% below the 4 before, one LR decay x0.1, then stop; cap 30000), at the suite's batch
# of 32; fixed on 2026-12-02 before any games plateau run
PLATEAU = {"until_plateau": True, "max_steps": 30000, "eval_every": 250, "eval_transitions": 512, "plateau_window": 4,
           "plateau_tol": 0.02, "plateau_decays": 1, "plateau_lr_factor": 0.1, "checkpoint_every": 1000}
LABEL_FRACTION = 0.02
BUDGETS = [1, 2, 4, 8]
ALIGN = {"steps": 2000, "batch_size": 128, "use_obs": True}


@dataclass(frozen=True)
class Variant:
    """One LAM variant of the recipe ablation (an entry of ``configs/games/variants.yaml``)."""

    name: str
    frame_stack: int = 1
    frame_skip: int | None = None  # each action repeated this many frames in the data, when not the task's own
    lam: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    rule: str = ""  # the decision rule fixed before its runs, where it had one
    retired_at: str = ""  # the last commit whose model had the options it sets (the saturation and spread penalties)


def _load_variants() -> tuple[dict[str, Variant], str]:
    spec = yaml.safe_load(files("flexlam_rl.configs").joinpath("games/variants.yaml").read_text())
    return {name: Variant(name, **entry) for name, entry in spec["variants"].items()}, spec["shipped"]


VARIANTS, SHIPPED = _load_variants()  # SHIPPED: what ``lam=games`` is (tests check it is the rule's choice)


def game_data(game: str, frame_stack: int, frame_skip: int | None = None) -> str:
    """Collect (or reuse) a game's data at this frame stack (and frame skip, when not the task's); its dataset id."""
    behaviour, episodes, epsilon, max_steps = GAME_DATA[game]
    preprocess = dict(get_task(game).preprocess, frame_stack=frame_stack)
    skip = ""
    if frame_skip is not None and frame_skip != preprocess.get("frame_skip", 1):
        preprocess["frame_skip"], skip = frame_skip, f"-skip{frame_skip}"
    dataset_id = f"games-recipe/{game}-stack{frame_stack}{skip}/{behaviour}-{episodes}ep-v0"
    ensure_dataset(dataset_id, game, behaviour, Episodes(episodes, 0, max_steps), epsilon=epsilon or 0.3, preprocess=preprocess)
    return dataset_id


def train_variant(game: str, variant: str, steps: int, seed: int, stop: dict[str, Any] | None = None) -> tuple[str, Any, Any, Any]:
    """(dataset id, transitions, LAM config, cached training run) of one (game, variant, seed): the one place that
    builds a variant's settings, so every script reusing its LAM hits the same cache entry. ``stop``: train to a
    plateau under these TrainConfig fields (:data:`PLATEAU`), judged on a validation split of 10% of the training
    episodes, instead of for ``steps`` updates (the held-out split is the same either way)."""
    spec = VARIANTS[variant]
    if spec.retired_at:
        raise ConfigError(f"Variant {variant!r} sets LAM options removed from flexlam-rl ({sorted(spec.lam)}); its runs stay in "
                          f"the results. To train it again, check out commit {spec.retired_at}.")
    dataset_id = game_data(game, spec.frame_stack, spec.frame_skip)
    data = load_transitions(dataset_id, 0.1, 0, validation_fraction=0.1 if stop else 0.0)
    lam_cfg = lam_config_for(spec.lam, data)
    schedule = stop or {"steps": steps, "eval_every": 10**9}
    train_cfg = TrainConfig(**{"batch_size": 32, "seed": seed, "progress": False, **schedule, **spec.train})
    return dataset_id, data, lam_cfg, train_cached(data, lam_cfg, train_cfg, cache_root() / "games")


def code_report(lam: Any, data: Any, seed: int) -> dict[str, Any]:
    """Code usage and controllability per budget of a LAM on 1024 held-out transitions."""
    report = controllability(lam, data.heldout, BUDGETS, sample(len(data.heldout), 1024, seed))
    return {"perplexity": report["code_usage"], "controllability": report["controllability"]}


def plateau_run(game: str, seed: int) -> dict[str, Any]:
    """The shipped recipe's FlexLAM trained to a plateau under :data:`PLATEAU`: how many updates a game takes
    (resumes from its checkpoints) and whether its code is used there."""
    _, data, _, trained = train_variant(game, SHIPPED, 0, seed, stop=PLATEAU)
    info = trained.info
    return {"game": game, "variant": SHIPPED, "seed": seed, "updates": info["updates"], "plateaued": info["plateaued"],
            "cap": PLATEAU["max_steps"], "wall_s": info["wall_s"], "threads": torch.get_num_threads(), "transitions": len(data.train),
            "curve": [{"updates": c["updates"], "wall_s": c["wall_s"], "mse": c["mse"]} for c in info["curve"]],
            **code_report(trained.lam, data, seed)}


def run_one(game: str, variant: str, steps: int, seed: int) -> dict[str, Any]:
    """Train (or reuse) one LAM and score it; the translator is saved beside the LAM for PPO."""
    start = time.time()
    dataset_id, data, lam_cfg, trained = train_variant(game, variant, steps, seed)
    lam = trained.lam
    picks = sample(len(data.heldout), 1024, seed)
    report = controllability(lam, data.heldout, BUDGETS, picks)
    probe = action_probe(lam, data.train, data.heldout, picks, BUDGETS, seed)
    pool, evaluation = label_and_eval_sets([dataset_id], [dataset_id], 0.1, 0)
    labels = LabelConfig(count=max(1, round(LABEL_FRACTION * len(pool))), seed=seed)
    aligned = run_alignment(lam, pool, evaluation, labels, AlignConfig(**ALIGN, seed=seed), AlignOptions(BUDGETS, supervised_idm=True))
    best = max(aligned.scores, key=aligned.scores.get)
    translator_dir = Path(lam.source_path).parent / f"translator_{variant}_s{seed}"
    aligned.translator.save(translator_dir)
    scored, truth = aligned.info["eval_set"], aligned.info["eval_actions"]
    translated = aligned.translator.predict(null_fill(scored.slots, best, lam.null_latent.detach().cpu()), scored.obs)
    n_actions = int(pool.sources[0].action_space.n)
    return {"game": game, "variant": variant, "seed": seed, "steps": steps, "frame_stack": VARIANTS[variant].frame_stack,
            "lam": lam_cfg.to_dict(), "train_wall_s": trained.info["wall_s"], "total_wall_s": time.time() - start,
            "transitions": len(data.train), "perplexity": report["code_usage"], "controllability": report["controllability"],
            "probe": next(iter(probe.values())), "mse": report["mse"], "mse_changed": report["mse_changed"],
            "null_changed": report["null_changed"], "copy_changed": report["copy_changed"],
            "changed_fraction": report["changed_fraction"], "translator": aligned.scores, "best_k": best,
            "translator_best": aligned.scores[best], "idm": aligned.supervised_idm, "labels": len(aligned.labels),
            "idm_confusion": confusion_matrix(aligned.info["supervised_idm_pred"], truth, n_actions).tolist(),
            "translator_confusion": confusion_matrix(translated, truth, n_actions).tolist(),
            "lam_dir": str(Path(lam.source_path)), "translator_dir": str(translator_dir)}


def run_all(exp: Experiment, games: list[str], variants: list[str], seeds: list[int], steps: int) -> list[dict[str, Any]]:
    """Every (game, variant, seed) not yet saved in ``exp`` (none for no games); returns everything saved there."""
    for game in games:
        for variant in variants:
            for seed in seeds:
                exp.unit(f"{game}_{variant}_s{seed}_{steps}", lambda g=game, v=variant, s=seed: run_one(g, v, steps, s))
    order = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(exp.saved(), key=lambda r: (r["game"], order[r["variant"]], r["seed"]))


def code_used(run: dict[str, Any]) -> bool:
    """The recipe rule's "not collapsed", for a run or a game's summary: first slot's perplexity and
    controllability at k = 8 above their floors."""
    return run["perplexity"][0] > FIRST_SLOT_FLOOR and at_budget(run["controllability"], 8) > CONTROL_FLOOR


def choose_recipe(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """:data:`RECIPE_RULE` applied to the saved one-seed runs: per variant measured on every ablation game, whether
    it collapses anywhere and its mean translator / IDM ratio; the chosen variant (None while none qualifies)."""
    table = {}
    for variant in VARIANTS:
        mine = {r["game"]: r for r in runs if r["variant"] == variant and r["seed"] == 0 and r["game"] in RECIPE_GAMES}
        if set(mine) != set(RECIPE_GAMES):
            continue
        collapsed = [g for g, r in mine.items() if not code_used(r)]
        ratio = float(np.mean([r["translator_best"] / r["idm"] for r in mine.values()]))
        table[variant] = {"collapsed_on": collapsed, "mean_translator_over_idm": ratio}
    eligible = [v for v, t in table.items() if not t["collapsed_on"]]  # VARIANTS lists simpler variants first
    chosen = max(eligible, key=lambda v: (round(table[v]["mean_translator_over_idm"], 3), -list(VARIANTS).index(v)), default=None)
    return {"rule": RECIPE_RULE, "variants": table, "chosen": chosen}


def recipe_report(runs: list[dict[str, Any]], commands: list[str]) -> tuple[dict[str, Any], str]:
    """The ablation's result (runs without their confusion matrices and paths, the rule's choice) and its page."""
    choice = choose_recipe(runs)
    rows = [[r["game"], r["variant"], f"{min(r['perplexity']):.2f} / {np.mean(r['perplexity']):.2f}", _per_k(r["controllability"]),
             f"{at_budget(r['probe'], 8):.3f}", f"{r['translator_best']:.3f} (k={r['best_k']})", f"{r['idm']:.3f}",
             f"{r['translator_best'] / r['idm'] if r['idm'] else float('nan'):.2f}", f"{r['train_wall_s'] / 60:.1f}"] for r in runs]
    choices = [[v, ", ".join(t["collapsed_on"]) or "none", f"{t['mean_translator_over_idm']:.2f}"] for v, t in choice["variants"].items()]
    text = "\n".join([f"# Games recipe ablation ({len(runs)} runs)", "", "Made by:", "", *(f"    {c}" for c in commands), "",
                      markdown_table(["game", "variant", "perplexity min / mean", "controllability k=1 2 4 8", "probe acc. k=8",
                                      "translator best", "IDM", "translator / IDM", "train min"], rows), "",
                      "## The rule's choice", "", f"Rule (fixed 2026-12-01): {choice['rule']}.", "",
                      markdown_table(["variant (all three games)", "collapses on", "mean translator / IDM"], choices), "",
                      f"Chosen: **{choice['chosen']}**" if choice["chosen"] else "Chosen: none yet.", ""])
    lean = [{k: v for k, v in r.items() if not k.endswith(("_confusion", "_dir")) and k != "code"} for r in runs]
    return {"commands": commands, "runs": lean, "choice": choice}, text


def suite_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One object per game (means over seeds): the contract of ``benchmarks/results/games/results.json``."""
    games = []
    for game in dict.fromkeys(r["game"] for r in runs):
        mine = [r for r in runs if r["game"] == game]
        translator = _mean_per_budget(mine, "translator")
        best = max(translator, key=translator.get)
        idm = float(np.mean([r["idm"] for r in mine]))
        perplexity = np.mean([r["perplexity"] for r in mine], axis=0).tolist()
        games.append({"task": game, "variant": mine[0]["variant"], "seeds": [r["seed"] for r in mine], "idm_accuracy": idm,
                      "translator_accuracy": translator, "best_k": best, "translator_over_idm": translator[best] / idm,
                      "perplexity": perplexity, "first_slot_collapsed": perplexity[0] < COLLAPSED_PERPLEXITY,
                      "controllability": _mean_per_budget(mine, "controllability"),
                      "n_actions": len(mine[0]["idm_confusion"]),
                      "probe_accuracy": _mean_per_budget(mine, "probe"),
                      "changed_fraction": float(np.mean([r["changed_fraction"] for r in mine])),
                      "train_wall_s": float(np.mean([r["train_wall_s"] for r in mine])), "labels": mine[0]["labels"],
                      "idm_confusion": np.sum([r["idm_confusion"] for r in mine], axis=0).tolist(),
                      "translator_confusion": np.sum([r["translator_confusion"] for r in mine], axis=0).tolist()})
        games[-1].update(read_confusions(games[-1]))
    return games


def read_confusions(game: dict[str, Any]) -> dict[str, float]:
    """What the summed confusion matrices (rows: true action, held-out transitions) say beside plain accuracy: the
    majority-class rate (always answering the commonest action), the translator's balanced accuracy at the best
    budget and the supervised IDM's, and their ratio (a constant answer cannot inflate it)."""
    def pairs(matrix: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        m = np.asarray(matrix)
        truth, pred = np.nonzero(m)
        counts = m[truth, pred]
        return np.repeat(pred, counts), np.repeat(truth, counts)

    translator, idm = pairs(game["translator_confusion"]), pairs(game["idm_confusion"])
    balanced, idm_balanced = balanced_accuracy(*translator), balanced_accuracy(*idm)
    return {"majority_rate": majority_rate(translator[1]), "translator_balanced_best": balanced,
            "idm_balanced": idm_balanced, "balanced_over_idm": balanced / idm_balanced}


def _mean_per_budget(runs: list[dict[str, Any]], key: str) -> dict[int, float]:
    return {int(k): float(np.mean([at_budget(r[key], k) for r in runs])) for k in BUDGETS}


def _per_k(table: dict, fmt: str = ".2f") -> str:
    return " ".join(f"{at_budget(table, k):{fmt}}" for k in BUDGETS)


def action_names(game: str) -> list[str]:
    """The game's action names (ALE's and our Procgen env's ``get_action_meanings``; Procgen's are one fixed list,
    read without making the env, so a report can be rebuilt where procgen is not installed)."""
    import gymnasium as gym

    if game.startswith("procgen-"):
        from ..envs.procgen import ACTION_MEANINGS

        return list(ACTION_MEANINGS)
    env = gym.make(f"flexlam/{game}-v0")
    try:
        return list(env.unwrapped.get_action_meanings())
    finally:
        env.close()


def confusion_text(game: dict[str, Any], names: list[str]) -> str:
    """The supervised IDM's and the translator's confusion on held-out transitions (rows: true action; summed
    over seeds), for a game below the bar: which actions neither can tell apart."""
    def table(matrix: list[list[int]]) -> str:
        m = np.asarray(matrix)
        used = [i for i in range(len(m)) if m[i].sum() or m[:, i].sum()]
        rows = [[names[i], *(int(m[i, j]) for j in used)] for i in used]
        return markdown_table(["true (rows) / predicted", *(names[j] for j in used)], rows)
    return "\n".join([f"### {game['task']}: supervised IDM (accuracy {game['idm_accuracy']:.3f})", "", table(game["idm_confusion"]), "",
                      f"### {game['task']}: translator at k = {game['best_k']}", "", table(game["translator_confusion"]), ""])


def weak_idm(game: dict[str, Any]) -> bool:
    """A supervised IDM below twice chance: the actions barely show in one step of this data."""
    return game["idm_accuracy"] < 2.0 / game["n_actions"]


def suite_table(games: list[dict[str, Any]]) -> str:
    rows = [[g["task"], len(g["seeds"]), "yes" if code_used(g) else "**no**", " ".join(f"{u:.2f}" for u in g["perplexity"]),
             _per_k(g["controllability"]), _per_k(g["translator_accuracy"], ".3f"), f"{g['idm_accuracy']:.3f}",
             f"{g['majority_rate']:.3f}", f"{g['translator_over_idm']:.2f}",
             "yes" if g["translator_over_idm"] >= TARGET_RATIO else "**no**",
             f"{g['translator_balanced_best']:.3f} / {g['idm_balanced']:.3f}", f"{g['balanced_over_idm']:.2f}",
             "yes" if g["balanced_over_idm"] >= TARGET_RATIO else "**no**"] for g in games]
    table = markdown_table(["game", "seeds", "code used", "perplexity per slot", "controllability k=1 2 4 8", "translator k=1 2 4 8",
                            "IDM", "majority", "best / IDM", f">= {TARGET_RATIO}", "balanced: best k / IDM", "ratio",
                            f">= {TARGET_RATIO}"], rows)
    below = [g["task"] for g in games if g["translator_accuracy"][g["best_k"]] <= g["majority_rate"]]
    weak = [g["task"] for g in games if g["idm_accuracy"] <= g["majority_rate"]]
    return "\n".join([table, "", "Accuracies are on held-out transitions; \"majority\" is always answering the commonest action "
                      "there, and the balanced columns average each action's recall (both IDMs: the same 2% labels), read from the "
                      "committed confusion matrices at the best budget."
                      + (f" Translator at or below the majority rate: {', '.join(below)}." if below else "")
                      + (f" Same-labels IDM at or below it (a ratio to it reads nothing): {', '.join(weak)}." if weak else "")])


def suite_report(runs: list[dict[str, Any]], variant: str, steps: int, ppo: list[dict[str, Any]],
                 commands: list[str]) -> tuple[dict[str, Any], str]:
    """One variant's suite (every game saved for it at ``steps`` updates) and its page."""
    order = {g: i for i, g in enumerate(SUITE)}
    summary = suite_summary(sorted((r for r in runs if r["variant"] == variant and r["steps"] == steps),
                                   key=lambda r: (order.get(r["game"], len(order)), r["game"], r["seed"])))
    result = {"commands": commands, "variant": variant, "steps": steps, "label_fraction": LABEL_FRACTION, "games": summary, "ppo": ppo}
    below = [g for g in summary if g["translator_over_idm"] < TARGET_RATIO or weak_idm(g) or not code_used(g)]
    text = "\n".join([f"# LAMs on games: recipe `{variant}`", "", "Made by:", "", *(f"    {c}" for c in commands), "",
                      suite_table(summary), "", *(ppo_table(ppo) if ppo else []),
                      *(["## Below the bar, code unused or IDM under twice chance: confusion on held-out transitions", "",
                         *(confusion_text(g, action_names(g["task"])) for g in below)] if below else [])])
    return result, text


def ppo_runs(exp: Experiment, runs: list[dict[str, Any]], games: list[str], variant: str, timesteps: int) -> list[dict[str, Any]]:
    """PPO in latent space at each game's best budget (seed 0's LAM and translator of ``variant``) and on raw actions,
    same steps, for ``games`` not yet saved under ``out/ppo``; returns every PPO run of ``variant`` saved there. The
    raw agent does not depend on the LAM, so it is saved once per game and length and shared by every variant."""
    ppo = Experiment(exp.out, exp.script, exp.argv, units="ppo")
    for game in games:
        run = next(r for r in runs if r["game"] == game and r["seed"] == 0 and r["variant"] == variant)
        for space in ("latent", "raw"):
            name = f"{game}_latent_{variant}_{timesteps}" if space == "latent" else f"{game}_raw_{timesteps}"
            ppo.unit(name, lambda r=run, s=space, n=name: _ppo_run(r, s, timesteps, exp.out / "ppo" / n))
    return saved_ppo_runs(exp, variant)


def _ppo_run(run: dict[str, Any], space: str, timesteps: int, out: Path) -> dict[str, Any]:
    from ..agents.train import AgentConfig, train_agent

    latent = space == "latent"
    cfg = AgentConfig(env=run["game"], space=space, lam_dir=run["lam_dir"] if latent else None,
                      translator_dir=run["translator_dir"], prefix_len=run["best_k"], total_timesteps=timesteps,
                      n_envs=8, eval_freq=max(timesteps // 4, 1), eval_episodes=5, max_episode_steps=PPO_EPISODE_STEPS,
                      progress_bar=False, gif=False, device="cpu")
    start = time.time()
    agent = train_agent(cfg, out)
    return {"game": run["game"], "space": space, "variant": run["variant"] if latent else None,
            "prefix_len": run["best_k"] if latent else None, "timesteps": timesteps, "eval_mean_return": agent.eval_mean_return,
            "train_return_last20": agent.train_return, "curve": agent.curve, "wall_s": time.time() - start}


def saved_ppo_runs(exp: Experiment, variant: str) -> list[dict[str, Any]]:
    """Every PPO run saved under ``out/ppo`` that belongs to ``variant``'s report (its latent agents and every raw
    one), by game then space."""
    runs = Experiment(exp.out, exp.script, exp.argv, units="ppo").saved()
    runs = [r for r in runs if r.get("variant") in (None, variant)]
    return sorted(runs, key=lambda r: (r["game"], r["space"] != "latent", r["timesteps"]))


def ppo_table(runs: list[dict[str, Any]]) -> list[str]:
    """Report lines: PPO in latent space vs on raw actions (secondary: one seed, short runs, no ranking claimed)."""
    rows = [[r["game"], r["space"], r["prefix_len"] or "-", r["timesteps"], f"{r['eval_mean_return']:.2f}",
             f"{r['train_return_last20']:.2f}", f"{r['wall_s'] / 60:.0f}"] for r in runs]
    return ["## PPO in latent space (best k) vs raw actions, equal env steps", "",
            "Secondary: one seed per game at a short length, so no ranking is claimed.", "",
            markdown_table(["game", "actions", "k", "env steps", "eval return (5 episodes)", "last 20 training episodes",
                            "wall min"], rows), ""]


def plateau_report(exp: Experiment, commands: list[str], speed_file: Path) -> tuple[dict[str, Any], str]:
    """Every saved plateau run, with the wall time it implies on 2 idle cores (its updates x the games LAM's idle
    time per update at batch 32 in ``speed_file``, measured on Breakout's grayscale frames: Procgen's RGB frames
    cost somewhat more per update, so theirs is a lower bound)."""
    runs = sorted((r for r in exp.saved()), key=lambda r: (SUITE.index(r["game"]) if r["game"] in SUITE else len(SUITE), r["seed"]))
    speed = read_json(speed_file, "throughput")
    step_s = next(r["ms_per_step"] for r in speed["train"] if r["model"] == "games-flexlam" and r["batch"] == 32
                  and r["setting"] == "new") / 1000
    for r in runs:
        r["idle_2core_min"] = r["updates"] * step_s / 60
    rows = [[r["game"], r["seed"], r["updates"], "yes" if r["plateaued"] else f"no (cap {r['cap']})", r["threads"],
             f"{r['wall_s'] / 60:.0f}", f"{r['idle_2core_min']:.0f}",
             _per_k(r["controllability"]) if "controllability" in r else "-",
             ("yes" if code_used(r) else "**no**") if "controllability" in r else "-"] for r in runs]
    text = "\n".join([f"# Games: updates to a plateau (recipe `{SHIPPED}`, batch 32)", "", "Made by:", "",
                      *(f"    {c}" for c in commands), "",
                      "Stop rule: scale=default's (`PLATEAU` in flexlam_rl/bench/games.py). Wall time as run: at the torch "
                      "threads shown, on a machine that other jobs may have shared. On 2 idle cores: updates x "
                      f"{step_s * 1000:.0f} ms (benchmarks/results/throughput_games, Breakout; RGB Procgen costs more).", "",
                      "Controllability and code used: the plateau LAM's code on held-out transitions, by the recipe "
                      "rule's test (as in the ablation, which stops at 3000 updates).", "",
                      markdown_table(["game", "seed", "updates", "plateaued", "threads", "wall min as run", "min on 2 idle cores",
                                      "controllability k=1 2 4 8", "code used"], rows), ""])
    return {"commands": commands, "ms_per_update_idle": step_s * 1000, "stop_rule": PLATEAU, "runs": runs}, text
