"""Why a games LAM's code collapses: what the encoder emits, per recipe run.

    python benchmarks/games_collapse.py [--runs benchmarks/results/games_recipe] [--transitions 1024]

For every run saved by ``benchmarks/games.py recipe`` whose LAM is still on this machine (the runs record where),
the encoder's pre-quantization values z on held-out transitions: per slot, their spread over transitions (standard
deviation, averaged over the slot's dimensions), their mean magnitude, and the share of values past FSQ's tanh
margin (where no gradient reaches the encoder), beside the run's first-slot perplexity and controllability at
k = 8. A collapsed code that is input-independent shows a spread near 0; one stuck in the flat tail shows values
past the margin. Writes ``collapse.json`` and ``collapse.md`` beside the ablation's results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flexlam_rl import FlexLAM
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json, read_json
from flexlam_rl.data.transitions import eval_batches, load_transitions
from flexlam_rl.evaluate.diagnosis import sample
from flexlam_rl.model.lam import SATURATION_MARGIN
from flexlam_rl.tables import at_budget, markdown_table


@torch.no_grad()
def encoder_values(lam: FlexLAM, data: Any, picks: np.ndarray) -> np.ndarray:
    """z ``[N, K, L]`` for the transitions ``picks`` of ``data``."""
    out = []
    for batch in eval_batches(data, 256, indices=picks):
        _, _, z = lam._tokenize_with_values(lam.normalize(batch["obs"]), lam.normalize(batch["next_obs"], "next_obs"))
        out.append(z.cpu().numpy())
    return np.concatenate(out)


def describe(run: dict[str, Any], transitions: int) -> dict[str, Any] | None:
    lam_dir = Path(run["lam_dir"])
    if not (lam_dir / "model.safetensors").is_file():
        return None
    lam = FlexLAM.load(lam_dir).eval()
    data = load_transitions(json.loads((lam_dir.parent / "run.json").read_text())["datasets"], 0.1, 0)  # as games.py split it
    z = encoder_values(lam, data.heldout, sample(len(data.heldout), transitions, 0))
    return {"game": run["game"], "variant": run["variant"], "seed": run["seed"],
            "spread": z.std(0).mean(-1).tolist(), "magnitude": np.abs(z).mean((0, 2)).tolist(),
            "past_margin": (np.abs(z) > SATURATION_MARGIN).mean((0, 2)).tolist(),
            "perplexity_first": run["perplexity"][0], "controllability_k8": at_budget(run["controllability"], 8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("benchmarks/results/games_recipe"))
    parser.add_argument("--transitions", type=int, default=1024)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [read_json(p, "run") for p in sorted((args.runs / "per_run").glob("*.json"))]
    rows = [d for d in (describe(r, args.transitions) for r in runs) if d is not None]
    atomic_write_json(args.runs / "collapse.json", {"command": "python benchmarks/games_collapse.py", "margin": SATURATION_MARGIN,
                                                    "runs": rows})
    table = markdown_table(
        ["game", "variant", "first-slot perplexity", "controllability k=8", "z spread per slot (min / mean)",
         "mean |z|", f"share |z| > {SATURATION_MARGIN:g}"],
        [[r["game"], r["variant"], f"{r['perplexity_first']:.2f}", f"{r['controllability_k8']:.2f}",
          f"{min(r['spread']):.3f} / {np.mean(r['spread']):.3f}", f"{np.mean(r['magnitude']):.2f}", f"{np.mean(r['past_margin']):.2f}"]
         for r in rows])
    text = "\n".join(["# What the encoder emits, per recipe run", "", "`python benchmarks/games_collapse.py`", "",
                      f"Encoder values z on {args.transitions} held-out transitions of each run's data.", "", table, ""])
    atomic_write_bytes(args.runs / "collapse.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
