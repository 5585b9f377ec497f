"""Hydra entry points (``flexlam-*`` console scripts): thin layers over the library."""
