"""YAML documents whose validation errors name the line: policies and monitoring plans.

pydantic reports where a value is wrong as a path (``rules.2.threshold``); people edit files
by line. ``load_yaml`` keeps a map from each path to its line so errors can say both.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import InvalidInput

__all__ = ["Lines", "line_of", "load_yaml"]

Lines = dict[tuple[Any, ...], int]


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: Lines) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _line_map(value, (*path, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*path, i), out)


def line_of(loc: tuple[Any, ...], lines: Lines) -> int | None:
    """The line of ``loc``, or of its nearest enclosing node."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def load_yaml(text: str, *, source: str, field: str, expected: str
              ) -> tuple[dict[str, Any], Lines]:
    """Parse a YAML mapping safely; InvalidInput (naming ``field``) on bad YAML or a
    document that is not a mapping (``expected`` says what it should be)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{source}{where}: not valid YAML: "
                           f"{getattr(exc, 'problem', exc)}", field=field) from exc
    if not isinstance(data, dict) or node is None:
        raise InvalidInput(f"{source}: {expected}", field=field)
    lines: Lines = {}
    _line_map(node, (), lines)
    return data, lines
