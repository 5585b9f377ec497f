"""``flexlam-inspect run_dir=...``: a run's config, progress, data and code usage, and what its LAM predicts."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..checkpoint import read_json
from ..data.transitions import DataConfig
from ..errors import DataError
from ..evaluate.diagnosis import collapse_warning
from ..evaluate.inspect import code_strip, prediction_figure, run_summary, translator_summary
from ..model.lam import FlexLAM
from ..pretrain.runs import RunLayout
from ..tables import budget_table, control_table
from ._common import hydra_entry


def inspect(cfg: DictConfig) -> None:
    run_dir = Path(cfg.run_dir)
    summary = run_summary(run_dir)
    lam_cfg, train = summary["lam"] or {}, summary["train"] or {}
    kind = "FlexLAM" if lam_cfg.get("nested_dropout") else "fixed-capacity LAM"
    print(f"{run_dir}: {kind}, K={lam_cfg.get('num_tokens')}, FSQ levels {lam_cfg.get('fsq_levels')}, observations "
          f"{lam_cfg.get('obs_shape')} (preprocessing {lam_cfg.get('preprocess')})")
    print(f"step {summary['step']} of {summary['steps']}" + (f", plateau state {summary['plateau']}" if summary["plateau"] else "")
          + (f", {summary['wall_time_s']:.0f} s of training" if summary["wall_time_s"] else ""))
    print(f"datasets: {summary['datasets']}")
    print("training: " + ", ".join(f"{k}={v}" for k, v in train.items()))
    heldout, control = summary.get("heldout"), summary.get("controllability")
    if heldout:  # the final scores flexlam-pretrain printed
        print("held-out next-frame MSE per token budget k (as flexlam-pretrain reported it):")
        print(budget_table({"held-out": heldout}))
        print("code usage (perplexity) per slot on held-out transitions:", " ".join(f"{u:.2f}" for u in heldout["code_usage"]))
    elif summary["code_usage"]:  # a run still training: the last checkpoint's window of training batches
        print("code usage (perplexity) per slot over the last training batches:", " ".join(f"{u:.2f}" for u in summary["code_usage"]))
    if control:
        print(f"what the tokens do ({control['transitions']} held-out transitions):")
        print(control_table(control))
    warning = collapse_warning(control or {"code_usage": summary["code_usage"] or []}, lam_cfg.get("obs_shape"))
    if warning:
        print(f"warning: {warning}")
    data_cfg = DataConfig(**{**(summary.get("data") or {}), "datasets": summary["datasets"]})
    try:
        data = data_cfg.load()
        held = data.heldout if len(data.heldout) else data.train
    except DataError as exc:
        print(f"the run's datasets cannot be opened here ({exc}): no prediction figure, no token -> action table")
        held = None
    lam_dir = RunLayout(run_dir).lam
    lam = FlexLAM.load(lam_dir) if lam_dir.is_dir() else None  # loaded once for the parts below
    translator = translator_summary(run_dir, held, lam=lam)
    print_translator(translator)
    print_acting(run_dir)
    if cfg.figure and held is not None:
        lam = lam or FlexLAM.load(lam_dir)
        figure = prediction_figure(lam, held, run_dir / "predictions.png")
        print(f"predictions (held-out o_t, real o_t+1, and the prediction per budget): {figure}" if figure
              else "no prediction figure: this LAM reads vectors, not frames")
        first = (translator or {}).get("first_token", {}).get("actions")
        strip = code_strip(lam, held, run_dir / "codes.png", first_token=first)
        if strip:
            print(f"what each first-token code does (the predicted change from o_t at k = 1, titled with the translator's "
                  f"commonest action for it): {strip}")


def print_translator(summary: dict | None) -> None:
    """The translator's scores beside what they are read against, and what each first-token code does."""
    if summary is None:
        print("translator: none in this run (flexlam-align lam_dir=<run>/lam puts one at <run>/translator)")
        return
    a = summary["alignment"]
    if a.get("by_budget"):
        name = "accuracy" if a.get("metric") == "accuracy" else "R^2"
        print(f"translator {name} per budget k on {a.get('eval_transitions', '?')} held-out transitions ({a.get('labels', '?')} labels): "
              + ", ".join(f"{k}: {v:.3f}" for k, v in a["by_budget"].items()))
    if a.get("balanced_by_budget"):
        chance = (f"; chance: the majority rate {a['majority_rate']:.3f} (always the commonest action), balanced "
                  f"{1 / a['eval_classes']:.3f} (any constant answer over {a['eval_classes']} actions)") if a.get("eval_classes") else ""
        print("  balanced accuracy: " + ", ".join(f"{k}: {v:.3f}" for k, v in a["balanced_by_budget"].items()) + chance)
    for key, what in (("supervised_idm", "an IDM on the same labels"), ("idm_all_labels", "an IDM on every label (the ceiling)")):
        if a.get(key) is not None:
            balanced = a.get(f"{key}_balanced")
            print(f"  {what}: {a[key]:.3f}" + (f" (balanced {balanced:.3f})" if balanced is not None else ""))
    first = summary.get("first_token")
    if first:
        print(f"first token alone (k = 1) -> the translator's actions over {first['frames']} held-out frames:")
        for code, actions in first["actions"].items():
            if isinstance(actions, dict):
                ranked = sorted(actions.items(), key=lambda kv: -kv[1])[:3]
                print(f"  code {code}: " + ", ".join(f"action {action} {share:.0%}" for action, share in ranked))
            else:
                print(f"  code {code}: mean action [" + ", ".join(f"{v:+.2f}" for v in actions) + "]")


def print_acting(run_dir: Path) -> None:
    """Latent BC and the agent of a run (where the quickstart puts them), read against their baselines."""
    layout = RunLayout(run_dir)
    for path, what in ((layout.latent_bc_metrics, "latent BC"), (layout.agent_metrics, "agent")):
        if not path.is_file():
            continue
        metrics = read_json(path, f"{what} metrics")
        base = metrics.get("baselines") or {}
        against = ", ".join(f"{name} {base[name]:.2f}" for name in ("random", "expert", "true_action_bc") if base.get(name) is not None)
        if what == "latent BC":
            returns = ", ".join(f"k={k}: {v['mean']:.2f}" for k, v in metrics.get("returns", {}).items())
        else:
            returns = f"{metrics.get('eval_mean_return', float('nan')):.2f}"
        print(f"{what} return: {returns}" + (f" (against {against})" if against else ""))


main = hydra_entry("inspect", inspect)

if __name__ == "__main__":
    main()
