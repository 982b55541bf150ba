"""Where every benchmark writes its numbers: one atomic write, its folder made first."""

from __future__ import annotations

import json
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


def write_result(path: str | os.PathLike[str], result: Any, indent: int = 2,
                 inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Write ``result`` (JSON-serialisable, or a ``str`` written as it is) to ``path``, creating its folder.

    Atomic: a run stopped mid-write leaves the previous file whole, never half of one. A benchmark rerun
    replaces its own earlier result, never one of its ``inputs`` (the data files it read). Returns the path
    written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = result if isinstance(result, str) else json.dumps(result, indent=indent, default=_plain) + "\n"
    with atomic_output_file(path, overwrite=True, inputs=inputs) as staging:
        staging.write_text(text, encoding="utf-8")
    return path
