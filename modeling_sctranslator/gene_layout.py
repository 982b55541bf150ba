"""The genes a trained model reads, saved with it (``gene_layout.json``), so any input is aligned to them.

The compatible model reads genes by *position* (its translator maps positions to proteins), so a model
trained on one file's genes gives meaningless numbers for a file whose genes differ in set or order. Its
layout is ``"ordered"``: the token id at every encoder position. The order-invariant variant reads genes by
identity; its layout is the ``"set"`` of genes its embeddings were trained on. ``"unknown"``: trained on
several layouts (the released checkpoints; several corpora with different gene lists; random gene subsets),
or saved before layouts were recorded: inputs are read as before, after a one-time notice.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

LAYOUT_FILE = "gene_layout.json"
LAYOUT_KINDS = ("ordered", "set", "unknown")
# an input holding less than this share of an ordered layout's genes is refused: the positions it leaves as
# zeros are then most of what the model reads
MIN_LAYOUT_SHARE = 0.5


@dataclass
class GeneLayout:
    kind: str
    token_ids: list[int] = field(default_factory=list)
    source: str = ""  # how it was decided, in words

    def __post_init__(self) -> None:
        if self.kind not in LAYOUT_KINDS:
            raise ValueError(f"gene layout kind must be one of {LAYOUT_KINDS}, not {self.kind!r}")
        self.token_ids = [int(t) for t in self.token_ids]

    @property
    def ordered(self) -> bool:
        return self.kind == "ordered"

    def save(self, folder: str | os.PathLike[str]) -> None:
        Path(folder, LAYOUT_FILE).write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def find(cls, name_or_path: str | os.PathLike[str], **hub_kwargs) -> GeneLayout | None:
        """The layout saved with a model folder or Hub repo; None when it has none (saved before layouts)."""
        folder = Path(name_or_path)
        path = folder / LAYOUT_FILE if folder.is_dir() else None
        if path is None:
            from transformers.utils import cached_file

            kwargs = {k: v for k, v in hub_kwargs.items() if k in ("cache_dir", "force_download", "local_files_only",
                                                                      "token", "revision", "subfolder", "proxies")}
            try:
                found = cached_file(str(name_or_path), LAYOUT_FILE, _raise_exceptions_for_missing_entries=False,
                                    _raise_exceptions_for_connection_errors=False, **kwargs)
            except OSError:
                found = None
            path = Path(found) if found else None
        if path is None or not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(kind=data["kind"], token_ids=data.get("token_ids", []), source=data.get("source", ""))


UNKNOWN_NOTICE = (
    "this model does not record the gene layout it was trained on ({why}): genes are read as before, in the file's "
    "column order (an input with more mapped genes than max_genes keeps its max_genes most expressed). Give it the "
    "genes it was trained on, in that order; models trained or fine-tuned with this version record their layout "
    "and align any input to it."
)
