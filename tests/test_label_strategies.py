"""Label selection beyond random: coverage, uncertainty, diversity (the contract of select_labels for each)."""

from __future__ import annotations

import numpy as np
import pytest

from flexlam_rl.align import LabelConfig, select_labels
from flexlam_rl.align.strategies import STRATEGIES, _coverage, _k_center
from flexlam_rl.errors import ConfigError, DataError


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_keeps_the_contract(cartpole_models, strategy: str) -> None:
    pool, lam = cartpole_models["data"].train, cartpole_models["lam"]
    idx = select_labels(pool, LabelConfig(count=50, strategy=strategy, seed=0), lam=lam)
    assert idx.dtype == np.int64 and idx.ndim == 1 and len(idx) == 50 and len(np.unique(idx)) == 50
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < len(pool)
    assert np.array_equal(idx, select_labels(pool, LabelConfig(count=50, strategy=strategy, seed=0), lam=lam))
    low = select_labels(pool, LabelConfig(protocol="low_return", quantile=0.3, count=20, strategy=strategy), lam=lam)
    returns = {(s, e): pool.sources[s].episode_returns[e] for s, e in pool.episodes}
    cutoff = np.quantile(list(returns.values()), 0.3)
    assert all(returns[(int(pool.source_index[i]), int(pool.episode_index[i]))] <= cutoff for i in low)  # protocol first
    with pytest.raises(DataError, match=f"hold only {len(pool)}"):
        select_labels(pool, LabelConfig(count=len(pool) + 1, strategy=strategy), lam=lam)


def test_random_is_todays_draw_and_the_others_need_the_lam(cartpole_models) -> None:
    pool = cartpole_models["data"].train
    today = np.sort(np.random.default_rng(3).choice(np.arange(len(pool)), size=40, replace=False))
    assert np.array_equal(select_labels(pool, LabelConfig(count=40, seed=3)), today)
    for strategy in ("coverage", "uncertainty", "diversity"):
        with pytest.raises(ConfigError, match="pass lam="):
            select_labels(pool, LabelConfig(count=10, strategy=strategy))
    with pytest.raises(ConfigError, match="labels.strategy must be one of"):
        LabelConfig(strategy="smart")


def test_coverage_reaches_rare_codes_and_k_center_spreads_out() -> None:
    rng = np.random.default_rng(0)
    tokens = np.zeros((1000, 2), dtype=np.int64)
    tokens[:10, 0] = 1  # a rare first token: 1% of the transitions
    tokens[10:20, 0] = 2
    picked = _coverage(tokens, 30, rng)
    assert len(set(picked.tolist())) == 30
    assert (tokens[picked, 0] == 1).sum() == 10 and (tokens[picked, 0] == 2).sum() == 10  # a random draw: ~0.3 each
    points = np.concatenate([np.zeros((500, 2)), np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])])
    chosen = _k_center(points, 4, np.random.default_rng(0))
    assert set(chosen.tolist()) >= {500, 501, 502}  # the outliers, whatever the random first point
