"""Adaptive token budgets: a length per transition, and an agent that pays for the tokens it uses.

    python examples/adaptive_budgets.py      # tiny: under a minute on 2 CPU cores

A FlexLAM serves every budget, so the budget can change per step. ``adaptive_prefix_len`` picks, per transition,
the shortest code that predicts the next frame nearly as well as the full one; ``AdaptiveLatentActionWrapper``
lets the agent choose each step's length, and ``TokenCost`` subtracts ``token_cost`` per token from the reward.
"""

import argparse
from pathlib import Path

import numpy as np
from stable_baselines3 import PPO

from flexlam_rl import AdaptiveLatentActionWrapper, FlexLAM, TokenCost
from flexlam_rl.align import AlignConfig, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.config import Episodes
from flexlam_rl.data import load_transitions
from flexlam_rl.data.collect import ensure_dataset
from flexlam_rl.envs import get_task
from flexlam_rl.pretrain.train import TrainConfig, lam_config_for, pretrain

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--token-cost", type=float, default=0.01)
parser.add_argument("--out", type=Path, default=Path("runs/example_adaptive"))
args = parser.parse_args()

data_id, _ = ensure_dataset("examples/cartpole/random-v0", "cartpole", "random", Episodes(30, 0))
data = load_transitions(data_id)
run = pretrain(args.out / "lam_run", data, lam_config_for({"num_tokens": 4, "hidden_dim": 64}, data),
               TrainConfig(steps=300, batch_size=64, progress=False))
lam = FlexLAM.load(run.lam_dir)

batch = data.heldout.__getitems__(np.arange(len(data.heldout)))
for tol in (0.0, 0.1, 1.0):
    lengths = lam.adaptive_prefix_len(batch["obs"], batch["next_obs"], tol=tol)
    print(f"tol {tol}: {lengths.float().mean():.2f} tokens per transition on average (K = {lam.num_tokens})")

pool, evaluation = label_and_eval_sets([data_id], [data_id], heldout_fraction=0.1, seed=0)
translator = run_alignment(lam, pool, evaluation, LabelConfig(count=100), AlignConfig(steps=300)).translator
env = TokenCost(AdaptiveLatentActionWrapper(get_task("cartpole").make(), lam, translator), args.token_cost)
print("action space:", env.action_space)  # K tokens, then a length choice c: the code keeps c + 1 tokens
model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, verbose=0).learn(1024)
obs, _ = env.reset(seed=0)
used = []
for _ in range(50):
    action, _ = model.predict(obs, deterministic=True)
    obs, reward, terminated, truncated, info = env.step(action)
    used.append(info["prefix_len"])
    if terminated or truncated:
        obs, _ = env.reset()
print(f"the agent used {np.mean(used):.2f} tokens per step at token_cost={args.token_cost}")
