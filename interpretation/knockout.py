"""In-silico gene knockout: predictions with one gene removed vs unperturbed, per protein.

A knockout of gene g is the encoding of the data *with g's column dropped before tokenization*, the
original's recipe, for both encodings:

* the compatible model (every mapped gene, zeros included): with the tokenizer's ``truncation="first"``
  every later gene moves one position to the left (and, when the data has more mapped genes than
  ``max_genes``, the first gene beyond the window enters it), and the per-cell max-min scaling is
  recomputed without the gene (it changes when the gene was a cell's maximum or minimum). So a
  knockout is not "set the value to zero": positions and scaling change, as in the original. Built
  from the chunk's tokenization by dropping the gene's column, with the tokenizer's own
  :func:`scale_rows` and the per-cell minimum and maximum of the remaining genes (two sentinel columns).
* the cross-attention variant (each cell's expressed genes): g leaves the encoding of the cells that
  express it and the scaling is recomputed without it; the variant is order-invariant, so nothing
  shifts. Built by the tokenizer's own expressed-gene encoding of the chunk without g's column (so
  ``expressed_zero_genes`` and the ``max_genes`` cap follow the tokenizer's rules too). A cell whose
  encoding does not change (it does not express g, and g was not its only zero) keeps its
  unperturbed prediction (difference 0) and still counts in the means: effects are over all cells of
  a group; ``frac_perturbed`` is the fraction of cells whose encoding the knockout changed, so the
  mean effect in those cells is ``mean_diff / frac_perturbed``.

The values are those the tokenizer scales: after its RNA transform (the default model's raw counts ->
log1p(CP10k)), with each cell's library size over every column of the input -- mapped genes, unmapped
ones and the knocked-out gene alike -- so a knockout changes nothing but the gene's own presence (and,
through the per-cell scaling, the scale of the cell's other values). A gene expressed in no cell has
exactly no effect, and for the variant ``frac_perturbed`` is the fraction of cells expressing the gene.
Without a transform (the original's counts, ``rna_transform="none"``) the perturbed encoding equals
tokenizing the data without that column exactly (tested); with one it equals tokenizing the transformed
data without that column (dropping the column from the counts would also shrink the library size and so
change every other gene of the cells expressing it). Only the cells whose encoding changed are run
through the model again. Effects are accumulated as
running sums, so memory is bounded by the chunk size whatever the number of cells.

Per (gene, protein[, group]): ``mean_diff`` = mean over cells of knockout − unperturbed prediction;
``standardized_effect`` = ``mean_diff`` / sd over cells of the unperturbed prediction (ddof 1); NaN, with a
warning, where that sd is 0 or undefined (a group of one cell, identical cells);
``frac_changed`` = fraction of cells with ``|diff| > tolerance``; ``mean_abs_diff``; ``frac_perturbed``.
Predictions are compared on the model's per-cell scaled scale (:data:`KNOCKOUT_SCALE`, the ``scale`` column):
for a model with the protein scale part that is ``predict``'s ``layers['scaled']``, not its log1p-count ``X``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .gene_lookup import GeneLookup, find_genes

__all__ = ["KNOCKOUT_SCALE", "KnockoutResult", "knockout_analysis", "knockout_encoding"]

ALL_CELLS = "all"
MISSING_GROUP = "(missing)"  # the group of cells whose --groupby value is missing (NaN)
# The predictions a knockout compares: the model's per-cell scaled output (predict's uns 'output_scale' name for
# it). The log1p counts of a model with the protein scale part add a predicted per-cell scale that a knockout
# also moves; the scaled output is what every model has and what the effects are defined on.
KNOCKOUT_SCALE = "per_cell_scaled"
GENE_INPUTS = ("input_ids", "input_values", "attention_mask")


def _encoded_values(tokenizer, rna: Any, start: int, stop: int, columns: np.ndarray, sparse: bool = False,
                    rna_reading: Any = None):
    """The values the tokenizer scales for cells ``start:stop``, mapped ``columns`` only (cells × columns).

    Read as the tokenizer reads the same chunk: its RNA transform (e.g. raw counts -> log1p(CP10k)) chosen on
    the chunk, or the whole input's ``rna_reading`` given to both, and applied with library sizes over *every*
    column of the input, mapped or not. A knockout built from anything else (the raw mapped columns,
    re-normalised on their own) would change every cell's values, not only the knocked-out gene's. Dense float64,
    or with ``sparse`` a scipy CSR matrix (the values' own dtype: bit for bit what the tokenizer scales).
    """
    import scipy.sparse as sp

    from modeling_sctranslator.inference import cell_rows
    from tokenization.matrix import Matrix, take_columns

    matrix = Matrix(cell_rows(rna, start, stop), "RNA", getattr(tokenizer, "rna_transform", "none"))
    matrix.adapt_transform(rna_reading)
    x = take_columns(matrix.rows(0, matrix.shape[0]), columns)
    if sparse:
        return sp.csr_matrix(x)
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(x, dtype=np.float64)


class _ChunkKnockout:
    """The compatible model's encodings of one chunk, one knocked-out gene at a time (all mapped genes)."""

    def __init__(self, values: np.ndarray, tokens: np.ndarray, max_genes: int) -> None:
        from tokenization.scaling import scale_rows

        self.scale_rows = scale_rows
        self.values = values  # cells × mapped genes, data order, after the RNA transform
        self.tokens = np.asarray(tokens, dtype=np.int64)
        self.max_genes = max_genes
        n_kept = values.shape[1]
        part = np.partition(values, [0, 1, n_kept - 2, n_kept - 1], axis=1)
        self.min1, self.min2 = part[:, 0], part[:, 1]
        self.max2, self.max1 = part[:, n_kept - 2], part[:, n_kept - 1]

    def encode(self, rank: int) -> dict[str, np.ndarray]:
        """input_ids / input_values / attention_mask with mapped gene number ``rank`` removed."""
        n_cells, n_kept = self.values.shape
        width = min(n_kept - 1, self.max_genes)
        window = np.arange(min(n_kept, self.max_genes + 1))
        window = window[window != rank][:width]
        gene = self.values[:, rank]
        lo = np.where(gene == self.min1, self.min2, self.min1)
        hi = np.where(gene == self.max1, self.max2, self.max1)
        augmented = np.concatenate([self.values[:, window], lo[:, None], hi[:, None]], axis=1)
        scaled, _ = self.scale_rows(augmented)
        ids = np.zeros((n_cells, self.max_genes), dtype=np.int64)
        values = np.zeros((n_cells, self.max_genes), dtype=np.float32)
        mask = np.zeros((n_cells, self.max_genes), dtype=bool)
        ids[:, :width] = self.tokens[window]
        values[:, :width] = scaled[:, :width]
        mask[:, :width] = True
        return {"input_ids": ids, "input_values": values, "attention_mask": mask}


class _ExpressedChunkKnockout:
    """The variant's encodings of one chunk, one knocked-out gene at a time: the tokenizer's own
    expressed-gene encoding of the chunk's mapped columns (given by token id) without the gene's column."""

    def __init__(self, tokenizer, values, tokens: np.ndarray, max_genes: int, zero_genes: int) -> None:
        self.tokenizer = tokenizer
        self.values = values  # CSR, cells × mapped genes, data order, after the RNA transform
        self.tokens = np.asarray(tokens, dtype=np.int64)
        self.max_genes, self.zero_genes = max_genes, zero_genes

    def encode(self, rank: int) -> dict[str, np.ndarray]:
        """input_ids / input_values / attention_mask with mapped gene number ``rank`` removed (padded to
        the longest cell)."""
        from tokenization.checks import InputQualityWarning
        from tokenization.scaling import ConstantCellWarning

        keep = np.delete(np.arange(self.values.shape[1]), rank)
        with warnings.catch_warnings():  # said once already, for the unperturbed encoding
            warnings.simplefilter("ignore", ConstantCellWarning)
            warnings.simplefilter("ignore", InputQualityWarning)
            # the values are already transformed (_encoded_values): a second transform would re-normalise
            # them over the mapped genes without the knocked-out one
            encoded = self.tokenizer(
                rna=self.values[:, keep], gene_ids=self.tokens[keep], max_length=self.max_genes, padding="longest",
                truncation="first", encoder_inputs="expressed", expressed_zero_genes=self.zero_genes,
                rna_transform="none", return_tensors=None,
            )
        return {key: np.asarray(encoded[key]) for key in GENE_INPUTS}


def _read_columns(rna_report, options: dict) -> np.ndarray:
    """The mapped columns the model reads: all of them, or those of the genes it learnt (``learnt_genes`` of a
    model with a "set" layout), as the unperturbed encoding has them."""
    return rna_report.read_columns(options.get("learnt_genes"))


def _chunk_knockout(tokenizer, rna: Any, start: int, stop: int, rna_report, max_genes: int, options: dict,
                    rna_reading: Any = None):
    """The knockout builder of one chunk for the encoding ``options`` (:func:`.inference.encoding_options`)."""
    columns = _read_columns(rna_report, options)
    if columns.size < 2:
        raise ValueError("knockout needs at least two mapped genes")
    tokens = rna_report.token_ids[columns]
    if options.get("encoder_inputs", "all_genes") == "expressed":
        values = _encoded_values(tokenizer, rna, start, stop, columns, sparse=True, rna_reading=rna_reading)
        return _ExpressedChunkKnockout(tokenizer, values, tokens, max_genes, options.get("expressed_zero_genes", 0))
    return _ChunkKnockout(_encoded_values(tokenizer, rna, start, stop, columns, rna_reading=rna_reading), tokens,
                          max_genes)


def knockout_encoding(
    tokenizer,
    rna: Any,
    gene: str,
    max_length: int,
    gene_names: Sequence[str] | None = None,
    encoder_inputs: str = "all_genes",
    expressed_zero_genes: int = 0,
) -> dict[str, torch.Tensor]:
    """The encoding of ``rna`` with ``gene``'s column dropped, built as :func:`knockout_analysis` builds it.

    ``encoder_inputs="all_genes"``: equal to ``tokenizer(rna without the column, max_length=max_length,
    padding="max_length")``; ``"expressed"`` (the variant): equal to ``tokenizer(rna without the column,
    max_length=max_length, padding="longest", encoder_inputs="expressed", expressed_zero_genes=...)``.
    With the tokenizer's RNA transform, the column is dropped after it (library sizes unchanged: module
    docstring).
    Returns input_ids / input_values / attention_mask, (cells, width) tensors.
    """
    from modeling_sctranslator.inference import read_rna

    rna, gene_names = read_rna(rna, gene_names)
    options = {"encoder_inputs": encoder_inputs, "expressed_zero_genes": expressed_zero_genes}
    _, report = tokenizer(rna=rna[:1], gene_names=gene_names, max_length=max_length, return_report=True)
    ranks = _locate_knockouts(tokenizer, [gene], report.rna).positions
    builder = _chunk_knockout(tokenizer, rna, 0, rna.shape[0], report.rna, max_length, options)
    return {k: torch.from_numpy(v) for k, v in builder.encode(ranks[0]).items()}


def _changed_cells(base: dict[str, Any], perturbed: dict[str, np.ndarray]) -> np.ndarray:
    """(cells,) bool: the perturbed gene inputs differ from the unperturbed ones (widths may differ)."""
    changed = np.zeros(perturbed["input_ids"].shape[0], dtype=bool)
    for key in GENE_INPUTS:
        a, b = np.asarray(base[key]), perturbed[key]
        width = max(a.shape[1], b.shape[1])
        a = np.pad(a, ((0, 0), (0, width - a.shape[1])))
        b = np.pad(b, ((0, 0), (0, width - b.shape[1])))
        changed |= (a != b).any(axis=1)
    return changed


def _knockout_predictions(model, encoded, perturbed: dict[str, np.ndarray], base: np.ndarray, batch_size: int,
                          device, by_length: bool) -> tuple[np.ndarray, np.ndarray]:
    """Predictions for the perturbed encoding (cells × proteins) and which cells it changed.

    Cells whose encoding did not change keep ``base``; the others run through the model again.
    """
    from modeling_sctranslator.inference import predict_encoded

    changed = _changed_cells(encoded, perturbed)
    predictions = base.copy()
    rows = np.flatnonzero(changed)
    if rows.size:
        index = torch.from_numpy(rows)
        inputs = {key: torch.from_numpy(perturbed[key][rows]) for key in GENE_INPUTS}
        inputs.update({key: encoded[key][index] for key in ("protein_ids", "protein_attention_mask")})
        scaled, _ = predict_encoded(model, inputs, model.config.max_proteins, batch_size, device, by_length)
        predictions[rows] = scaled
    return predictions, changed


def _locate_knockouts(tokenizer, genes: Sequence[str], rna_report, options: dict | None = None) -> GeneLookup:
    """Where the genes to knock out are among the data's mapped genes the model reads (:func:`_read_columns`),
    each gene once; a clear error lists the bad ones."""
    genes = [str(g).strip() for g in genes if str(g).strip()]
    if not genes:
        raise ValueError("give at least one gene to knock out (genes=['TP53', 'CD4'], or --genes TP53,CD4 in the "
                         "command)")
    columns = _read_columns(rna_report, options or {})
    duplicate_columns = {name: f"a duplicate column of {first}, ignored by the tokenizer"
                         for name, first, _ in rna_report.duplicates}
    found = find_genes(tokenizer, genes, [rna_report.names[c] for c in columns], rna_report.token_ids[columns],
                       refused=duplicate_columns)
    found.refuse_missing(len(genes), "knockout genes", "reads (its gene layout, when it records one, or the genes it "
                         "learnt)", set(rna_report.names))
    return found


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
    untrained_proteins: list[str] = field(default_factory=list)  # never trained by the model: effects say nothing
    scale: str = KNOCKOUT_SCALE
    scale_description: str = "per-cell scaled predictions"

    def matrix(self, value: str = "standardized_effect", group: str = ALL_CELLS):
        """genes × proteins table of one statistic for one group (``"all"`` = every cell)."""
        table = self.effects[self.effects["group"] == group]
        if table.empty:
            raise ValueError(f"no group {group!r}; groups: {self.groups}")
        wide = table.pivot(index="gene", columns="protein", values=value)
        return wide.loc[self.genes, self.proteins]


def _groups(rna: Any, groupby: str | None, n_cells: int) -> tuple[list[str], np.ndarray]:
    """Group names (``"all"`` first) and each cell's group number (0 = only "all")."""
    if groupby is None:
        return [ALL_CELLS], np.zeros(n_cells, dtype=np.int64)
    obs = getattr(rna, "obs", None)
    if obs is None or groupby not in obs.columns:
        available = [] if obs is None else list(obs.columns)
        raise ValueError(f"groupby {groupby!r} is not an obs column; available: {available}")
    column = obs[groupby]
    missing = np.asarray(column.isna())
    labels = column.astype(object).where(~missing, MISSING_GROUP).astype(str).to_numpy()
    if missing.any():  # said, so a "nan" group is not mistaken for a label of the data
        warnings.warn(f"{int(missing.sum())} of {n_cells} cells have no {groupby!r} value: they are the group "
                      f"{MISSING_GROUP!r}", stacklevel=3)
    if ALL_CELLS in set(labels.tolist()):
        raise ValueError(f"a group of {groupby!r} is named {ALL_CELLS!r}, which names every cell here")
    groups = [ALL_CELLS] + sorted(set(labels.tolist()))
    return groups, np.searchsorted(np.asarray(groups[1:]), labels) + 1


class _EffectSums:
    """Running sums per (group, protein) and per (gene, group, protein); memory independent of the cells."""

    def __init__(self, n_genes: int, n_groups: int, n_proteins: int, tolerance: float) -> None:
        self.tolerance = tolerance
        self.count = np.zeros(n_groups)
        self.base_sum = np.zeros((n_groups, n_proteins))
        self.base_sq = np.zeros((n_groups, n_proteins))
        shape = (n_genes, n_groups, n_proteins)
        self.ko_sum, self.diff_sum, self.abs_sum, self.changed = (np.zeros(shape) for _ in range(4))
        self.perturbed = np.zeros((n_genes, n_groups))

    def add_base(self, onehot: np.ndarray, base: np.ndarray) -> None:
        """``onehot`` (cells, groups); ``base`` (cells, proteins) unperturbed predictions."""
        self.count += onehot.sum(0)
        self.base_sum += onehot.T @ base
        self.base_sq += onehot.T @ base**2

    def add_knockout(self, g: int, onehot: np.ndarray, base: np.ndarray, knockout: np.ndarray,
                     perturbed: np.ndarray) -> None:
        """Gene number ``g``'s predictions (cells, proteins) and which cells' encodings it changed (cells,)."""
        diff = knockout - base
        self.ko_sum[g] += onehot.T @ knockout
        self.diff_sum[g] += onehot.T @ diff
        self.abs_sum[g] += onehot.T @ np.abs(diff)
        self.changed[g] += onehot.T @ (np.abs(diff) > self.tolerance)
        self.perturbed[g] += onehot.T @ perturbed.astype(np.float64)

    def table(self, genes: Sequence[str], groups: Sequence[str], proteins: Sequence[str],
              genes_read: Sequence[str | None]):
        """The long effects table, one row per (gene, protein, group); ``gene_read``: the vocabulary's name of the
        gene each row's name reached (``CD8A`` for ``Leu2``)."""
        import pandas as pd

        n = self.count[:, None]
        cells = np.maximum(n, 1)
        base_mean = self.base_sum / cells
        base_var = (self.base_sq - n * base_mean**2) / np.maximum(n - 1, 1)
        base_sd = np.where(n > 1, np.sqrt(np.clip(base_var, 0.0, None)), np.nan)
        # identical cells leave a rounding residue in sum-of-squares - n*mean^2: treat an sd that small as 0
        base_sd = np.where(base_sd > 1e-6 * np.abs(base_mean) + 1e-12, base_sd, np.where(n > 1, 0.0, np.nan))
        rows = []
        for g, (gene, read) in enumerate(zip(genes, genes_read, strict=True)):
            mean_diff = self.diff_sum[g] / cells
            with np.errstate(divide="ignore", invalid="ignore"):
                standardized = np.where(base_sd > 0, mean_diff / base_sd, np.nan)
            for k, group in enumerate(groups):
                for p, protein in enumerate(proteins):
                    rows.append((
                        gene, read, protein, group, int(self.count[k]), base_mean[k, p],
                        self.ko_sum[g, k, p] / cells[k, 0], mean_diff[k, p], base_sd[k, p], standardized[k, p],
                        self.abs_sum[g, k, p] / cells[k, 0], self.changed[g, k, p] / cells[k, 0],
                        self.perturbed[g, k] / cells[k, 0],
                    ))
        table = pd.DataFrame(rows, columns=[
            "gene", "gene_read", "protein", "group", "n_cells", "mean_unperturbed", "mean_knockout", "mean_diff",
            "sd_unperturbed", "standardized_effect", "mean_abs_diff", "frac_changed", "frac_perturbed",
        ])
        table["scale"] = KNOCKOUT_SCALE  # in every row: the CSV alone says what the differences are on
        return table


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
    protein_context: str = "auto",
    layer: str | None = None,
) -> KnockoutResult:
    """Predict ``proteins`` with each of ``genes`` removed and compare with the unperturbed prediction.

    Works for both translators; the encoding follows the model's config (module docstring).

    Args:
        rna: AnnData, ``.h5ad`` path (read backed, in chunks), MuData or ``(matrix, gene_names)``.
        proteins: protein names or a protein AnnData (its var_names).
        genes: names to knock out (data column names, or symbols/aliases resolving to a data column's
            token); a comma-separated string works too. Unknown ones raise ValueError listing them.
        groupby: an ``obs`` column; effects are also reported per group.
        tolerance: a cell counts as changed when ``|knockout − unperturbed| > tolerance``.
        protein_context: as ``predict_proteins``'s: a small request is predicted inside the model's training
            proteins, a request inside a fine-tuning panel inside that panel (``"auto"``), so the effects are on the
            predictions ``predict`` gives.
        layer: read the RNA from ``layers[layer]`` (``"raw"``: ``.raw``) where X holds scaled or normalised values,
            as the pipeline's ``layer=`` and the CLI's ``--layer`` do.
    Returns:
        :class:`KnockoutResult`.
    """
    from modeling_sctranslator.inference import (
        aligned_to_layout,
        cell_rows,
        count_cells,
        default_batch_size,
        encoding_options,
        predict_encoded,
        protein_request,
        read_rna,
        reading_options,
        resolve_device,
        resolve_targets,
        untrained_proteins,
        warn_if_passes_scaled_apart,
        with_layer,
    )
    from tokenization.scaling import constant_cells_counted_apart, warn_constant_cells

    from .attention import _progress

    if (batch_size is not None and batch_size < 1) or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be positive")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    if isinstance(genes, str):
        genes = genes.split(",")
    genes = [str(g).strip() for g in genes if str(g).strip()]
    rna = with_layer(rna, layer)
    rna, gene_names = aligned_to_layout(model, tokenizer, *read_rna(rna, gene_names))
    n_cells = count_cells(rna)
    if n_cells == 0:
        raise ValueError("the RNA data has no cells")
    targets = resolve_targets(tokenizer, proteins)
    untrained = untrained_proteins(model, targets)
    config = model.config
    device = resolve_device(device) if device is not None else model.device
    model = model.to(device).eval()
    batch_size = batch_size or default_batch_size(config, device)
    options = encoding_options(config, getattr(model, "gene_layout", None))
    by_length = not config.pads_to_fixed_length
    groups, group_index = _groups(rna, groupby, n_cells)
    n_prot = len(targets.token_ids)
    request = protein_request(config, targets, protein_context)  # maybe with others, their predictions dropped
    warn_if_passes_scaled_apart(config, len(request.token_ids), "knock-out effects are differences of the per-cell "
                                "scaled predictions")
    sums = genes_read = None  # sized once the genes are found (a gene named twice is analysed once)

    bar = _progress(progress, "knockout", n_cells)
    ranks = None
    reading = reading_options(tokenizer, rna, chunk_size)  # one for every chunk, and for its knockouts
    constant = 0
    for start in range(0, n_cells, chunk_size):
        stop = min(start + chunk_size, n_cells)
        with constant_cells_counted_apart():
            encoded, report = tokenizer(
                rna=cell_rows(rna, start, stop), gene_names=gene_names, proteins=request.token_ids, **reading,
                max_length=config.max_genes, protein_max_length=max(len(request.token_ids), 1), truncation="first",
                return_tensors="pt", return_report=True, **options,
            )
        constant += report.constant_rna_cells
        if ranks is None:
            found = _locate_knockouts(tokenizer, genes, report.rna, options)  # errors before any model work
            ranks, genes = found.positions, found.kept
            sums = _EffectSums(len(genes), len(groups), n_prot, tolerance)
            genes_read = tokenizer.convert_ids_to_genes(found.tokens)
        builder = _chunk_knockout(tokenizer, rna, start, stop, report.rna, config.max_genes, options,
                                  reading.get("rna_reading"))
        onehot = np.zeros((stop - start, len(groups)))
        onehot[:, 0] = 1.0
        onehot[np.arange(stop - start), group_index[start:stop]] = 1.0
        asked = predict_encoded(model, encoded, config.max_proteins, batch_size, device, by_length)[0]
        asked = asked.astype(np.float64)
        base = asked[:, request.positions]
        sums.add_base(onehot, base)
        for g, rank in enumerate(ranks):
            knockout, perturbed = _knockout_predictions(
                model, encoded, builder.encode(rank), asked, batch_size, device, by_length
            )
            sums.add_knockout(g, onehot, base, knockout[:, request.positions], perturbed)
        bar(stop - start)
    warn_constant_cells(constant, n_cells, "RNA", stacklevel=2)

    effects = sums.table(genes, groups, targets.names, genes_read)
    unexpressed = [gene for g, gene in enumerate(genes) if sums.perturbed[g, 0] == 0]
    if unexpressed:  # exactly zero effects: correct, but easy to read as "no influence"
        warnings.warn(f"{len(unexpressed)} of {len(genes)} knocked-out genes are read in none of these cells "
                      f"({', '.join(unexpressed[:5])}{' ...' if len(unexpressed) > 5 else ''}): not expressed, or "
                      f"beyond the {config.max_genes:,} genes the model reads of a cell; knocking them out changes "
                      "nothing, so their effects are exactly 0 (frac_perturbed 0)",
                      stacklevel=2)
    flat = effects.drop_duplicates(["group", "protein"])
    undefined = flat[flat["standardized_effect"].isna()]
    if len(undefined):  # documented: mean_diff / sd is undefined where the unperturbed predictions do not vary
        warnings.warn(
            f"standardized_effect is undefined (NaN) for {len(undefined)} of {len(flat)} (group, protein) pairs, e.g. "
            f"{undefined['protein'].iloc[0]} in {undefined['group'].iloc[0]!r} ({int(undefined['n_cells'].iloc[0])} "
            "cells): its unperturbed predictions do not vary there (one cell, or identical cells); mean_diff is "
            "defined: read that, or knock out over more cells", stacklevel=2)
    return KnockoutResult(
        effects=effects, genes=list(genes), proteins=list(targets.names),
        groups=groups, n_cells=n_cells, tolerance=tolerance, groupby=groupby, unmapped_proteins=list(targets.unmapped),
        untrained_proteins=untrained, scale_description=_scale_description(config),
    )


def _scale_description(config) -> str:
    """What the knockout differences are on, in words, for this model (``predict`` writes another scale in X for
    models with the protein scale part)."""
    if getattr(config, "predict_protein_scale", False):
        return ("per-cell scaled predictions (predict's layers['scaled']; not the log1p counts predict writes in X "
                "for this model)")
    return "per-cell scaled predictions (the scale predict writes in X for this model)"
