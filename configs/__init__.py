"""Hydra configs shipped as package data (``pkg://flexlam_rl.configs``)."""
