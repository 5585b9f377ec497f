"""Make ``flexlam_rl.envs`` / ``.agents`` / ``.configs`` resolve in a source checkout.

Installs map the top-level ``envs/``, ``agents/`` and ``configs/`` folders under
``flexlam_rl`` (see ``[tool.setuptools.package-dir]``), so they never land in
site-packages as generic top-level packages. Running from a checkout (tests,
``python -m``) imports this folder directly; appending the repo root to the package
path gives the same import names there.
"""

from __future__ import annotations

from pathlib import Path

SUBPACKAGES = ("envs", "agents", "configs")


def extend_package_path(package_path: list[str]) -> None:
    here = Path(__file__).resolve().parent
    if all((here / name).is_dir() for name in SUBPACKAGES):
        return  # installed: the subpackages are inside
    root = here.parent
    if (root / "pyproject.toml").is_file() and all((root / n / "__init__.py").is_file() for n in SUBPACKAGES):
        package_path.append(str(root))
