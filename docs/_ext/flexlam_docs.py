"""Sphinx helpers for the flexlam-rl docs: config tables generated from the Hydra configs themselves.

``.. flexlam-config:: pretrain`` renders every key of ``configs/pretrain.yaml`` as Hydra composes it (group
defaults included), with its default and the comment beside it in the YAML file, so a page cannot drift
from the configs: change a default and the page changes with it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<rest>.*)$")


def yaml_comments(path: Path) -> dict[str, str]:
    """``dotted.key -> comment`` for every ``key: value  # comment`` line of a YAML file (block mappings only)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        match = KEY_LINE.match(line)
        if not match or line.lstrip().startswith("-"):
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([k for _, k in stack] + [match["key"]])
        rest = match["rest"]
        if "#" in rest:
            comments[key] = rest.split("#", 1)[1].strip()
        if not rest.split("#", 1)[0].strip():  # a mapping opens here
            stack.append((indent, match["key"]))
    return comments


def _defaults(path: Path) -> list[str]:
    """The ``group: option`` entries of a config's defaults list (overrides of hydra/* skipped)."""
    entries, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("defaults:"):
            inside = True
            continue
        if inside:
            if not line.startswith("  -"):
                break
            entry = line.split("-", 1)[1].split("#")[0].strip()
            if ":" in entry and not entry.startswith("override"):
                entries.append(entry)
            elif entry != "_self_" and not entry.startswith("override"):
                entries.append(entry)
    return entries


def config_comments(name: str) -> dict[str, str]:
    """Comments for every key a composed config can have: the primary file's, then each group file's (prefixed)."""
    comments: dict[str, str] = {}

    def group_file(group: str, option: str) -> None:
        path = CONFIGS / group / f"{option}.yaml"
        for parent in _defaults(path):  # a group option extending another of its group (lam/fixed -> flexlam)
            if ":" not in parent:
                group_file(group, parent)
        comments.update({f"{group}.{k}": v for k, v in yaml_comments(path).items()})

    primary = CONFIGS / f"{name}.yaml"
    for entry in _defaults(primary):
        if ":" in entry:
            group, option = (s.strip() for s in entry.split(":", 1))
            group_file(group, option)
    comments.update(yaml_comments(primary))
    return comments


def config_rows(name: str) -> list[tuple[str, str, str]]:
    """``(key, default, comment)`` for every leaf of the composed config (lists and mappings as one value)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("flexlam_rl.configs", version_base="1.3"):
        cfg = compose(name)
    tree = OmegaConf.to_container(cfg, resolve=False)
    comments = config_comments(name)
    rows: list[tuple[str, str, str]] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node and prefix not in OPEN:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
            return
        rows.append((prefix, node if isinstance(node, str) else json.dumps(node), comments.get(prefix, "")))

    walk(tree, "")
    known = all_comments()
    return [(key, default, comment or _fallback(key, comments, known)) for key, default, comment in rows]


def all_comments() -> dict[str, str]:
    """Every comment of every config file, keyed as in its own config (group files prefixed by their group)."""
    out: dict[str, str] = {}
    for path in CONFIGS.rglob("*.yaml"):
        group = path.parent.relative_to(CONFIGS).as_posix()
        prefix = "" if group == "." else f"{group}."
        out.update({f"{prefix}{k}": v for k, v in yaml_comments(path).items()})
    return out


def _fallback(key: str, local: dict[str, str], known: dict[str, str]) -> str:
    """A key set in a flow mapping (``train: {lr: ...}``) or another file: the same key's comment elsewhere
    (``scale.train.lr`` -> ``train.lr``), else its parent's."""
    parts = key.split(".")
    for start in range(len(parts) - 1):
        suffix = ".".join(parts[start:])
        if "." in suffix and suffix in known:
            return known[suffix]
    parent = ".".join(parts[:-1])
    return f"(in {parent}: {local[parent]})" if parent in local else ""


OPEN = {"preprocess", "agent.algo_kwargs"}  # mappings a user fills freely: shown as one value


class ConfigTable(Directive):
    """``.. flexlam-config:: <config name>``: a table of every key, its default and its comment."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """A docutils table built node by node: the pages are MyST, where reStructuredText directive text (a
        ``list-table``) would be parsed as Markdown and come out as a paragraph of literal text."""
        table = nodes.table(classes=["flexlam-config"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (25, 25, 50):
            group += nodes.colspec(colwidth=width)
        head, body = nodes.thead(), nodes.tbody()
        head += _row([nodes.Text("key"), nodes.Text("default"), nodes.Text("meaning")])
        for key, default, comment in config_rows(self.arguments[0]):
            body += _row([nodes.literal(text=key), nodes.literal(text=default) if default else nodes.Text("(empty)"),
                          nodes.Text(comment or "")])
        group += head
        group += body
        return [table]


def _row(cells: list[nodes.Node]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += nodes.paragraph("", "", cell)
        row += entry
    return row


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("flexlam-config", ConfigTable)
    return {"parallel_read_safe": True}
