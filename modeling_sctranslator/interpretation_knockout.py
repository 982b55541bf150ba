"""In-silico gene knockout: predictions with one gene removed vs unperturbed, per protein.

Recipe (the original's): the gene's *column is dropped before tokenization*. With the tokenizer's
``truncation="first"`` every later gene moves one position to the left (and, when the data has more
mapped genes than ``max_genes``, the first gene beyond the window enters it), and the per-cell max-min
scaling is recomputed without the gene (it changes when the gene was a cell's maximum or minimum).
So a knockout is not "set the value to zero": positions and scaling change, as in the original.

Batched: every chunk of cells is tokenized once; the perturbed encoding of each gene is built from
it by dropping the gene's column, using the tokenizer's own :func:`scale_rows` with the per-cell
minimum and maximum of the remaining genes (two sentinel columns), so it equals tokenizing the data
without that column exactly (tested). Effects are accumulated as running sums, so memory is bounded
by the chunk size whatever the number of cells.

Per (gene, protein[, group]): ``mean_diff`` = mean over cells of knockout − unperturbed prediction;
``standardized_effect`` = ``mean_diff`` / sd over cells of the unperturbed prediction (ddof 1);
``frac_changed`` = fraction of cells with ``|diff| > tolerance``; ``mean_abs_diff``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["KnockoutResult", "knockout_analysis", "knockout_encoding"]

ALL_CELLS = "all"


def _dense_mapped(rna: Any, start: int, stop: int, columns: np.ndarray) -> np.ndarray:
    """Raw values of the mapped ``columns`` for cells ``start:stop`` as float64 (cells × columns)."""
    from .inference import cell_rows

    block = cell_rows(rna, start, stop)
    x = block.X if hasattr(block, "X") else block
    if hasattr(x, "to_memory"):
        x = x.to_memory()
    x = x[:, columns]
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(x, dtype=np.float64)


class _ChunkKnockout:
    """Builds perturbed encodings of one tokenized chunk, one knocked-out gene at a time."""

    def __init__(self, raw: np.ndarray, tokens: np.ndarray, max_genes: int) -> None:
        from tokenization.tokenization_sctranslator import scale_rows

        self.scale_rows = scale_rows
        self.raw = raw  # cells × mapped genes, data order
        self.tokens = np.asarray(tokens, dtype=np.int64)
        self.max_genes = max_genes
        n_kept = raw.shape[1]
        if n_kept < 2:
            raise ValueError("knockout needs at least two mapped genes")
        part = np.partition(raw, [0, 1, n_kept - 2, n_kept - 1], axis=1)
        self.min1, self.min2 = part[:, 0], part[:, 1]
        self.max2, self.max1 = part[:, n_kept - 2], part[:, n_kept - 1]

    def encode(self, rank: int) -> dict[str, np.ndarray]:
        """input_ids / input_values / attention_mask with mapped gene number ``rank`` removed."""
        n_cells, n_kept = self.raw.shape
        width = min(n_kept - 1, self.max_genes)
        window = np.arange(min(n_kept, self.max_genes + 1))
        window = window[window != rank][:width]
        gene = self.raw[:, rank]
        lo = np.where(gene == self.min1, self.min2, self.min1)
        hi = np.where(gene == self.max1, self.max2, self.max1)
        augmented = np.concatenate([self.raw[:, window], lo[:, None], hi[:, None]], axis=1)
        scaled, _ = self.scale_rows(augmented)
        ids = np.zeros((n_cells, self.max_genes), dtype=np.int64)
        values = np.zeros((n_cells, self.max_genes), dtype=np.float32)
        mask = np.zeros((n_cells, self.max_genes), dtype=bool)
        ids[:, :width] = self.tokens[window]
        values[:, :width] = scaled[:, :width]
        mask[:, :width] = True
        return {"input_ids": ids, "input_values": values, "attention_mask": mask}


def knockout_encoding(tokenizer, rna: Any, gene: str, max_length: int, gene_names: Sequence[str] | None = None):
    """The encoding of ``rna`` with ``gene``'s column dropped, built the batched way (for checks).

    Equal to ``tokenizer(rna without the column, max_length=max_length, padding="max_length")``.
    """
    from .inference import read_rna

    rna, gene_names = read_rna(rna, gene_names)
    _, report = tokenizer(rna=rna[:1], gene_names=gene_names, max_length=max_length, return_report=True)
    ranks = _locate_knockouts(tokenizer, [gene], report.rna)
    columns = report.rna.columns
    builder = _ChunkKnockout(_dense_mapped(rna, 0, rna.shape[0], columns), report.rna.token_ids[columns], max_length)
    return {k: torch.from_numpy(v) for k, v in builder.encode(ranks[0]).items()}


def _locate_knockouts(tokenizer, genes: Sequence[str], rna_report) -> list[int]:
    """Ranks (among the data's mapped genes) of the genes to knock out; a clear error lists the bad ones."""
    genes = [str(g).strip() for g in genes if str(g).strip()]
    if not genes:
        raise ValueError("give at least one gene to knock out (--genes TP53,CD4,...)")
    columns = rna_report.columns
    mapped_names = [rna_report.names[c] for c in columns]
    by_name = {name: i for i, name in enumerate(mapped_names)}
    by_token = {int(t): i for i, t in enumerate(rna_report.token_ids[columns].tolist())}
    data_names = set(rna_report.names)
    duplicate_of = {name: first for name, first, _ in rna_report.duplicates}
    lookup = tokenizer.resolve(genes, kind="gene")
    ranks, not_in_vocab, not_in_data = [], [], []
    for j, gene in enumerate(genes):
        if gene in by_name:
            ranks.append(by_name[gene])
            continue
        if gene in duplicate_of:
            not_in_data.append(f"{gene} (a duplicate column of {duplicate_of[gene]}, ignored by the tokenizer)")
            continue
        status = lookup.status[j]
        token = int(lookup._dup_tokens[j]) if status in ("mapped", "duplicate") else 0
        if token and token in by_token:
            ranks.append(by_token[token])
        elif not token:
            not_in_vocab.append(gene + (" (a data column that does not map)" if gene in data_names else ""))
        else:
            not_in_data.append(gene)
    if not_in_vocab or not_in_data:
        parts = []
        if not_in_data:
            parts.append(f"not in the data (among the genes the tokenizer uses): {not_in_data}")
        if not_in_vocab:
            parts.append(f"not in the scTranslator vocabulary: {not_in_vocab}")
        raise ValueError(
            f"{len(not_in_vocab) + len(not_in_data)} of {len(genes)} knockout genes cannot be used: "
            + "; ".join(parts)
        )
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"the knockout genes {genes} name the same gene twice")
    return ranks


@dataclass
class KnockoutResult:
    """Knockout effects. ``effects``: long table, one row per (gene, protein, group)."""

    effects: Any  # pandas DataFrame
    genes: list[str]
    proteins: list[str]
    groups: list[str]
    n_cells: int
    tolerance: float
    groupby: str | None = None
    unmapped_proteins: list[str] = field(default_factory=list)

    def matrix(self, value: str = "standardized_effect", group: str = ALL_CELLS):
        """genes × proteins table of one statistic for one group (``"all"`` = every cell)."""
        table = self.effects[self.effects["group"] == group]
        if table.empty:
            raise ValueError(f"no group {group!r}; groups: {self.groups}")
        wide = table.pivot(index="gene", columns="protein", values=value)
        return wide.loc[self.genes, self.proteins]


def knockout_analysis(
    model,
    tokenizer,
    rna: Any,
    proteins: Any,
    genes: Sequence[str] | str,
    groupby: str | None = None,
    tolerance: float = 1e-3,
    gene_names: Sequence[str] | None = None,
    batch_size: int | None = None,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int], None] = False,
) -> KnockoutResult:
    """Predict ``proteins`` with each of ``genes`` removed and compare with the unperturbed prediction.

    Args:
        rna: AnnData, ``.h5ad`` path (read backed, in chunks), MuData or ``(matrix, gene_names)``.
        proteins: protein names or a protein AnnData (its var_names).
        genes: names to knock out (data column names, or symbols/aliases resolving to a data column's
            token); a comma-separated string works too. Unknown ones raise ValueError listing them.
        groupby: an ``obs`` column; effects are also reported per group.
        tolerance: a cell counts as changed when ``|knockout − unperturbed| > tolerance``.
    Returns:
        :class:`KnockoutResult`.
    """
    import pandas as pd

    from .inference import (
        cell_rows,
        count_cells,
        default_batch_size,
        predict_encoded,
        read_rna,
        resolve_device,
        resolve_targets,
    )
    from .interpretation import _progress, require_mlp_translator

    require_mlp_translator(model, "knockout effects")
    if (batch_size is not None and batch_size < 1) or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be positive")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    if isinstance(genes, str):
        genes = genes.split(",")
    genes = [str(g).strip() for g in genes if str(g).strip()]
    rna, gene_names = read_rna(rna, gene_names)
    n_cells = count_cells(rna)
    if n_cells == 0:
        raise ValueError("the RNA data has no cells")
    targets = resolve_targets(tokenizer, proteins)
    config = model.config
    device = resolve_device(device) if device is not None else model.device
    model = model.to(device).eval()
    batch_size = batch_size or default_batch_size(model.config, device)

    # groups
    if groupby is not None:
        obs = getattr(rna, "obs", None)
        if obs is None or groupby not in obs.columns:
            available = [] if obs is None else list(obs.columns)
            raise ValueError(f"--groupby {groupby!r} is not an obs column; available: {available}")
        labels = obs[groupby].astype(str).to_numpy()
        groups = [ALL_CELLS] + sorted(set(labels.tolist()))
        if ALL_CELLS in set(labels.tolist()):
            raise ValueError(f"a group of {groupby!r} is named {ALL_CELLS!r}, which names every cell here")
        group_index = np.searchsorted(np.asarray(groups[1:]), labels) + 1
    else:
        groups = [ALL_CELLS]
        group_index = np.zeros(n_cells, dtype=np.int64)

    n_genes, n_prot, n_groups = len(genes), len(targets.token_ids), len(groups)
    count = np.zeros(n_groups)
    base_sum = np.zeros((n_groups, n_prot))
    base_sq = np.zeros((n_groups, n_prot))
    ko_sum = np.zeros((n_genes, n_groups, n_prot))
    diff_sum = np.zeros((n_genes, n_groups, n_prot))
    abs_sum = np.zeros((n_genes, n_groups, n_prot))
    changed = np.zeros((n_genes, n_groups, n_prot))

    bar = _progress(progress, "knockout", n_cells)
    ranks = None
    for start in range(0, n_cells, chunk_size):
        stop = min(start + chunk_size, n_cells)
        encoded, report = tokenizer(
            rna=cell_rows(rna, start, stop), gene_names=gene_names, proteins=targets.token_ids,
            max_length=config.max_genes, protein_max_length=max(n_prot, 1), padding="max_length",
            truncation="first", return_tensors="pt", return_report=True,
        )
        if ranks is None:
            ranks = _locate_knockouts(tokenizer, genes, report.rna)  # errors before any model work
        columns = report.rna.columns
        builder = _ChunkKnockout(_dense_mapped(rna, start, stop, columns), report.rna.token_ids[columns],
                                 config.max_genes)
        onehot = np.zeros((stop - start, n_groups))
        onehot[:, 0] = 1.0
        if n_groups > 1:
            onehot[np.arange(stop - start), group_index[start:stop]] = 1.0
        base = predict_encoded(model, encoded, config.max_proteins, batch_size, device).astype(np.float64)
        count += onehot.sum(0)
        base_sum += onehot.T @ base
        base_sq += onehot.T @ base**2
        proteins_side = {k: encoded[k] for k in ("protein_ids", "protein_attention_mask")}
        for g, rank in enumerate(ranks):
            perturbed = {k: torch.from_numpy(v) for k, v in builder.encode(rank).items()}
            ko = predict_encoded(model, {**perturbed, **proteins_side}, config.max_proteins, batch_size, device)
            diff = ko.astype(np.float64) - base
            ko_sum[g] += onehot.T @ (base + diff)
            diff_sum[g] += onehot.T @ diff
            abs_sum[g] += onehot.T @ np.abs(diff)
            changed[g] += onehot.T @ (np.abs(diff) > tolerance)
        bar(stop - start)

    n = count[:, None]
    base_mean = base_sum / np.maximum(n, 1)
    base_var = (base_sq - n * base_mean**2) / np.maximum(n - 1, 1)
    base_sd = np.sqrt(np.clip(base_var, 0.0, None))
    base_sd = np.where(n > 1, base_sd, np.nan)
    rows = []
    gene_labels = [g for g in genes]
    for g, gene in enumerate(gene_labels):
        mean_diff = diff_sum[g] / np.maximum(n, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            standardized = np.where(base_sd > 0, mean_diff / base_sd, np.nan)
        for k, group in enumerate(groups):
            for p, protein in enumerate(targets.names):
                rows.append((
                    gene, protein, group, int(count[k]), base_mean[k, p], ko_sum[g, k, p] / max(count[k], 1),
                    mean_diff[k, p], base_sd[k, p], standardized[k, p], abs_sum[g, k, p] / max(count[k], 1),
                    changed[g, k, p] / max(count[k], 1),
                ))
    effects = pd.DataFrame(rows, columns=[
        "gene", "protein", "group", "n_cells", "mean_unperturbed", "mean_knockout", "mean_diff",
        "sd_unperturbed", "standardized_effect", "mean_abs_diff", "frac_changed",
    ])
    return KnockoutResult(
        effects=effects, genes=gene_labels, proteins=list(targets.names), groups=groups, n_cells=n_cells,
        tolerance=tolerance, groupby=groupby, unmapped_proteins=list(targets.unmapped),
    )
