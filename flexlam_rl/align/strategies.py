"""Which transitions to label, beyond random: strategies that look at what the LAM emits.

Every strategy picks ``count`` distinct transitions among ``candidates`` (indices into the pool), as a
function of its seed:

- ``random``: uniformly at random (the baseline every system we know of uses);
- ``coverage``: spread the labels over the token prefixes the LAM emits. Transitions are grouped by their
  first d tokens, d the longest prefix with at most ``count`` groups; every group gets an equal share
  (a small group gives what it has, the rest goes to the others), drawn at random within it. Labels then
  reach the rare codes a random draw misses;
- ``uncertainty``: rounds of labelling: a quarter of the labels at random, then a translator trained on the
  labels so far picks the transitions it is least sure of (highest predictive entropy; for Box actions, the
  widest disagreement of a 3-member ensemble), a quarter at a time;
- ``diversity``: k-center greedy on the LAM's slot embeddings plus a coarse view of o_t: each next label is the
  transition farthest from every label so far, so the labels cover the feature space evenly.

Strategies other than ``random`` read the LAM (``lam=``); each adds to labelling cost: ``coverage`` and
``diversity`` one encoder pass over the candidates, ``uncertainty`` three translator fits as well.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transitions import TransitionSet, eval_batches
from ..errors import ConfigError
from ..model.lam import FlexLAM, null_fill
from .actions import action_spec
from .fitting import AlignConfig, LabeledSet, embed_transitions, train_translator

STRATEGIES = ("random", "coverage", "uncertainty", "diversity")
NEEDS_LAM = ("coverage", "uncertainty", "diversity")
UNCERTAINTY_ROUNDS = 4
UNCERTAINTY_STEPS = 300  # translator updates per round
OBS_GRID = 8  # diversity: o_t is seen as an 8x8 grayscale thumbnail (vectors: as they are)


def pick(strategy: str, pool: TransitionSet, candidates: np.ndarray, count: int, seed: int,
         lam: FlexLAM | None = None) -> np.ndarray:
    """``count`` distinct indices from ``candidates``, sorted."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"labels.strategy must be one of {STRATEGIES}, got {strategy!r}.")
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return np.sort(rng.choice(candidates, size=count, replace=False))
    if lam is None:
        raise ConfigError(f"labels.strategy={strategy!r} reads what the LAM emits: pass lam= (select_labels(pool, cfg, lam=lam)); "
                          f"strategy 'random' needs none.")
    if strategy == "coverage":
        chosen = _coverage(_tokens(lam, pool, candidates), count, rng)
    elif strategy == "diversity":
        chosen = _k_center(_features(lam, pool, candidates), count, rng)
    else:
        chosen = _uncertainty(lam, pool, candidates, count, rng, seed)
    return np.sort(candidates[chosen])


def _tokens(lam: FlexLAM, pool: TransitionSet, candidates: np.ndarray) -> np.ndarray:
    return lam.encode_set(pool, candidates).numpy()


def _coverage(tokens: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Positions into ``tokens`` spread evenly over the groups of the longest prefix with <= ``count`` groups."""
    depth = 1
    for d in range(1, tokens.shape[1] + 1):
        if len(np.unique(tokens[:, :d], axis=0)) <= count:
            depth = d
    _, group = np.unique(tokens[:, :depth], axis=0, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(group.ravel() == g)) for g in range(group.max() + 1)]
    sizes = np.array([len(m) for m in members])
    share = np.zeros(len(members), dtype=np.int64)
    left = count
    while left > 0:  # water-filling: equal shares, capped by each group's size
        open_ = np.flatnonzero(share < sizes)
        each = max(1, left // len(open_))
        for g in rng.permutation(open_):
            take = min(each, sizes[g] - share[g], left)
            share[g] += take
            left -= take
            if left == 0:
                break
    return np.concatenate([m[:s] for m, s in zip(members, share)])


@torch.no_grad()
def _features(lam: FlexLAM, pool: TransitionSet, candidates: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The LAM's slot embeddings (all K) beside a coarse o_t, each block standardized."""
    slots, views = [], []
    for b in eval_batches(pool, batch_size, indices=candidates):
        slots.append(lam.embed(lam.encode(b["obs"], b["next_obs"]), lam.num_tokens).flatten(1).cpu().numpy())
        x = lam.normalize(b["obs"])
        if x.ndim == 4:
            x = F.adaptive_avg_pool2d(x.mean(1, keepdim=True), OBS_GRID).flatten(1)
        views.append(x.cpu().numpy())
    blocks = [np.concatenate(slots), np.concatenate(views)]
    return np.concatenate([(b - b.mean(0)) / (b.std(0) + 1e-6) / np.sqrt(b.shape[1]) for b in blocks], axis=1)


def _k_center(features: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-center: a random first point, then each time the point farthest from the chosen ones."""
    chosen = [int(rng.integers(len(features)))]
    nearest = ((features - features[chosen[0]]) ** 2).sum(1)
    for _ in range(count - 1):
        nearest[chosen[-1]] = -1.0
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        nearest = np.minimum(nearest, ((features - features[nxt]) ** 2).sum(1))
        nearest[chosen] = -1.0
    return np.array(chosen)


def _uncertainty(lam: FlexLAM, pool: TransitionSet, candidates: np.ndarray, count: int, rng: np.random.Generator,
                 seed: int) -> np.ndarray:
    """Rounds: a quarter at random, then each round the candidates the current translator is least sure of."""
    spec = action_spec(pool.sources[int(pool.source_index[0])].action_space)
    everything = embed_transitions(lam, pool, candidates)
    null = lam.null_latent.detach().cpu()
    first = max(1, count // UNCERTAINTY_ROUNDS)
    chosen = list(rng.choice(len(candidates), size=first, replace=False))
    members = 1 if spec["type"] == "discrete" else 3
    while len(chosen) < count:
        labeled = _subset(everything, np.array(chosen))
        outputs = [_outputs(train_translator(lam, labeled, spec, AlignConfig(steps=UNCERTAINTY_STEPS, seed=seed + 1000 * m)),
                            everything, null) for m in range(members)]
        if spec["type"] == "discrete":  # predictive entropy
            p = torch.softmax(outputs[0], -1)
            scores = (-(p * torch.log(p.clamp_min(1e-12))).sum(-1)).numpy()
        else:  # the ensemble's disagreement
            scores = torch.stack(outputs).std(0).sum(-1).numpy()
        scores[chosen] = -np.inf
        take = min(first, count - len(chosen))
        chosen += list(np.argsort(-scores, kind="stable")[:take])
    return np.array(chosen)


@torch.no_grad()
def _outputs(translator, data, null: torch.Tensor) -> torch.Tensor:
    """The translator's raw outputs (logits, or actions) on the full code of every candidate."""
    latent = null_fill(data.slots, data.slots.shape[1], null)
    return translator(latent, data.obs if translator.config.use_obs else None)


def _subset(data, rows: np.ndarray):
    return LabeledSet(data.slots[rows], data.actions[rows], data.obs[rows], data.next_obs[rows])
