"""Wrap an env so an agent acts in latent tokens, and train Stable-Baselines3 PPO there.

    python examples/latent_sb3.py            # tiny: under a minute on 2 CPU cores
    python examples/latent_sb3.py --steps 1500 --ppo-steps 20000   # the quickstart's sizes

Collects action-free MiniGrid data (actions are stored, but the LAM never reads them), pretrains a FlexLAM,
aligns a translator on 2% labels, wraps MiniGrid-Empty so its action space is two latent tokens, trains PPO.
Datasets go to $MINARI_DATASETS_PATH, models to --out.
"""

import argparse
from pathlib import Path

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
from stable_baselines3 import PPO

from flexlam_rl import FlexLAM, LatentActionWrapper
from flexlam_rl.agents.networks import SmallCNN
from flexlam_rl.align import AlignConfig, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.config import Episodes
from flexlam_rl.data import load_transitions
from flexlam_rl.data.collect import ensure_dataset
from flexlam_rl.pretrain.train import TrainConfig, lam_config_for, pretrain

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=200, help="LAM updates")
parser.add_argument("--ppo-steps", type=int, default=512, help="PPO env steps")
parser.add_argument("--out", type=Path, default=Path("runs/example_latent_sb3"))
args = parser.parse_args()

pixels = {"kind": "minigrid_rgb", "frame_size": 32}  # small frames for a quick run; the quickstart uses 64
data_id, _ = ensure_dataset("examples/doorkey32/noisy-v0", "minigrid-doorkey", "noisy", Episodes(20, 0, 50), epsilon=0.5, preprocess=pixels)

data = load_transitions(data_id)  # (o_t, o_t+1) pairs, split by episode
lam_cfg = lam_config_for({"num_tokens": 4, "channels": [8, 16], "hidden_dim": 64}, data)
run = pretrain(args.out / "lam_run", data, lam_cfg, TrainConfig(steps=args.steps, batch_size=32, progress=False))
lam = FlexLAM.load(run.lam_dir)

pool, evaluation = label_and_eval_sets([data_id], [data_id], heldout_fraction=0.1, seed=0)
aligned = run_alignment(lam, pool, evaluation, LabelConfig(fraction=0.02), AlignConfig(steps=300, use_obs=True))
print("translator accuracy per budget:", {k: round(v, 3) for k, v in aligned.scores.items()})

env = LatentActionWrapper(gym.make("MiniGrid-Empty-5x5-v0"), lam, aligned.translator, prefix_len=2)
print("action space:", env.action_space)  # MultiDiscrete([8 8 ...]): k latent tokens
# 32x32 frames are below SB3's NatureCNN minimum (36): flexlam-rl's small CNN (64x64 frames: plain "CnnPolicy")
model = PPO("CnnPolicy", env, n_steps=128, batch_size=64, policy_kwargs={"features_extractor_class": SmallCNN},
            verbose=0).learn(args.ppo_steps)
model.save(args.out / "ppo_latent")
print(f"PPO in latent space saved to {args.out / 'ppo_latent.zip'}")
