"""Sphinx configuration: MyST markdown pages, the furo theme, API pages from docstrings."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from flexlam_rl import __version__  # noqa: E402

project = "flexlam-rl"
author = "flexlam-rl"
release = version = __version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "flexlam_docs"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"flexlam-rl {release}"
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options: dict = {}  # each directive lists its members
nitpicky = False
autodoc_inherit_docstrings = False  # gymnasium.Env's own docstrings are not ours (and not valid reST)
