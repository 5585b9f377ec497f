"""Do a LAM's tokens matter? Controllability per budget, code usage per slot, and a probe to the true action.

A decoder can predict most of a game's next frame without the latent action (the screen barely
changes, the ball moves on its own), so a low next-frame error says little: the code may have
collapsed. Per budget k, three decodings of the same held-out transitions tell:

- ``own``: the transition's own first k tokens;
- ``shuffled``: the first k tokens of another transition of the same batch;
- ``null``: every slot nulled (no action information at all).

``controllability[k] = 1 - own / shuffled``, on the pixels that change between o_t and o_t+1 (on a game
where 98% of the screen is static, a whole-frame mean hides what the tokens do): the share of the
wrong-token error that the right tokens remove. 0 means the tokens are ignored; near 1, they explain
what changed. Whole-frame errors are reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import origin
from ..data.transitions import TransitionSet, eval_batches, load_transitions, require_frames
from ..errors import FlexLAMError
from ..metrics import majority_rate
from ..model.lam import FlexLAM, changed_pixels, null_fill
from ..model.quantize import code_usage

COLLAPSED_PERPLEXITY = 1.1  # a slot whose codes have perplexity below this emits one code: it carries nothing
COLLAPSED_CONTROL = 0.05  # tokens that remove less than 5% of the wrong-token error on changed pixels are ignored


@torch.no_grad()
def controllability(lam: FlexLAM, data: TransitionSet, budgets: Sequence[int] | None = None,
                    indices: Sequence[int] | None = None, batch_size: int = 128) -> dict[str, Any]:
    """Next-frame errors with own / shuffled / null tokens, whole frame and changed pixels, per budget.

    Returns ``controllability`` ({k: score}), ``mse`` and ``mse_changed`` ({k: {"own": e, "shuffled": e}}),
    ``null`` / ``null_changed``, ``copy`` / ``copy_changed`` (predicting "nothing changes"),
    ``changed_fraction`` (share of pixels that change), ``code_usage`` ([K] perplexities) and ``transitions``.
    """
    budgets = [int(k) for k in (budgets or range(1, lam.num_tokens + 1))]
    for k in budgets:
        if not 1 <= k <= lam.num_tokens:
            raise FlexLAMError(f"budget {k} is outside 1..{lam.num_tokens} (K = num_tokens).")
    was_training = lam.training
    lam.eval()
    names = [(k, kind) for k in budgets for kind in ("own", "shuffled")]
    whole, changed = np.zeros(len(names) + 2), np.zeros(len(names) + 2)  # + null, copy
    pixels = changed_count = 0.0
    tokens_seen = []
    step, rows = lam.eval_rows(), lam.eval_rows(len(names) + 1)  # transitions per call: encoding; decoding every latent
    for batch in eval_batches(data, batch_size, indices=indices):
        x, x_next = lam.normalize(batch["obs"]), lam.normalize(batch["next_obs"], "next_obs")
        slots, tokens = (torch.cat(parts) for parts in zip(*(lam._tokenize(x[i : i + step], x_next[i : i + step])
                                                            for i in range(0, x.shape[0], step))))
        tokens_seen.append(tokens.cpu())
        n = x.shape[0]
        other = slots.roll(1, dims=0)  # another transition of the same batch
        latents = [null_fill(slots if kind == "own" else other, k, lam.null_latent) for k, kind in names]
        latents.append(null_fill(slots, 0, lam.null_latent))
        latents = torch.stack(latents, 1)  # [n, L, K, D]
        for i in range(0, n, rows):  # partners are the whole batch's; only the calls are chunked (lam.eval_rows)
            xs, xs_next = x[i : i + rows], x_next[i : i + rows]
            preds = lam.fdm(xs, latents[i : i + rows].flatten(0, 1)).view(len(xs), latents.shape[1], *x.shape[1:])
            preds = torch.cat([preds, xs[:, None]], 1)  # the copy baseline
            err = (preds - xs_next[:, None]) ** 2  # [rows, L, ...]
            mask = changed_pixels(xs, xs_next)  # [rows, 1, ...] broadcast over channels
            whole += err.flatten(2).mean(-1).sum(0).double().cpu().numpy()
            changed += (err * mask[:, None]).flatten(2).sum(-1).sum(0).double().cpu().numpy()
            changed_count += float(mask.expand_as(xs).sum())
        pixels += float(x.numel())
    lam.train(was_training)
    count = sum(len(t) for t in tokens_seen)
    if count == 0:
        raise FlexLAMError("No transitions to diagnose.")
    whole /= count
    changed = changed / changed_count if changed_count else np.full_like(changed, np.nan)
    table = lambda values: {k: {kind: float(values[names.index((k, kind))]) for kind in ("own", "shuffled")}  # noqa: E731
                            for k in budgets}
    mse, mse_changed = table(whole), table(changed)
    source = mse_changed if changed_count else mse  # a static set: fall back to whole frames
    return {
        "controllability": {k: _score(source[k]["own"], source[k]["shuffled"]) for k in budgets},
        "mse": mse, "mse_changed": mse_changed, "null": float(whole[-2]), "null_changed": float(changed[-2]),
        "copy": float(whole[-1]), "copy_changed": float(changed[-1]), "changed_fraction": changed_count / max(pixels, 1.0),
        "code_usage": code_usage(torch.cat(tokens_seen), lam.codebook_size).tolist(), "transitions": count,
    }


def budget_errors(report: dict[str, Any]) -> dict[str, Any]:
    """A :func:`controllability` report as :func:`~flexlam_rl.evaluate.reconstruction.reconstruction_by_budget` gives it on the same
    transitions (own-token errors, all-null, copy, code usage): where the diagnostic decoded every transition, one
    pass serves both instead of decoding each transition a second time."""
    return {"mse": {k: errors["own"] for k, errors in report["mse"].items()}, "null": report["null"],
            "copy": report["copy"], "code_usage": report["code_usage"], "transitions": report["transitions"]}


def sample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """A fixed random ``limit`` of ``n`` transitions, sorted (sequential reads): what a diagnostic decodes."""
    return np.sort(np.random.default_rng(seed).permutation(n)[: min(limit, n)])


def _score(own: float, shuffled: float) -> float:
    return float(1.0 - own / shuffled) if shuffled > 0 else 0.0


def is_collapsed(usage: Sequence[float], control: dict[int, float]) -> bool:
    """Collapsed: every slot emits one code, or no budget's tokens remove ``COLLAPSED_CONTROL`` of the error."""
    return all(u < COLLAPSED_PERPLEXITY for u in usage) or max(control.values()) < COLLAPSED_CONTROL


def collapse_warning(report: dict[str, Any], frame_shape: Sequence[int] | None = None) -> str | None:
    """A warning naming the likely causes when the code has collapsed or slots are dead; None otherwise.

    ``report`` is a :func:`controllability` (or :func:`diagnose`) result, or any mapping with ``code_usage``
    (and optionally ``controllability``).
    """
    usage = report.get("code_usage") or report.get("perplexity") or []
    control = report.get("controllability") or {}
    dead = [i + 1 for i, u in enumerate(usage) if u < COLLAPSED_PERPLEXITY]
    collapsed = is_collapsed(usage, control) if control else bool(usage) and len(dead) == len(usage)
    if not collapsed and not dead:
        return None
    from ..envs.pixels import GAME_FRAME

    large = frame_shape is not None and len(frame_shape) == 3 and max(frame_shape[:2]) > GAME_FRAME
    if collapsed:
        what = ("every slot emits a single code" if usage and len(dead) == len(usage) else
                f"the tokens barely matter: at best they remove {max(control.values()):.0%} of the next-frame error "
                f"that another transition's tokens leave on the pixels that change")
        frames = (f"frames ({frame_shape[0]}x{frame_shape[1]}) too large for the encoder to find what moved (collect with "
                  f"preprocess frame_size {GAME_FRAME}, grayscale), " if large else "")
        return (f"The LAM's code has collapsed: {what}. Likely causes: the part of the frame an action moves is small "
                f"or predictable without the tokens, so a fresh encoder gives every transition one code (use lam=games, "
                f"the recipe for pixel games: each slot's values standardized over the batch before quantization), "
                f"{frames}too few updates (train.until_plateau=true), or a learning rate off by 10x (train.lr=3e-4 or 3e-3).")
    return (f"Slots {dead} emit a single code (perplexity < {COLLAPSED_PERPLEXITY}); the other slots still carry "
            f"information. Under nested dropout the last slots may have little left to encode; a fixed LAM with dead "
            f"slots has more tokens than its data needs.")


@dataclass
class CollapseWatch:
    """The collapse warning during training: once, at the first check after ``after`` updates whose code looks
    collapsed (or has dead slots), and once more if a later check finds it no longer does. An early check can
    catch a code that has not started to matter yet (Pong's did at 500 updates and was used by 3000); the second
    message keeps the first from standing as the run's verdict."""

    after: int = 500
    warned_at: int | None = None
    cleared_at: int | None = None

    def update(self, step: int, report: dict[str, Any], frame_shape: Sequence[int] | None = None) -> str | None:
        """The message this check calls for (None: nothing new to say)."""
        if step < self.after or self.cleared_at is not None:
            return None
        message = collapse_warning(report, frame_shape)
        if self.warned_at is None:
            if message is not None:
                self.warned_at = step
                return f"step {step}: {message}"
            return None
        if message is not None:
            return None
        self.cleared_at = step
        control = report.get("controllability") or {}
        best = f" (the tokens now remove up to {max(control.values()):.0%} of the error)" if control else ""
        return (f"step {step}: the code no longer looks collapsed and no slot is dead{best}; the warning at step "
                f"{self.warned_at} came before the tokens started to matter.")


def diagnose(lam: FlexLAM | str | Path, dataset_ids: Sequence[str] | str, budgets: Sequence[int] | None = None,
             limit: int = 1024, heldout_fraction: float = 0.1, split_seed: int = 0, probe: bool = True,
             seed: int = 0) -> dict[str, Any]:
    """What a LAM's tokens do on held-out episodes of ``dataset_ids``.

    Returns ``controllability`` (budget -> float), ``perplexity`` (list of K floats), ``collapsed`` (bool),
    ``probe_accuracy`` (budget -> float; discrete actions, beside ``probe_majority_rate``: always answering the
    commonest action of the scored rows) or ``probe_r2`` (Box actions) where the datasets have actions, plus the
    errors behind the score (see :func:`controllability`).
    """
    lam = lam if isinstance(lam, FlexLAM) else FlexLAM.load(lam)
    data = load_transitions(dataset_ids, heldout_fraction, split_seed)
    require_frames(data.train, lam.config.obs_shape, f"the LAM ({origin(lam)})")
    held = data.heldout if len(data.heldout) else data.train
    picks = sample(len(held), limit, seed)
    report = controllability(lam, held, budgets, picks)
    out = {"controllability": report["controllability"], "perplexity": report["code_usage"],
           "collapsed": is_collapsed(report["code_usage"], report["controllability"]), **report}
    if probe and data.train.has_actions and held.has_actions:
        out.update(action_probe(lam, data.train, held, picks, list(report["controllability"]), seed))
    return out


def action_probe(lam: FlexLAM, train: TransitionSet, held: TransitionSet, held_picks: np.ndarray, budgets: list[int],
                 seed: int = 0, train_limit: int = 4096) -> dict[str, Any]:
    """A small MLP from the one-hot first k tokens to the true action: trained on training transitions (a fifth
    of them early-stop it), scored on the held-out ones. ``probe_accuracy`` or, for Box actions, ``probe_r2``."""
    from .probes import fit_probe, token_features

    train_picks = np.sort(np.random.default_rng(seed + 1).permutation(len(train))[: min(train_limit, len(train))])
    tokens = torch.cat([lam.encode_set(train, train_picks), lam.encode_set(held, held_picks)]).numpy()
    action = np.concatenate([train.actions(train_picks), held.actions(held_picks)])
    discrete = np.issubdtype(action.dtype, np.integer)
    is_train = np.arange(len(tokens)) < len(train_picks)
    valid = is_train & (np.random.default_rng(seed + 2).random(len(tokens)) < 0.2)
    scores = {k: fit_probe(token_features(tokens, k, lam.codebook_size), action, is_train & ~valid, discrete, seed, valid=valid)
              for k in budgets}
    if not discrete:
        return {"probe_r2": scores}
    return {"probe_accuracy": scores, "probe_majority_rate": majority_rate(action[~(is_train | valid)])}
