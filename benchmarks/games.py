"""LAMs on Atari and Procgen: why the code collapses, what fixes it (``recipe``), and the result per game (``suite``).

    python benchmarks/games.py recipe [--games breakout pong procgen-coinrun] [--variants base changed stack stack_changed]
                                      [--steps 3000] [--out benchmarks/results/games_recipe]
    python benchmarks/games.py suite [--variant norm_pool] [--games ...] [--seeds 0] [--steps 3000] [--out benchmarks/results/games]
    python benchmarks/games.py ppo [--variant norm_pool] [--games breakout procgen-coinrun] [--timesteps 100000]
    python benchmarks/games.py plateau [--games ...] [--seeds 0] [--out benchmarks/results/games_plateau]

Per game, action-labelled data is collected once (Atari: an epsilon-0.5 noised scripted expert; Procgen: random
actions held about 4 steps), then per variant and seed one FlexLAM (K = 8) is trained for ``--steps`` updates and
scored on held-out episodes: code usage per slot, controllability per budget (:func:`flexlam_rl.evaluate.diagnosis.controllability`),
a probe from tokens to the true action, and the translator's accuracy from 2% labels per budget against a supervised
IDM trained on the same labels (with both confusion matrices). Variants (LAM configs; frames 64x64, Atari grayscale):

- ``base``: the default LAM (whole-frame MSE);
- ``changed``: + the MSE on the pixels that change, weight 1 (``lam.change_weight=1``, the ``lam=games`` recipe);
- ``stack``: two stacked frames as o_t, the newest frame predicted (``preprocess frame_stack: 2``, ``lam.predict_newest``);
- ``stack_changed``: both;
- ``saturation``, ``changed_saturation``: ``base`` and ``changed`` plus a penalty on the encoder's values past FSQ's
  tanh bound (``lam.saturation_weight=1``): the collapsed codes sit there, where no gradient reaches the encoder;
- ``spread``, ``changed_spread``: ``base`` and ``changed`` plus a penalty on slots whose values do not spread over a
  batch (``lam.spread_weight=1``, VICReg's variance term): codes that vary from the first updates;
- ``spread_decay``, ``changed_spread_decay``: the spread penalty as a kick only, its weight falling linearly to 0 over
  the first 1000 updates (``lam.spread_updates=1000``); added on 2026-12-01 after ``spread`` and ``changed_spread``
  left Breakout's decoder ignoring its codes (controllability 0; ``collapse.md``: values pushed past the tanh margin);
- ``spread_saturation``, ``changed_spread_saturation``: ``spread`` and ``changed_spread`` plus the saturation penalty
  (added after ``spread_decay`` also left Breakout's decoder ignoring its codes, with most values past the margin);
- ``norm``, ``changed_norm``: ``base`` and ``changed`` with each slot's encoder values standardized over the batch
  before FSQ (``lam.code_norm=true``, :class:`flexlam_rl.model.quantize.CodeNorm`); added on 2026-12-01 after
  ``games_trace.py`` showed a fresh encoder's values spreading ~0.003 over transitions against bins ~0.3 wide;
- ``stack_norm``: ``norm`` with two stacked frames as o_t, the newest predicted; added on 2026-12-01 after ``norm``
  left BigFish's and StarPilot's codes unused (``results/games``), measured on them with ``changed_norm`` under
  ``--out benchmarks/results/games_procgen``. Rule fixed before those runs: a variant replaces ``norm`` as the
  pixel-game recipe only if it uses its code on BigFish and StarPilot and, run on the three ablation games, the
  rule below still chooses it;
- ``norm_skip4``: ``norm`` on data whose actions are each repeated for 4 frames (``preprocess frame_skip: 4``, as
  ALE's tasks already do); added on 2026-12-01 after a supervised IDM stayed near chance on BigFish even from 20%
  of its data. Rule fixed before its runs: the Procgen tasks get frame skip 4 if with it the code is used and the
  supervised IDM reaches twice chance on BigFish and StarPilot, and CoinRun's code stays used;
- ``norm_pool``: ``norm`` with the IDM's stages convolving at full resolution and then max-pooling
  (``lam.idm_downsample=maxpool``, IMPALA's stem as in LAPO's IDM; the supervised IDM gets the same encoder); added on
  2026-12-01 after 10,000 updates lifted BigFish's supervised IDM with every label only to 0.167. Rule fixed before its
  runs: it is measured on the three ablation games (the selection rule below then decides the recipe) only if on
  BigFish the supervised IDM with every label reaches twice chance (0.133) at 2000 updates and the LAM's code is used
  (controllability at k = 8 above 0.05);
- ``changed_norm_pool``, ``stack_norm_pool``: ``norm_pool`` with the changed-pixel loss, and with two stacked frames
  as o_t (the newest predicted); added on 2026-12-02 after ``norm_pool`` left StarPilot's code unused
  (controllability 0.02) although a supervised IDM with the same encoder reads its action from every label (0.376,
  chance 0.067: ``results/games_procgen/idm_procgen-starpilot.md``). Rule fixed before their runs: each is run on
  StarPilot and BigFish; a variant replaces ``norm_pool`` only if its code is used on both (the rule's test below)
  and, run on the three ablation games, the selection rule below still chooses it;
- ``inject_norm_pool``: ``norm_pool`` with the latent also entering the decoder's first layer, tiled over the frame
  (``lam.fdm_latent_input=true``; LAPO's world model injects its latent action there and at the bottleneck); added
  on 2026-12-02 after ``changed_norm_pool`` and ``stack_norm_pool`` left StarPilot's code unused or at the rule's
  edge: our decoder conditions only its 8x8 bottleneck on the code while skips carry o_t at full resolution, so a
  small sprite's one-step move may be cheaper to blur than to read from the code. Rule fixed before its runs (the
  same as for the two variants above): it is run on StarPilot and BigFish; it replaces ``norm_pool`` only if its
  code is used on both (the rule's test below) and, run on the three ablation games, the selection rule below
  still chooses it;
- ``skip4_norm_pool``: ``norm_pool`` on data whose actions are each repeated for 4 frames (as ``norm_skip4``);
  added on 2026-12-02 after ``inject_norm_pool`` also left StarPilot's code unused (0.02) and its plateau run showed
  more updates do not help: a third of StarPilot's pixels change every step (the scrolling background), its ship
  moves a pixel or two, so the code buys almost nothing on the frame; over 4 frames the ship's move is 4x larger
  (LAOM predicts a frame several steps ahead for the same reason). ``norm_skip4`` did not help BigFish, but with
  the stride encoder that could not read BigFish's action even supervised. Rule fixed before its runs (``norm_skip4``'s):
  the Procgen tasks get frame skip 4 under ``lam=games`` only if with it the code is used (the rule's test below)
  and the supervised IDM from every label (``games_idm.py --fractions 1.0``, 2000 updates) reaches twice chance on
  StarPilot and BigFish, and CoinRun's code stays used;
- ``base_b64``, ``changed_b64``: ``base`` and ``changed`` at batch 64 (the others use 32), the setting of the collapsed
  run in benchmarks/results/atari (with ``--steps 1500``).

How the shipped recipe is chosen (rule written down on 2026-12-01, before the spread runs on Breakout and CoinRun
were seen): among the variants measured on all three ablation games, the one whose code collapses on none of them
(first slot's perplexity above 1.1 and controllability at k = 8 above 0.05 on every game) with the highest mean
ratio of best translator accuracy to the supervised IDM; ties go to the simpler variant.

``recipe`` is the one-seed ablation; ``suite`` runs one variant on every game (``results.json``: ``games``, one object
per game); ``ppo`` trains PPO in latent space at the best budget and on raw actions for the same env steps (secondary);
``plateau`` trains the shipped recipe's FlexLAM on each game to a plateau under scale=default's stop rule
(``PLATEAU``) and reports the updates and wall time it takes.
Each variant's suite report is ``<out>/variants/<variant>/results.{json,md}``; the shipped variant's (``SHIPPED``, what
``lam=games`` is) is also ``<out>/results.{json,md}``.
Each run is saved under ``<out>/per_run/`` as it finishes, so a rerun resumes; reports are rebuilt from everything saved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flexlam_rl.align import AlignConfig, AlignOptions, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.bench.cache import train_cached
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json, read_json
from flexlam_rl.config import Episodes
from flexlam_rl.data.collect import ensure_dataset
from flexlam_rl.data.sources import cache_root
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.envs import get_task
from flexlam_rl.evaluate.diagnosis import COLLAPSED_PERPLEXITY, action_probe, controllability, sample
from flexlam_rl.metrics import balanced_accuracy, majority_rate
from flexlam_rl.model.lam import null_fill
from flexlam_rl.pretrain.train import TrainConfig, lam_config_for
from flexlam_rl.tables import at_budget, markdown_table

# game -> (behaviour, episodes, epsilon, max episode steps) of the LAM's action-free (here: labelled) data
GAME_DATA = {
    "breakout": ("noisy", 40, 0.5, 400), "pong": ("noisy", 40, 0.5, 400), "freeway": ("noisy", 40, 0.5, 400),
    "procgen-coinrun": ("sticky", 60, 0.0, 300), "procgen-bigfish": ("sticky", 160, 0.0, 300),
    "procgen-starpilot": ("sticky", 160, 0.0, 300), "procgen-maze": ("sticky", 60, 0.0, 300),
}
VARIANTS = {  # name -> (frame_stack, LAM overrides, train overrides[, frame skip of the data when not the task's])
    "base": (1, {}, {}),
    "changed": (1, {"change_weight": 1.0}, {}),
    "stack": (2, {"predict_newest": True}, {}),
    "stack_changed": (2, {"predict_newest": True, "change_weight": 1.0}, {}),
    # the setting that collapsed in benchmarks/results/atari: batch 64 (run with --steps 1500 to match it)
    "base_b64": (1, {}, {"batch_size": 64}),
    "changed_b64": (1, {"change_weight": 1.0}, {"batch_size": 64}),
    # keep the encoder's values off FSQ's flat tanh tails, where the collapsed codes sit
    "saturation": (1, {"saturation_weight": 1.0}, {}),
    "changed_saturation": (1, {"change_weight": 1.0, "saturation_weight": 1.0}, {}),
    # ask every slot to spread its values over a batch: codes that vary from the first updates
    "spread": (1, {"spread_weight": 1.0}, {}),
    "changed_spread": (1, {"change_weight": 1.0, "spread_weight": 1.0}, {}),
    # added after spread's Breakout runs (codes that vary but that the decoder ignores, controllability 0): the
    # spread penalty only as a kick out of the collapsed start, its weight falling to 0 over the first 1000 updates
    "spread_decay": (1, {"spread_weight": 1.0, "spread_updates": 1000}, {}),
    "changed_spread_decay": (1, {"change_weight": 1.0, "spread_weight": 1.0, "spread_updates": 1000}, {}),
    # added after spread_decay failed on Breakout too: spread values, kept within reach of FSQ's tanh slope
    "spread_saturation": (1, {"spread_weight": 1.0, "saturation_weight": 1.0}, {}),
    "changed_spread_saturation": (1, {"change_weight": 1.0, "spread_weight": 1.0, "saturation_weight": 1.0}, {}),
    # added after games_trace.py showed the encoder's values spread ~0.003 over transitions at initialization (one
    # code for everything from the start): standardize each slot over the batch before FSQ, no loss term
    "norm": (1, {"code_norm": True}, {}),
    "changed_norm": (1, {"change_weight": 1.0, "code_norm": True}, {}),
    # added after norm left BigFish's and StarPilot's codes unused (controllability 0.00 / 0.02, results/games):
    # o_t as two frames, so the other objects' motion is predictable without the code (LAPO feeds past frames)
    "stack_norm": (2, {"predict_newest": True, "code_norm": True}, {}),
    # added after a supervised IDM on BigFish stayed near chance even from 20% of the data (3204 labels: 0.105):
    # one Procgen step moves the player fish ~1 px; each action repeated 4 frames, as ALE's frame skip does
    "norm_skip4": (1, {"code_norm": True}, {}, 4),
    # added after 5x more updates lifted BigFish's supervised IDM only from 0.098 to 0.167 (every label): stages that
    # convolve at full resolution and max-pool (IMPALA's stem, as LAPO's IDM) so a 1-px move of a small sprite survives
    "norm_pool": (1, {"code_norm": True, "idm_downsample": "maxpool"}, {}),
    # added after norm_pool left StarPilot's code unused while the same encoder, supervised, reads its action: make the
    # code needed for the frame on a busy screen (the loss on what changes; the other objects' motion from two frames)
    "changed_norm_pool": (1, {"change_weight": 1.0, "code_norm": True, "idm_downsample": "maxpool"}, {}),
    "stack_norm_pool": (2, {"predict_newest": True, "code_norm": True, "idm_downsample": "maxpool"}, {}),
    # added after those two left StarPilot's code unused or at the edge: the code enters the decoder at its first layer
    # too (LAPO), not only at the 8x8 bottleneck that full-resolution skips of o_t bypass
    "inject_norm_pool": (1, {"code_norm": True, "idm_downsample": "maxpool", "fdm_latent_input": True}, {}),
    # added after inject_norm_pool and StarPilot's plateau run left its code unused: each action held for 4 frames, so
    # the ship's move is 4x larger against a background that scrolls every step
    "skip4_norm_pool": (1, {"code_norm": True, "idm_downsample": "maxpool"}, {}, 4),
}
SHIPPED = "norm_pool"  # the variant ``lam=games`` is (tests check it is the ablation rule's choice)
SUITE = ["breakout", "pong", "freeway", "procgen-coinrun", "procgen-bigfish", "procgen-starpilot"]
PPO_GAMES = ["breakout", "procgen-coinrun"]  # one game per family whose code is used (BigFish's is not: results/games)
PPO_EPISODE_STEPS = 1000
TARGET_RATIO = 0.85  # the bar: best translator accuracy >= 0.85 x the supervised IDM on the same labels
# scale=default's stop rule (fixed 2026-12-01: a check every 250 updates on 512 validation transitions, every budget's
# mean of its last 4 checks not 2% below the 4 before, one LR decay x0.1, then stop; cap 30000), at the suite's batch
# of 32; fixed on 2026-12-02 before any games plateau run
PLATEAU = {"until_plateau": True, "max_steps": 30000, "eval_every": 250, "eval_transitions": 512, "plateau_window": 4,
           "plateau_tol": 0.02, "plateau_decays": 1, "plateau_lr_factor": 0.1, "checkpoint_every": 1000}
LABEL_FRACTION = 0.02
BUDGETS = [1, 2, 4, 8]
ALIGN = {"steps": 2000, "batch_size": 128, "use_obs": True}


def game_data(game: str, frame_stack: int, frame_skip: int | None = None) -> str:
    """Collect (or reuse) a game's data at this frame stack (and frame skip, when not the task's); returns its
    dataset id."""
    behaviour, episodes, epsilon, max_steps = GAME_DATA[game]
    preprocess = dict(get_task(game).preprocess, frame_stack=frame_stack)
    skip = ""
    if frame_skip is not None and frame_skip != preprocess.get("frame_skip", 1):
        preprocess["frame_skip"], skip = frame_skip, f"-skip{frame_skip}"
    dataset_id = f"games-recipe/{game}-stack{frame_stack}{skip}/{behaviour}-{episodes}ep-v0"
    ensure_dataset(dataset_id, game, behaviour, Episodes(episodes, 0, max_steps), epsilon=epsilon or 0.3, preprocess=preprocess)
    return dataset_id


def train_variant(game: str, variant: str, steps: int, seed: int, cache: Path,
                  stop: dict[str, Any] | None = None) -> tuple[str, Any, Any, Any]:
    """(dataset id, transitions, LAM config, cached training run) of one (game, variant, seed): the one place that
    builds a variant's settings, so every script reusing its LAM hits the same cache entry. ``stop``: train to a
    plateau under these TrainConfig fields (:data:`PLATEAU`), judged on a validation split of 10% of the training
    episodes, instead of for ``steps`` updates (the held-out split is the same either way)."""
    frame_stack, overrides, train_overrides, *frame_skip = VARIANTS[variant]
    dataset_id = game_data(game, frame_stack, *frame_skip)
    data = load_transitions(dataset_id, 0.1, 0, validation_fraction=0.1 if stop else 0.0)
    lam_cfg = lam_config_for(overrides, data)
    schedule = stop or {"steps": steps, "eval_every": 10**9}
    train_cfg = TrainConfig(**{"batch_size": 32, "seed": seed, "progress": False, **schedule, **train_overrides})
    return dataset_id, data, lam_cfg, train_cached(data, lam_cfg, train_cfg, cache)


def plateau_run(game: str, seed: int, cache: Path) -> dict[str, Any]:
    """The shipped recipe's FlexLAM trained to a plateau under :data:`PLATEAU`: how many updates a game takes
    (resumes from its checkpoints, so a run cut by a session's end continues), and whether its code is used there
    (a code unused after ``--steps`` updates may only need more)."""
    _, data, _, trained = train_variant(game, SHIPPED, 0, seed, cache, stop=PLATEAU)
    info = trained.info
    return {"game": game, "variant": SHIPPED, "seed": seed, "updates": info["updates"], "plateaued": info["plateaued"],
            "cap": PLATEAU["max_steps"], "wall_s": info["wall_s"], "threads": torch.get_num_threads(), "transitions": len(data.train),
            "curve": [{"updates": c["updates"], "wall_s": c["wall_s"], "mse": c["mse"]} for c in info["curve"]],
            **plateau_code(trained.lam, data, seed)}


def plateau_code(lam: Any, data: Any, seed: int) -> dict[str, Any]:
    """Code usage and controllability per budget of a plateau run's LAM on held-out transitions, as ``run_one``
    scores them."""
    report = controllability(lam, data.heldout, BUDGETS, sample(len(data.heldout), 1024, seed))
    return {"perplexity": report["code_usage"], "controllability": report["controllability"]}


def run_one(game: str, variant: str, steps: int, seed: int, cache: Path) -> dict[str, Any]:
    """Train (or reuse) one LAM and score it; the translator is saved beside the LAM for PPO."""
    frame_stack = VARIANTS[variant][0]
    start = time.time()
    dataset_id, data, lam_cfg, trained = train_variant(game, variant, steps, seed, cache)
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
    return {"game": game, "variant": variant, "seed": seed, "steps": steps, "frame_stack": frame_stack, "lam": lam_cfg.to_dict(),
            "train_wall_s": trained.info["wall_s"], "total_wall_s": time.time() - start, "transitions": len(data.train),
            "perplexity": report["code_usage"], "controllability": report["controllability"], "probe": next(iter(probe.values())),
            "mse": report["mse"], "mse_changed": report["mse_changed"], "null_changed": report["null_changed"],
            "copy_changed": report["copy_changed"], "changed_fraction": report["changed_fraction"],
            "translator": aligned.scores, "best_k": best, "translator_best": aligned.scores[best],
            "idm": aligned.supervised_idm, "labels": len(aligned.labels),
            "idm_confusion": confusion(aligned.info["supervised_idm_pred"], truth, n_actions).tolist(),
            "translator_confusion": confusion(translated, truth, n_actions).tolist(),
            "lam_dir": str(Path(lam.source_path)), "translator_dir": str(translator_dir)}


def confusion(pred: np.ndarray, truth: np.ndarray, n: int) -> np.ndarray:
    """``[true action, predicted action]`` counts."""
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (truth.astype(np.int64).ravel(), np.asarray(pred).astype(np.int64).ravel()), 1)
    return out


def recipe_table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        ratio = r["translator_best"] / r["idm"] if r["idm"] else float("nan")
        rows.append([r["game"], r["variant"], f"{min(r['perplexity']):.2f} / {np.mean(r['perplexity']):.2f}",
                     " ".join(f"{at_budget(r['controllability'], k):.2f}" for k in BUDGETS),
                     f"{at_budget(r['probe'], 8):.3f}", f"{r['translator_best']:.3f} (k={r['best_k']})", f"{r['idm']:.3f}",
                     f"{ratio:.2f}", f"{r['train_wall_s'] / 60:.1f}"])
    return markdown_table(["game", "variant", "perplexity min / mean", "controllability k=1 2 4 8", "probe acc. k=8",
                           "translator best", "IDM", "translator / IDM", "train min"], rows)


def run_all(games: list[str], variants: list[str], seeds: list[int], steps: int, out: Path,
            report_only: bool = False) -> list[dict[str, Any]]:
    """Every (game, variant, seed) not yet saved under ``out/per_run`` (none with ``report_only``); returns
    everything saved there."""
    cache = cache_root() / "games"
    for game in games if not report_only else ():
        for variant in variants:
            for seed in seeds:
                path = out / "per_run" / f"{game}_{variant}_s{seed}_{steps}.json"
                if not path.is_file():
                    print(f"{game} {variant} seed {seed} ...", flush=True)
                    atomic_write_json(path, run_one(game, variant, steps, seed, cache))
    order = {v: i for i, v in enumerate(VARIANTS)}
    runs = [read_json(p, "run") for p in sorted((out / "per_run").glob("*.json"))]
    return sorted(runs, key=lambda r: (r["game"], order[r["variant"]], r["seed"]))


RECIPE_GAMES = ["breakout", "pong", "procgen-coinrun"]
CONTROL_FLOOR = 0.05  # the rule's "not collapsed": controllability at k = 8 above this on every game ...
FIRST_SLOT_FLOOR = 1.1  # ... and the first slot's perplexity above this


def code_used(run: dict[str, Any]) -> bool:
    """The recipe rule's "not collapsed", for a run or a game's summary: first slot's perplexity and
    controllability at k = 8 above their floors."""
    return run["perplexity"][0] > FIRST_SLOT_FLOOR and at_budget(run["controllability"], 8) > CONTROL_FLOOR


def choose_recipe(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule in this module's docstring, applied to the saved one-seed runs: per variant measured on every
    ablation game, whether it collapses anywhere and its mean translator / IDM ratio; the chosen variant (None
    while no variant is measured on all three games without collapsing)."""
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
    return {"rule": "no collapse on any ablation game (first-slot perplexity > 1.1, controllability at k=8 > 0.05), "
                    "then the highest mean translator / IDM ratio; ties to the simpler variant",
            "variants": table, "chosen": chosen}


def choice_text(choice: dict[str, Any]) -> str:
    rows = [[v, ", ".join(t["collapsed_on"]) or "none", f"{t['mean_translator_over_idm']:.2f}"] for v, t in choice["variants"].items()]
    return "\n".join(["## The rule's choice", "", f"Rule (fixed 2026-12-01): {choice['rule']}.", "",
                      markdown_table(["variant (all three games)", "collapses on", "mean translator / IDM"], rows), "",
                      f"Chosen: **{choice['chosen']}**" if choice["chosen"] else "Chosen: none yet.", ""])


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


def action_names(game: str) -> list[str]:
    """The game's action names (ALE's and our Procgen env's ``get_action_meanings``; Procgen's are one fixed list,
    read without making the env, so a report can be rebuilt where procgen is not installed)."""
    import gymnasium as gym

    if game.startswith("procgen-"):
        from flexlam_rl.envs.procgen import ACTION_MEANINGS

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
             " ".join(f"{at_budget(g['controllability'], k):.2f}" for k in BUDGETS),
             " ".join(f"{at_budget(g['translator_accuracy'], k):.3f}" for k in BUDGETS), f"{g['idm_accuracy']:.3f}",
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


def ppo_runs(runs: list[dict[str, Any]], games: list[str], variant: str, timesteps: int, out: Path) -> list[dict[str, Any]]:
    """PPO in latent space at each game's best budget (seed 0's LAM and translator of ``variant``) and on raw actions,
    same steps, for ``games`` not yet saved under ``out/ppo``; returns every PPO run of ``variant`` saved there (so
    runs made by separate invocations, e.g. one per venv, all reach the report). The raw agent does not depend on
    the LAM, so it is saved once per game and length and shared by every variant."""
    from flexlam_rl.agents.train import AgentConfig, train_agent

    for game in games:
        run = next(r for r in runs if r["game"] == game and r["seed"] == 0 and r["variant"] == variant)
        for space in ("latent", "raw"):
            name = f"{game}_latent_{variant}_{timesteps}" if space == "latent" else f"{game}_raw_{timesteps}"
            path = out / "ppo" / f"{name}.json"
            if not path.is_file():
                print(f"PPO {game} {space} ...", flush=True)
                cfg = AgentConfig(env=game, space=space, lam_dir=run["lam_dir"] if space == "latent" else None,
                                  translator_dir=run["translator_dir"], prefix_len=run["best_k"], total_timesteps=timesteps,
                                  n_envs=8, eval_freq=max(timesteps // 4, 1), eval_episodes=5, max_episode_steps=PPO_EPISODE_STEPS,
                                  progress_bar=False, gif=False, device="cpu")
                start = time.time()
                agent = train_agent(cfg, out / "ppo" / name)
                atomic_write_json(path, {"game": game, "space": space, "variant": variant if space == "latent" else None,
                                         "prefix_len": run["best_k"] if space == "latent" else None,
                                         "timesteps": timesteps, "eval_mean_return": agent.eval_mean_return,
                                         "train_return_last20": agent.train_return, "curve": agent.curve,
                                         "wall_s": time.time() - start})
    return saved_ppo_runs(out, variant)


def ppo_table(runs: list[dict[str, Any]]) -> list[str]:
    """Report lines: PPO in latent space vs on raw actions (secondary: one seed, short runs, no ranking claimed)."""
    rows = [[r["game"], r["space"], r["prefix_len"] or "-", r["timesteps"], f"{r['eval_mean_return']:.2f}",
             f"{r['train_return_last20']:.2f}", f"{r['wall_s'] / 60:.0f}"] for r in runs]
    return ["## PPO in latent space (best k) vs raw actions, equal env steps", "",
            "Secondary: one seed per game at a short length, so no ranking is claimed.", "",
            markdown_table(["game", "actions", "k", "env steps", "eval return (5 episodes)", "last 20 training episodes",
                            "wall min"], rows), ""]


def saved_ppo_runs(out: Path, variant: str) -> list[dict[str, Any]]:
    """Every PPO run saved under ``out/ppo`` that belongs to ``variant``'s report (its latent agents and every raw
    one), by game then space."""
    runs = [read_json(p, "PPO run") for p in sorted((out / "ppo").glob("*.json"))]
    runs = [r for r in runs if r.get("variant") in (None, variant)]
    return sorted(runs, key=lambda r: (r["game"], r["space"] != "latent", r["timesteps"]))


def plateau_report(out: Path, command: str | None) -> tuple[dict[str, Any], str]:
    """Every saved plateau run, with the wall time it implies on 2 idle cores (its updates x the games LAM's idle
    time per update at batch 32 in ``benchmarks/results/throughput_games``, measured on Breakout's grayscale
    frames: Procgen's RGB frames cost somewhat more per update, so theirs is a lower bound)."""
    runs = sorted((read_json(p, "plateau run") for p in (out / "per_run").glob("*.json")),
                  key=lambda r: (SUITE.index(r["game"]) if r["game"] in SUITE else len(SUITE), r["seed"]))
    speed = read_json(Path("benchmarks/results/throughput_games/results.json"), "throughput")
    step_s = next(r["ms_per_step"] for r in speed["train"] if r["model"] == "games-flexlam" and r["batch"] == 32
                  and r["setting"] == "new") / 1000
    for r in runs:
        r["idle_2core_min"] = r["updates"] * step_s / 60
    commands = _commands(out, command)
    rows = [[r["game"], r["seed"], r["updates"], "yes" if r["plateaued"] else f"no (cap {r['cap']})", r["threads"],
             f"{r['wall_s'] / 60:.0f}", f"{r['idle_2core_min']:.0f}",
             " ".join(f"{at_budget(r['controllability'], k):.2f}" for k in BUDGETS) if "controllability" in r else "-",
             ("yes" if code_used(r) else "**no**") if "controllability" in r else "-"] for r in runs]
    text = "\n".join([f"# Games: updates to a plateau (recipe `{SHIPPED}`, batch 32)", "", "Made by:", "",
                      *(f"    {c}" for c in commands), "",
                      "Stop rule: scale=default's (`PLATEAU` in benchmarks/games.py). Wall time as run: at the torch threads "
                      "shown, on a machine that other jobs may have shared. On 2 idle cores: updates x "
                      f"{step_s * 1000:.0f} ms (benchmarks/results/throughput_games, Breakout; RGB Procgen costs more).", "",
                      "Controllability and code used: the plateau LAM's code on held-out transitions, by the recipe "
                      "rule's test (as in the ablation, which stops at 3000 updates).", "",
                      markdown_table(["game", "seed", "updates", "plateaued", "threads", "wall min as run", "min on 2 idle cores",
                                      "controllability k=1 2 4 8", "code used"], rows), ""])
    return {"commands": commands, "ms_per_update_idle": step_s * 1000, "stop_rule": PLATEAU, "runs": runs}, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["recipe", "suite", "ppo", "plateau"])
    parser.add_argument("--games", nargs="+", choices=sorted(GAME_DATA))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--variant", default=SHIPPED, choices=list(VARIANTS), help="suite / ppo: the recipe to run")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--timesteps", type=int, default=100_000, help="ppo: env steps per agent")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="rebuild the reports from the runs saved under --out")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/games.py " + " ".join(sys.argv[1:])
    if args.mode == "plateau":
        out = args.out or Path("benchmarks/results/games_plateau")
        for game in (args.games or SUITE) if not args.report_only else ():
            for seed in args.seeds:
                path = out / "per_run" / f"{game}_s{seed}.json"
                saved = read_json(path, "plateau run") if path.is_file() else None
                if saved is None:
                    print(f"{game} seed {seed} to a plateau ...", flush=True)
                    atomic_write_json(path, plateau_run(game, seed, cache_root() / "games"))
                elif "controllability" not in saved:  # saved before the code was scored here
                    print(f"{game} seed {seed}: scoring the plateau LAM's code ...", flush=True)
                    _, data, _, trained = train_variant(game, SHIPPED, 0, seed, cache_root() / "games", stop=PLATEAU)
                    atomic_write_json(path, {**saved, **plateau_code(trained.lam, data, seed)})
        result, text = plateau_report(out, None if args.report_only else command)
        atomic_write_json(out / "results.json", result)
        atomic_write_bytes(out / "results.md", text.encode())
    elif args.mode == "recipe":
        out = args.out or Path("benchmarks/results/games_recipe")
        runs = run_all(args.games or ["breakout", "pong", "procgen-coinrun"], args.variants, args.seeds, args.steps, out,
                       args.report_only)
        commands = _commands(out, command) if not args.report_only else _commands(out, None)
        choice = choose_recipe(runs)
        atomic_write_json(out / "results.json", {"commands": commands, "runs": [_lean(r) for r in runs], "choice": choice})
        text = "\n".join([f"# Games recipe ablation ({len(runs)} runs)", "", "Made by:", "",
                          *(f"    {c}" for c in commands), "", recipe_table(runs), "", choice_text(choice)])
        atomic_write_bytes(out / "results.md", text.encode())
    else:
        out = args.out or Path("benchmarks/results/games")
        games = args.games or (SUITE if args.mode == "suite" else PPO_GAMES)
        runs = run_all(games, [args.variant], args.seeds, args.steps, out, args.report_only)
        order = {g: i for i, g in enumerate(SUITE)}  # every game saved for this variant, not just this invocation's
        summary = suite_summary(sorted((r for r in runs if r["variant"] == args.variant and r["steps"] == args.steps),
                                       key=lambda r: (order.get(r["game"], len(order)), r["game"], r["seed"])))
        report = out / "variants" / args.variant  # every variant's suite keeps its report; the shipped one is also <out>
        ppo = ppo_runs(runs, games, args.variant, args.timesteps, out) if args.mode == "ppo" else saved_ppo_runs(out, args.variant)
        commands = _commands(report, None if args.report_only else command)  # read after the runs: another venv's may have written
        result = {"commands": commands, "variant": args.variant, "steps": args.steps, "label_fraction": LABEL_FRACTION,
                  "games": summary, "ppo": ppo}
        below = [g for g in summary if g["translator_over_idm"] < TARGET_RATIO or weak_idm(g) or not code_used(g)]
        text = "\n".join([f"# LAMs on games: recipe `{args.variant}`", "", "Made by:", "", *(f"    {c}" for c in commands), "",
                          suite_table(summary), "",
                          *(ppo_table(result["ppo"]) if result["ppo"] else []),
                          *(["## Below the bar, code unused or IDM under twice chance: confusion on held-out transitions", "",
                             *(confusion_text(g, action_names(g["task"])) for g in below)] if below else [])])
        for where in [report, out] if args.variant == SHIPPED else [report]:
            atomic_write_json(where / "results.json", result)
            atomic_write_bytes(where / "results.md", text.encode())
    print(text)
    print(json.dumps({"saved": str(out)}))


def _commands(out: Path, command: str | None) -> list[str]:
    """Every command that added runs to ``out`` (each invocation adds its own; a report-only rerun adds none)."""
    previous = read_json(out / "results.json", "results", 2**24) if (out / "results.json").is_file() else {}
    commands = list(previous.get("commands", [previous["command"]] if "command" in previous else []))
    return commands if command is None or command in commands else [*commands, command]


def _lean(run: dict[str, Any]) -> dict[str, Any]:
    """A run without its confusion matrices and paths (the recipe table does not read them)."""
    return {k: v for k, v in run.items() if not k.endswith(("_confusion", "_dir"))}


if __name__ == "__main__":
    main()
