"""Reading hand-written YAML (shots, film scripts) with errors that say where: each value is
read with an `At`, the path to it in the document, so a bad one fails as
`film.yaml: shots[1].keyframes[2].time: expected a number, got 'soon'`.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

import numpy as np
import yaml

from splatfilm.errors import SplatfilmError


class _UniqueKeys(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a key given twice in one mapping (PyYAML keeps the
    last silently: a `lens:` written twice would drop the first without a word)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"the key {key!r} is given twice", key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2's floats that YAML 1.1 (PyYAML) reads as text: an exponent without a dot or without
# a sign (1e7, 2.5e3, 1E-3). Every other reader (YAML 1.2: ruamel, Go, JavaScript) reads them as
# numbers, and `duration: 1e7` failing as "expected a number, got '1e7'" contradicted itself.
# Resolved here, not in `number`, so a quoted '1e7' stays text, as YAML means it, and every field
# reads them alike; nan and inf are untouched (plain `nan` is text, `.nan` refused as not finite).
# A digit must follow a leading dot: `._e5` is no number (float() refuses '.e5').
_UniqueKeys.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load_yaml(text: str, source: str) -> Any:
    """`yaml.safe_load` (plain data only) that also refuses a key given twice in one mapping.
    A document that is not YAML raises SplatfilmError `SOURCE: invalid YAML at line L, column
    C: problem` (lines and columns from 1), the one wording for every YAML file splatfilm reads;
    an empty one (or only comments) says so."""
    try:
        data = yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SplatfilmError(f"{source}: invalid YAML{where}: {problem}") from None
    if data is None:
        raise SplatfilmError(f"{source}: holds nothing (the file is empty or only comments)")
    return data


class At:
    """Where in the document a value is, for error messages: `shot.yaml: keyframes[2].time: ...`."""

    def __init__(self, source: str, where: str = ""):
        self.source, self.where = source, where

    def __getitem__(self, key: str | int) -> "At":
        if isinstance(key, int):
            return At(self.source, f"{self.where}[{key}]")
        return At(self.source, f"{self.where}.{key}" if self.where else key)

    def fail(self, message: str) -> NoReturn:
        """Raise SplatfilmError `SOURCE: FIELD.PATH: message` (`SOURCE: message` at the top)."""
        raise SplatfilmError(f"{self.source}: {self.where}: {message}" if self.where else f"{self.source}: {message}")


def mapping(value: Any, at: At, allowed: set[str]) -> dict:
    """`value` if it is a mapping whose keys are all in `allowed` (a misspelt field is named,
    not ignored), else an error at `at`."""
    if not isinstance(value, dict):
        at.fail(f"expected a mapping, got {show(value)}")
    for key in value:
        if key not in allowed:
            at[str(key)].fail(f"unknown field (expected one of {', '.join(sorted(allowed))})")
    return value


def show(value: Any) -> str:
    """`value` as an error message quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(value: Any, at: At, kind: str = "number") -> float:
    """`value` as a finite float (YAML's true/false are not numbers); kind "positive" (> 0) or
    "nonneg" (>= 0) narrows it. Else an error at `at`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        at.fail(f"expected a number, got {show(value)}")
    x = float(value)
    if not math.isfinite(x):
        at.fail(f"expected a finite number, got {x}")
    if kind == "positive" and not x > 0:
        at.fail(f"must be > 0, got {value}")
    if kind == "nonneg" and not x >= 0:
        at.fail(f"must be >= 0, got {value}")
    return x


def integer(value: Any, at: At, minimum: int | None = None) -> int:
    """`value` as a whole number (not 2.0, not true), at least `minimum` when given. Else an
    error at `at`."""
    if isinstance(value, bool) or not isinstance(value, int):
        at.fail(f"expected a whole number, got {show(value)}")
    if minimum is not None and value < minimum:
        at.fail(f"must be >= {minimum}, got {value}")
    return int(value)


def vec3(value: Any, at: At) -> np.ndarray:
    """`value` ([x, y, z], each a `number`) as a float64 array [3]. Else an error at `at` (or
    at the entry that is not a number)."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        at.fail(f"expected [x, y, z], got {show(value)}")
    return np.array([number(v, at[i]) for i, v in enumerate(value)])


def schema_version(value: Any, at: At, supported: int) -> int:
    """A file's schema `version`: absent means 1 (files written before versions existed); one
    newer than `supported` is refused, since reading it as an older schema could silently
    misread fields whose meaning changed."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        at.fail(f"expected a whole number >= 1, got {show(value)}")
    if value > supported:
        at.fail(f"{value} is newer than this splatfilm reads (up to {supported}); update splatfilm")
    return value
