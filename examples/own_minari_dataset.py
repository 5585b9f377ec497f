"""Bring your own data: write a Minari dataset from your own rollouts, then pretrain a FlexLAM on it.

    python examples/own_minari_dataset.py

Any Minari dataset with image (uint8 [H, W, C]) or vector observations works; actions are optional (a LAM
never reads them; a translator needs a few). Here the rollouts are CartPole rendered to 32x32 pixels by a
random policy, written with ``minari.create_dataset_from_buffers`` (no JAX needed), lossless.
"""

import argparse
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer

from flexlam_rl import FlexLAM
from flexlam_rl.data import load_transitions
from flexlam_rl.data.sources import dataset_exists, minari_frames
from flexlam_rl.envs import apply_preprocess
from flexlam_rl.evaluate import reconstruction_by_budget
from flexlam_rl.pretrain.train import TrainConfig, lam_config_for, pretrain

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--episodes", type=int, default=10)
parser.add_argument("--out", type=Path, default=Path("runs/example_own_dataset"))
args = parser.parse_args()

DATASET = "examples/cartpole-pixels/random-v0"
if not dataset_exists(DATASET):
    env = apply_preprocess(gym.make("CartPole-v1", render_mode="rgb_array"), {"kind": "render_rgb", "frame_size": 32})
    episodes = []
    for i in range(args.episodes):
        obs, _ = env.reset(seed=i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated
        episodes.append(EpisodeBuffer(id=i, observations=np.stack(observations), actions=np.array(actions), rewards=rewards,
                                      terminations=terms, truncations=truncs))
    with minari_frames() as lossless:  # keeps pixels exact on every Minari version
        minari.create_dataset_from_buffers(DATASET, buffer=episodes, observation_space=env.observation_space,
                                           action_space=env.action_space, algorithm_name="random", **lossless)

data = load_transitions(DATASET, heldout_fraction=0.2)
print(f"{len(data.train)} training transitions of shape {data.obs_shape}")
run = pretrain(args.out, data, lam_config_for({"num_tokens": 4, "channels": [8, 16], "hidden_dim": 64}, data),
               TrainConfig(steps=100, batch_size=32, progress=False))
report = reconstruction_by_budget(FlexLAM.load(run.lam_dir), data.heldout)
print("held-out MSE per budget:", {k: f"{v:.5f}" for k, v in report["mse"].items()}, f"(copy o_t: {report['copy']:.5f})")
