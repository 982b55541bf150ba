"""The genes an analysis is asked about, found among the genes the model reads of the data.

Knockout (``--genes``) and attention (``--genes``) take names as users write them: the data's own column names,
or any name of a gene (an alias, an Entrez id, a mouse symbol) that reaches a column's token. One lookup serves
both, so a name is found, refused or merged with another the same way in each.
"""

from __future__ import annotations

import warnings
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class GeneLookup:
    """Where the requested genes are. ``positions[i]`` is the place of ``kept[i]`` among the genes read."""

    positions: list[int] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    same_gene: list[tuple[str, str]] = field(default_factory=list)  # (name left out, the name kept for its gene)
    not_in_vocab: list[str] = field(default_factory=list)
    not_in_data: list[str] = field(default_factory=list)

    @property
    def n_problems(self) -> int:
        return len(self.not_in_vocab) + len(self.not_in_data)

    def refuse_missing(self, asked: int, what: str, not_read: str, data_names: Container[str] = ()) -> None:
        """Raise ValueError listing every gene asked for that cannot be used: ``not_read`` says which genes the
        analysis reads; a name that is a data column which maps to nothing (``data_names``) is said to be one."""
        if not self.n_problems:
            return
        parts = []
        if self.not_in_data:
            parts.append(f"not among the data's genes the model {not_read}: {self.not_in_data}")
        if self.not_in_vocab:
            unknown = [g + (" (a data column that does not map)" if g in data_names else "") for g in self.not_in_vocab]
            parts.append(f"not in the scTranslator vocabulary: {unknown}")
        raise ValueError(f"{self.n_problems} of {asked} {what} cannot be used: " + "; ".join(parts))


def find_genes(tokenizer, requested: Sequence[str], names: Sequence[str], tokens: Sequence[int] | np.ndarray,
               refused: Mapping[str, str] | None = None) -> GeneLookup:
    """Find ``requested`` among the genes read (``names`` and ``tokens``, in reading order): by the data's own name,
    else through the vocabulary's token. ``refused``: names that are not looked up, with the reason the error gives
    (a data column dropped as a duplicate). A gene named twice (``CD8A`` and its alias ``Leu2``) is kept once, as
    first named, with a warning."""
    refused = refused or {}
    by_name = {name: i for i, name in enumerate(names)}
    token_list = [int(t) for t in np.asarray(tokens).tolist()]
    by_token = {t: i for i, t in enumerate(token_list)}
    report = tokenizer.resolve(list(requested), kind="gene")
    found = GeneLookup()
    first_name: dict[int, str] = {}
    for j, gene in enumerate(requested):
        position = by_name.get(gene)
        if position is None and gene in refused:
            found.not_in_data.append(f"{gene} ({refused[gene]})")
            continue
        if position is None:
            status = report.status[j]
            token = int(report._dup_tokens[j]) if status in ("mapped", "duplicate") else 0
            if not token:
                found.not_in_vocab.append(gene)
                continue
            position = by_token.get(token)
            if position is None:
                found.not_in_data.append(gene)
                continue
        if position in first_name:
            found.same_gene.append((gene, first_name[position]))
            continue
        first_name[position] = gene
        found.positions.append(position)
        found.kept.append(gene)
        found.tokens.append(token_list[position])
    if found.same_gene:
        pairs = ", ".join(f"{dropped!r} = {kept!r}" for dropped, kept in found.same_gene[:5])
        warnings.warn(f"{len(found.same_gene)} of the genes asked for name a gene already asked for ({pairs}"
                      f"{', ...' if len(found.same_gene) > 5 else ''}: one token, one column read): each gene is "
                      "analysed once, under the name given first", UserWarning, stacklevel=3)
    return found
