"""Is the action in a game's data, and can our IDM read it? Procgen BigFish, where the recipe's code goes unused.

    python benchmarks/games_idm.py [--game procgen-bigfish] [--variants norm norm_skip4] [--fractions 0.02 0.2 1.0]
                                   [--steps 2000 ...] [--out benchmarks/results/games_procgen]

Two checks per data variant of ``benchmarks/games.py`` (same datasets, same held-out split):

- **The action, read by hand.** BigFish's player is the one green fish, so the centroid of its green pixels in
  o_t and o_t+1 gives its displacement; the mean displacement per horizontal / vertical component of the
  recorded action says whether the action shows in one step (and that actions and frames are aligned: the
  displacement follows a_t more than a_t-1). A rule that reads the action off that displacement (each component's
  sign, past a dead zone chosen on the training split) is scored on the held-out split: what a reader of the move
  gets, against the IDM. Its ceiling is 0.6, not 1: six of the 15 actions (D, A, W, S, Q, E) do nothing in BigFish,
  so with NOOP they are seven actions the frames cannot tell apart.
- **The supervised IDM against its label count**: the one ``games.py`` compares the translator with (the LAM's
  encoder architecture, 2000 updates, or ``--steps`` more), from 2% of the training transitions up to all of them. If it stays near
  chance with every label, the translator / IDM ratio says nothing and the fault is in what the encoder
  architecture can see, not in the labels.

Each (variant, fraction, updates) is saved under ``<out>/idm/`` as it finishes, so a rerun resumes; the report
holds every saved run, whichever invocation made it. ``--game`` runs the IDM check on another game of
``games.py`` (report ``idm_<game>.{json,md}``; the hand-read rule is BigFish's only, as it reads its green fish).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

# the harness whose IDM this checks (benchmarks/ is the script's path)
from games import ALIGN, GAME_DATA, VARIANTS, game_data, train_variant

from flexlam_rl.align import AlignConfig, AlignOptions, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json, read_json
from flexlam_rl.data.sources import cache_root
from flexlam_rl.data.transitions import TransitionData, TransitionSet, load_transitions
from flexlam_rl.tables import markdown_table

GAME = "procgen-bigfish"
# Procgen's 15 actions (ALE order): the horizontal and vertical component each presses (+1: right / up)
HORIZONTAL = np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
VERTICAL = np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0])


def player_centroids(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 -> ``[N, 2]`` (x, y) of the green pixels (BigFish's player; NaN where none)."""
    f = frames.astype(np.int16)
    green = (f[..., 1] > 150) & (f[..., 0] < 100) & (f[..., 2] < 120)
    count = green.sum((1, 2))
    ys, xs = np.arange(f.shape[1])[None, :, None], np.arange(f.shape[2])[None, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.stack([(green * xs).sum((1, 2)) / count, (green * ys).sum((1, 2)) / count], 1)
    out[count <= 5] = np.nan
    return out


def player_moves(split: TransitionSet, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(player displacement ``[N, 2]`` in px, x right and y up (NaN where the player is not found), action) at ``idx``."""
    batch = split.__getitems__(idx)
    move = player_centroids(batch["next_obs"]) - player_centroids(batch["obs"])
    move[:, 1] *= -1  # image y grows downwards; +1 = up
    return move, batch["action"].astype(int)


def displacement(train: TransitionSet, limit: int = 4000) -> dict[str, Any]:
    """Mean player displacement (px) per action component, by a_t and by a_t-1."""
    idx = np.arange(1, len(train), max(1, len(train) // limit))[:limit]
    move, now = player_moves(train, idx)
    found = ~np.isnan(move).any(1)
    before = train.actions(idx - 1).astype(int)
    same_episode = train.frame_index[idx] == train.frame_index[idx - 1] + 1
    out: dict[str, Any] = {"transitions": int(len(idx)), "player_found": float(found.mean())}
    for axis, (name, comp) in enumerate((("horizontal", HORIZONTAL), ("vertical", VERTICAL))):
        for label, actions, keep in (("a_t", now, found), ("a_t-1", before, found & same_episode)):
            out[f"{name}_by_{label}"] = {str(v): float(move[keep & (comp[actions] == v), axis].mean()) for v in (-1, 0, 1)}
    return out


DEAD_ZONES = (0.25, 0.5, 1.0)  # px; the rule's threshold is chosen among these on the training split


def _moves(split: TransitionSet, limit: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """:func:`player_moves` for up to ``limit`` evenly spaced transitions, where the player shows."""
    move, action = player_moves(split, np.arange(0, len(split), max(1, len(split) // limit))[:limit])
    found = ~np.isnan(move).any(1)
    return move[found], action[found]


def rule_predict(move: np.ndarray, dead_zone: float) -> np.ndarray:
    """The action whose horizontal / vertical components are the displacement's signs (|move| <= dead_zone: 0)."""
    signs = np.where(move > dead_zone, 1, np.where(move < -dead_zone, -1, 0))
    table = {(int(HORIZONTAL[a]), int(VERTICAL[a])): a for a in range(9)}
    return np.array([table[(int(h), int(v))] for h, v in signs])


def rule_accuracy(data: TransitionData) -> dict[str, float]:
    """Held-out accuracy of :func:`rule_predict`, its dead zone chosen on the training split."""
    move, action = _moves(data.train)
    dead_zone = max(DEAD_ZONES, key=lambda z: float((rule_predict(move, z) == action).mean()))
    move, action = _moves(data.heldout)
    return {"dead_zone": dead_zone, "accuracy": float((rule_predict(move, dead_zone) == action).mean()),
            "transitions": int(len(action))}


def idm_accuracy(variant: str, fraction: float, seed: int, steps: int = ALIGN["steps"], game: str = GAME) -> dict[str, Any]:
    """The supervised IDM (and, beside it, the translator at k = 8) from ``fraction`` of the training transitions,
    each trained for ``steps`` updates (the harness's default, or more: is the IDM merely undertrained?)."""
    dataset_id, _, _, trained = train_variant(game, variant, 3000, seed, cache_root() / "games")
    lam = trained.lam
    pool, evaluation = label_and_eval_sets([dataset_id], [dataset_id], 0.1, 0)
    labels = LabelConfig(count=max(1, round(fraction * len(pool))), seed=seed)
    result = run_alignment(lam, pool, evaluation, labels, AlignConfig(**{**ALIGN, "steps": steps}, seed=seed),
                           AlignOptions([8], supervised_idm=True))
    return {"variant": variant, "fraction": fraction, "steps": steps, "labels": len(result.labels), "idm": result.supervised_idm,
            "translator_k8": result.scores[8], "chance": 1 / int(pool.sources[0].action_space.n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default=GAME, choices=sorted(g for g in GAME_DATA if g.startswith("procgen-")))
    parser.add_argument("--variants", nargs="+", default=["norm", "norm_skip4"], choices=list(VARIANTS))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.02, 0.2, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=[ALIGN["steps"]], help="IDM / translator updates (each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/games_procgen"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/games_idm.py " + " ".join(sys.argv[1:])
    game = args.game
    prefix, name = ("", "idm") if game == GAME else (f"{game}_", f"idm_{game}")  # BigFish's runs keep their names
    for variant in args.variants:
        for fraction in args.fractions:
            for steps in args.steps:
                longer = "" if steps == ALIGN["steps"] else f"_steps{steps}"
                path = args.out / "idm" / f"{prefix}{variant}_{fraction:g}_s{args.seed}{longer}.json"
                if not path.is_file():
                    print(f"{game} {variant} {fraction:g} {steps} updates ...", flush=True)
                    atomic_write_json(path, {**idm_accuracy(variant, fraction, args.seed, steps, game), "game": game,
                                             "command": command})
    order = list(VARIANTS)
    rows = sorted((r for r in (read_json(p, "IDM run") for p in (args.out / "idm").glob("*.json")) if r.get("game", GAME) == game),
                  key=lambda r: (order.index(r["variant"]), r["fraction"], r["steps"]))
    moves, measured = {}, set()  # per dataset, named by the first variant that reads it
    for variant in dict.fromkeys(r["variant"] for r in rows) if game == GAME else ():
        frame_stack, _, _, *frame_skip = VARIANTS[variant]
        dataset_id = game_data(game, frame_stack, *frame_skip)
        if dataset_id not in measured:
            measured.add(dataset_id)
            data = load_transitions(dataset_id, 0.1, 0)
            moves[variant] = {**displacement(data.train), "rule": rule_accuracy(data)}
    commands = list(dict.fromkeys(r["command"] for r in rows))
    atomic_write_json(args.out / f"{name}.json", {"commands": commands, "game": game, "displacement": moves, "idm": rows})
    move_rows = [[v, f"{m['player_found']:.2f}",
                  *(" / ".join(f"{m[f'{axis}_by_{a}'][s]:+.2f}" for s in ("-1", "0", "1"))
                    for axis in ("horizontal", "vertical") for a in ("a_t", "a_t-1")),
                  f"{m['rule']['accuracy']:.3f} (dead zone {m['rule']['dead_zone']:g} px)"] for v, m in moves.items()]
    idm_rows = [[r["variant"], f"{r['fraction']:g}", r["labels"], r["steps"], f"{r['idm']:.3f}", f"{r['translator_k8']:.3f}",
                 f"{r['chance']:.3f}"] for r in rows]
    made_by = "Made by: " + ", then ".join(f"`{c}`" for c in commands)
    moved = ["Player (green fish) displacement in px per action component (-1 / 0 / +1; +1 = right, up):", "",
             markdown_table(["data", "player found", "horizontal by a_t", "horizontal by a_t-1", "vertical by a_t",
                             "vertical by a_t-1", "rule from the move: held-out accuracy"], move_rows), ""] if moves else []
    text = "\n".join([f"# Is the action in {game}'s data, and can our IDM read it?", "", made_by, "", *moved,
                      "Supervised IDM (the LAM's encoder architecture) and translator (k = 8) against labels and updates:", "",
                      markdown_table(["data", "fraction", "labels", "updates", "IDM", "translator k=8", "chance"], idm_rows), ""])
    atomic_write_bytes(args.out / f"{name}.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
