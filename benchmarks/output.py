"""Where every benchmark writes its numbers: one atomic write, its folder made first."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenization.atomic_io import atomic_output_file


def _plain(value: Any) -> Any:
    """numpy (and torch) scalars and arrays as their Python values (an int stays an int), paths as text."""
    if callable(getattr(value, "tolist", None)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"a benchmark result holds a {type(value).__name__}, which JSON cannot store")


def _null_for_undefined(value: Any) -> Any:
    """``value`` with every NaN or infinite float (a mean of no Pearson r) as None: strict JSON has no NaN, and
    parsers that follow it (JSON.parse, jq) reject the file; ``evaluate`` writes null the same way."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _null_for_undefined(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_null_for_undefined(item) for item in value]
    if callable(getattr(value, "tolist", None)):  # numpy scalars and arrays, whose NaN json.dumps would write
        return _null_for_undefined(value.tolist())
    return value


def write_result(path: str | os.PathLike[str], result: Any, indent: int = 2,
                 inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Write ``result`` (JSON-serialisable, or a ``str`` written as it is) to ``path``, creating its folder.

    Atomic: a run stopped mid-write leaves the previous file whole, never half of one. A benchmark rerun
    replaces its own earlier result, never one of its ``inputs`` (the data files it read). Returns the path
    written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = result if isinstance(result, str) else json.dumps(_null_for_undefined(result), indent=indent,
                                                             default=_plain, allow_nan=False) + "\n"
    with atomic_output_file(path, overwrite=True, inputs=inputs) as staging:
        staging.write_text(text, encoding="utf-8")
    return path
