"""Interpretation: attention maps (encoder, decoder, gene→protein) and in-silico gene knockout.

Attention recipes
=================
scTranslator's paper reads three maps out of a trained model, per cell, then sums them over cells:

* **encoder** (gene × gene): per layer, the head average of the attention the layer applied, then the
  average over layers. FAVOR+: ``A_ij = q'_i·k'_j / Σ_n q'_i·k'_n`` (the FAVOR+ approximation, not the
  exact softmax it stands for); with the original masking the sum runs over every key, padded ones
  included, as the layer applies it; with ``attention_masking="masked"`` (and ``"exact"`` softmax)
  over the cell's real genes only, so padded keys get 0 and every row sums to 1 over the cell's genes;
* **decoder** (protein × protein): the same over the decoder's layers and positions;
* **encoder→decoder** (gene × protein): compatible model: ``translator(enc) @ dec``, the translator (an
  MLP along the *position* axis, biases, ReLU, dropout in eval mode) applied to each gene's row of the
  encoder map, then multiplied by the decoder map.

``recipe="corrected"`` (default for the compatible model)
    The map of what the layer really attended over: queries and keys from ``LN(x)``, the block's
    input after its attention norm. Equal to the model's ``output_attentions``.
``recipe="original"``
    What the original ``attention_matrix.py`` computed, kept to reproduce published figures: the
    layer's pre-norm attention is called a second time on the residual stream *after* the attention
    update, ``x_new = x + attn(LN(x))``, and the map is taken from ``LN(x_new)`` with the same layer's
    norm and q/k weights. It is not the map the layer applied (it differs by 0.006–0.04 on the small
    fixture model). This recipe reproduces ``original_small_attention.npz`` to ~1e-7.
``recipe="cross_attention"`` (the only one, and the default, for the variant)
    Encoder and decoder maps as ``corrected``; the gene → protein map is the variant translator's own
    cross-attention, protein query → gene key, exact softmax over the cell's expressed genes, averaged
    over heads: for each protein and cell the weights over the cell's genes sum to 1.

The ``m^-1/2`` factor of the random features and the padding mask do not enter the maps (the
original's padding only zeroes values, and the maps use V = identity), exactly as the original.

Cost. FAVOR+ makes single rows of a map cheap: ``A[S, :] = q'_S k'ᵀ / (q'_S · Σ_n k'_n)`` needs
``|S| × L`` work per head, never ``L × L``. With a gene subset ``S`` (``genes=[...]`` or ``top-K``)
only those rows are built, in blocks of rows (memory ``batch × block × L``); the compatible model's
encoder→decoder map needs each selected gene's full row (the translator mixes all positions), so it
costs ``|S| × max_genes × translator width`` per cell. The attention *received* by every gene
(column sums, used to pick ``top-K``) is linear: ``Σ_i A_ij = k'_j · Σ_i q'_i / (q'_i · Σ_n k'_n)``.

Aggregation. Maps are summed over cells *by gene* (token id), not by position. The compatible
model sees every gene the tokenizer keeps (``truncation="first"``: the first ``max_genes`` mapped
genes, zeros included) in every cell. The variant sees only a cell's expressed genes (plus
``expressed_zero_genes``): a cell adds to the entries of the genes in its encoding and to nothing
else, and ``mean`` divides each entry by the number of cells that had the gene (gene × protein) or
both genes (gene × gene) in their encoding, so it reads "attention when the gene is expressed"
(``NaN`` for a gene no cell expressed); ``sum`` counts an absent gene as 0 attention (it could not
be attended to), and the per-gene counts come with the result (``gene_cell_counts``). For the
compatible model every count is the number of cells. ``normalized`` is the original's min-max
normalisation of the summed map: every column to [0, 1], then every row.

Knockout: see :mod:`interpretation.knockout`. Per-layer maps and sums by gene:
:mod:`interpretation.maps`. Output writers and plots: :mod:`interpretation.outputs`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .gene_lookup import find_genes
from .maps import (
    RECIPES,
    VARIANT_RECIPE,
    GeneIndex,
    GeneMapSums,
    cross_attention_weights,
    encoder_received,
    forward_states,
    gene_to_protein,
    map_rows,
    received_by_gene,
    row_block_size,
    stack_attention,
)

__all__ = [
    "AttentionResult",
    "RECIPES",
    "attention_analysis",
    "attention_maps",
    "attention_received",
    "minmax_normalize",
    "resolve_recipe",
]

MAP_NAMES = ("encoder", "decoder", "encoder_to_decoder")
# Mapping every gene (genes=None) is refused above this many: the gene x gene tables (3 statistics, CSV and in the
# AnnData) stay under ~100 MB; larger inputs choose genes (top-K or a list).
MAX_ALL_GENES = 1000
_CSV_BYTES_PER_ENTRY = 20  # a float64 as pandas writes it, with its separator


# --------------------------------------------------------------------------- recipes
def _check_recipe(recipe: str) -> str:
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    return recipe


def resolve_recipe(model, recipe: str | None) -> str:
    """The recipe to use for ``model``: ``recipe``, or its default (None); refuses a recipe it cannot use.

    The compatible model (MLP translator): ``"corrected"`` (default) or ``"original"``; the cross-attention
    variant: ``"cross_attention"`` only.
    """
    variant = not model.config.pads_to_fixed_length
    if recipe is None:
        return VARIANT_RECIPE if variant else "corrected"
    _check_recipe(recipe)
    if variant and recipe != VARIANT_RECIPE:
        raise ValueError(
            f"recipe {recipe!r} reads maps through the original MLP translator; this model is the cross-attention "
            f"variant, whose gene -> protein map is its translator's cross-attention: use recipe={VARIANT_RECIPE!r} "
            "(or leave the recipe out)"
        )
    if not variant and recipe == VARIANT_RECIPE:
        raise ValueError(
            f"recipe {VARIANT_RECIPE!r} needs the cross-attention variant (translator_type='cross_attention'); "
            "this model uses the MLP translator: use 'corrected' or 'original'"
        )
    return recipe


# --------------------------------------------------------------------------- one batch
@torch.inference_mode()
def attention_maps(
    model,
    input_ids: torch.Tensor,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    protein_ids: torch.Tensor | None = None,
    protein_attention_mask: torch.Tensor | None = None,
    gene_positions: Sequence[int] | torch.Tensor | None = None,
    recipe: str | None = None,
    row_block: int | None = None,
) -> dict[str, torch.Tensor]:
    """Per-cell attention maps of a batch of tokenized cells, by input position (module docstring: recipes).

    Args:
        input_ids ... protein_attention_mask: the model's inputs (as from the tokenizer); the compatible
            model's are padded here to ``max_genes`` / ``max_proteins`` as the model pads them.
        gene_positions: encoder positions ``S`` whose rows (and columns) are wanted; None = every position
            (an L × L map per cell: only for small models).
        recipe: None = the model's default; ``"corrected"`` / ``"original"`` (compatible model) or
            ``"cross_attention"`` (the variant).
        row_block: map rows computed at once (bounds memory at batch × row_block × length).

    Returns:
        ``encoder`` (B, |S|, |S|), ``decoder`` (B, P, P) and ``encoder_to_decoder`` (B, |S|, P), float32
        on the model's device. P = ``max_proteins`` for the compatible model (padded protein positions
        included: slice them off with the protein mask), the given proteins for the variant. For the
        variant ``encoder_to_decoder`` is the cross-attention (each protein's column sums to 1 over the
        cell's genes) and rows and columns of padded genes are 0.
    """
    recipe = resolve_recipe(model, recipe)
    model.eval()
    states = forward_states(model, input_ids, input_values, attention_mask, protein_ids, protein_attention_mask)
    output, mask = states.output, states.mask
    encoder = stack_attention(model.encoder, output.encoder_hidden_states, mask, recipe)
    decoder = map_rows(stack_attention(model.decoder, output.decoder_hidden_states, states.protein_mask, recipe),
                       None).float()
    variant = not model.config.pads_to_fixed_length
    cross = cross_attention_weights(model, states) if variant else None
    batch, length = mask.shape
    positions = (
        torch.arange(length, device=mask.device)
        if gene_positions is None
        else torch.as_tensor(gene_positions, dtype=torch.long, device=mask.device)
    )
    real = mask.float() if variant else torch.ones_like(mask, dtype=torch.float32)  # the variant: padding → 0
    block = row_block_size(batch, length, row_block)
    enc_parts, cross_parts = [], []
    for start in range(0, positions.numel(), block):
        rows = positions[start : start + block]
        rows_map = map_rows(encoder, rows).float() * real[:, rows, None]  # (B, r, L)
        enc_parts.append(rows_map[:, :, positions] * real[:, None, positions])
        per_cell_rows = rows.expand(batch, -1)
        cross_parts.append(gene_to_protein(model, rows_map, per_cell_rows, decoder, cross))
    return {
        "encoder": torch.cat(enc_parts, dim=1),
        "decoder": decoder,
        "encoder_to_decoder": torch.cat(cross_parts, dim=1),
    }


@torch.inference_mode()
def attention_received(
    model,
    input_ids: torch.Tensor,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    recipe: str | None = None,
) -> torch.Tensor:
    """Encoder attention received by every position, ``Σ_i A_ij`` over real query genes: (B, length).

    ``length`` = ``max_genes`` for the compatible model, the given length for the variant. Linear in
    length for FAVOR+ (no map is built); runs the encoder only.
    """
    recipe = resolve_recipe(model, recipe)
    model.eval()
    return encoder_received(model, input_ids, input_values, attention_mask, recipe)[2].float()


def minmax_normalize(matrix: np.ndarray) -> np.ndarray:
    """The original's normalisation: every column min-max to [0, 1], then every row. Constant → 0; NaN entries
    (no value) are left out of the minima and maxima and stay NaN."""

    def scale(x: np.ndarray, axis: int) -> np.ndarray:
        with warnings.catch_warnings():  # an all-NaN row or column has no minimum: it stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanmin(x, axis=axis, keepdims=True)
            span = np.nanmax(x, axis=axis, keepdims=True) - lo
        scaled = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)
        return np.where(np.isnan(x), np.nan, scaled)

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.size == 0:
        return matrix
    return scale(scale(matrix, 0), 1)


# --------------------------------------------------------------------------- many cells
@dataclass
class AttentionResult:
    """Attention maps aggregated over cells.

    ``sums[name]`` for ``name`` in ``encoder`` (genes × genes), ``decoder`` (proteins × proteins),
    ``encoder_to_decoder`` (genes × proteins); rows/columns follow ``genes`` / ``proteins``.
    ``received`` is the encoder attention each listed gene received, summed over cells (the
    ``top-K`` criterion). ``gene_cell_counts`` (genes,): cells that had each gene in their encoding
    (every cell for the compatible model); ``pair_cell_counts`` (genes × genes): cells that had both,
    None when every listed gene was in every cell. ``recipe`` names how the maps were read.
    """

    genes: list[str]
    proteins: list[str]
    n_cells: int
    recipe: str
    sums: dict[str, np.ndarray]
    gene_token_ids: list[int] = field(default_factory=list)
    protein_token_ids: list[int] = field(default_factory=list)
    received: np.ndarray | None = None
    gene_selection: str = ""
    unmapped_proteins: list[str] = field(default_factory=list)
    untrained_proteins: list[str] = field(default_factory=list)  # never trained by the model: maps say nothing of them
    gene_cell_counts: np.ndarray | None = None
    model: str = ""  # the model's folder or Hub id, as predict records it (uns['sctranslator']['model'])
    pair_cell_counts: np.ndarray | None = None

    def cell_counts(self, name: str) -> np.ndarray | float:
        """Cells each entry of map ``name`` was summed over (broadcasts against the map)."""
        if name == "encoder" and self.pair_cell_counts is not None:
            return self.pair_cell_counts
        if name == "encoder_to_decoder" and self.gene_cell_counts is not None:
            return np.asarray(self.gene_cell_counts, dtype=np.float64)[:, None]
        return float(self.n_cells)

    def mean(self, name: str) -> np.ndarray:
        """The sum divided by the cells it was summed over; NaN where no cell had the gene(s)."""
        counts = self.cell_counts(name)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(counts > 0, self.sums[name] / np.maximum(counts, 1), np.nan)

    def normalized(self, name: str) -> np.ndarray:
        """The original's min-max normalisation of the summed map; NaN where :meth:`mean` is NaN (no cell had
        the gene(s)): a 0 there would tie such a gene with the least attended real one, and it has no value."""
        counts = self.cell_counts(name)
        return minmax_normalize(np.where(np.broadcast_to(counts, self.sums[name].shape) > 0, self.sums[name], np.nan))

    def get(self, name: str, stat: str = "sum") -> np.ndarray:
        if name not in MAP_NAMES:
            raise ValueError(f"map must be one of {MAP_NAMES}, got {name!r}")
        if stat == "sum":
            return self.sums[name]
        if stat == "mean":
            return self.mean(name)
        if stat == "normalized":
            return self.normalized(name)
        raise ValueError(f"stat must be sum, mean or normalized, got {stat!r}")

    def labels(self, name: str) -> tuple[list[str], list[str]]:
        return {
            "encoder": (self.genes, self.genes),
            "decoder": (self.proteins, self.proteins),
            "encoder_to_decoder": (self.genes, self.proteins),
        }[name]

    def frame(self, name: str, stat: str = "sum"):
        """The map as a pandas DataFrame (index: query genes/proteins, columns: keys/proteins)."""
        import pandas as pd

        rows, cols = self.labels(name)
        return pd.DataFrame(self.get(name, stat), index=pd.Index(rows, name="row"), columns=cols)

    def ranked_genes(self, protein: str, by: str = "mean"):
        """Genes ranked for one protein by its encoder→decoder column (descending): a pandas Series.

        Genes without a score (``mean`` or ``normalized`` of a gene no cell expressed: NaN) are left out.
        """
        import pandas as pd

        if protein not in self.proteins:
            raise ValueError(f"{protein!r} is not among the mapped proteins {self.proteins[:10]}")
        column = self.get("encoder_to_decoder", by)[:, self.proteins.index(protein)]
        series = pd.Series(column, index=pd.Index(self.genes, name="gene"), name=protein)
        return series.dropna().sort_values(ascending=False, kind="stable")

    def to_anndata(self):
        """AnnData with genes as obs and proteins as var.

        ``X`` = encoder→decoder sum; ``layers['mean' | 'normalized']``; ``obsm['encoder_<stat>']``
        (genes × genes, columns in obs order); ``varm['decoder_<stat>']`` (proteins × proteins, columns
        in var order); ``obs['attention_received']``, ``obs['n_cells_present']`` (cells with the gene in
        their encoding); ``uns['sctranslator_attention']`` describes it.
        """
        import anndata
        import pandas as pd

        obs = pd.DataFrame(index=pd.Index(self.genes, dtype=str))
        if self.gene_token_ids:
            obs["token_id"] = np.asarray(self.gene_token_ids, dtype=np.int64)
        if self.received is not None:
            obs["attention_received"] = np.asarray(self.received, dtype=np.float64)
        if self.gene_cell_counts is not None:
            obs["n_cells_present"] = np.asarray(self.gene_cell_counts, dtype=np.int64)
        var = pd.DataFrame(index=pd.Index(self.proteins, dtype=str))
        if self.protein_token_ids:
            var["token_id"] = np.asarray(self.protein_token_ids, dtype=np.int64)
        adata = anndata.AnnData(X=self.sums["encoder_to_decoder"].astype(np.float64), obs=obs, var=var)
        adata.layers["mean"] = self.mean("encoder_to_decoder")
        adata.layers["normalized"] = self.normalized("encoder_to_decoder")
        for stat in ("sum", "mean", "normalized"):
            adata.obsm[f"encoder_{stat}"] = self.get("encoder", stat)
            adata.varm[f"decoder_{stat}"] = self.get("decoder", stat)
        adata.uns["sctranslator_attention"] = {
            "model": self.model,
            "recipe": self.recipe,
            "n_cells": int(self.n_cells),
            "gene_selection": self.gene_selection,
            "X": "encoder->decoder attention (genes x proteins), summed over cells",
            "obsm": "encoder_<stat>: genes x genes (query x key), columns in obs order",
            "varm": "decoder_<stat>: proteins x proteins (query x key), columns in var order",
            "mean": "sum / cells that had the gene (gene x protein) or both genes (gene x gene) in their encoding; "
                    "NaN where none had",
            "normalized": "column min-max to [0, 1], then row min-max, of the summed map (original's); NaN where "
                          "mean is NaN",
            "unmapped_proteins": list(self.unmapped_proteins),
            "untrained_proteins": list(self.untrained_proteins),
        }
        return adata


def _parse_top(genes: Any) -> int | None:
    """``"top-500"`` / ``"top500"`` / an int → 500; anything else → None."""
    if isinstance(genes, (int, np.integer)) and not isinstance(genes, bool):
        return int(genes)
    if isinstance(genes, str):
        text = genes.strip().lower()
        if text.startswith("top"):
            number = text[3:].lstrip("-_ ")
            if number.isdigit():
                return int(number)
            raise ValueError(f"cannot read {genes!r} as top-K (e.g. top-500)")
    return None


def locate_genes(
    tokenizer, requested: Sequence[str], window_names: Sequence[str], window_tokens: np.ndarray
) -> list[int]:
    """Indices among the window's genes (:meth:`_Cells.window`) of the ``requested`` genes (by name, else by token),
    each gene once (:func:`.gene_lookup.find_genes`).

    Raises ValueError listing every gene that is not in the vocabulary or not among the window's genes.
    """
    requested = [str(g).strip() for g in requested if str(g).strip()]
    if not requested:
        raise ValueError("the list of genes is empty")
    found = find_genes(tokenizer, requested, window_names, window_tokens)
    found.refuse_missing(len(requested), "genes", "sees (mapped genes; for the compatible model, within the first "
                         "max_genes)")
    return found.positions


MODEL_INPUTS = ("input_ids", "input_values", "attention_mask", "protein_ids", "protein_attention_mask")


class _Cells:
    """The cells of an analysis, tokenized chunk by chunk as the model reads them, and batches of them."""

    def __init__(self, tokenizer, rna, gene_names, protein_ids, config, chunk_size: int, batch_size: int,
                 device: torch.device, layout=None) -> None:
        from modeling_sctranslator.inference import count_cells, reading_options

        self.tokenizer, self.rna, self.gene_names, self.protein_ids = tokenizer, rna, gene_names, protein_ids
        self.layout = layout
        self.config, self.chunk_size, self.batch_size, self.device = config, chunk_size, batch_size, device
        self.n_cells = count_cells(rna)
        if self.n_cells == 0:
            raise ValueError("the RNA data has no cells")
        self.reading = reading_options(tokenizer, rna, chunk_size)  # one for every chunk
        self.constant: dict[int, int] = {}  # chunk start -> its cells of constant RNA, said once for all
        self.first, self.report = self._encode(0, min(chunk_size, self.n_cells))

    def _encode(self, start: int, stop: int):
        from modeling_sctranslator.inference import cell_rows, encoding_options
        from tokenization.scaling import constant_cells_counted_apart

        with constant_cells_counted_apart():
            encoded, report = self.tokenizer(
                rna=cell_rows(self.rna, start, stop), gene_names=self.gene_names, proteins=self.protein_ids,
                **self.reading,
                max_length=self.config.max_genes, protein_max_length=self.config.max_proteins, truncation="first",
                return_tensors="pt", return_report=True, **encoding_options(self.config, self.layout),
            )
        self.constant[start] = report.constant_rna_cells
        return encoded, report

    def warn_constant(self) -> None:
        """The cells of constant RNA over every chunk read, in one warning (as ``predict`` says it)."""
        from tokenization.scaling import warn_constant_cells

        warn_constant_cells(sum(self.constant.values()), self.n_cells, "RNA", stacklevel=4)

    def window(self) -> tuple[list[str], np.ndarray]:
        """Names and token ids of the data's genes the model can see, in data order.

        The compatible model: the first ``max_genes`` mapped genes (in every cell); the variant: every
        mapped gene (each cell encodes those it expresses), of those it learnt when it records them.
        """
        columns = self.report.rna.columns
        if self.config.pads_to_fixed_length:
            columns = columns[: self.config.max_genes]
        elif self.layout is not None and self.layout.kind == "set":
            columns = self.report.rna.read_columns(self.layout.token_ids)
        return [self.report.rna.names[c] for c in columns], self.report.rna.token_ids[columns]

    def chunks(self) -> Iterator[tuple[int, int, Any]]:
        """``(start, stop, encoding)`` per chunk of cells."""
        for start in range(0, self.n_cells, self.chunk_size):
            stop = min(start + self.chunk_size, self.n_cells)
            yield start, stop, self.first if start == 0 else self._encode(start, stop)[0]

    def batches(self, encoded) -> Iterator[dict[str, torch.Tensor]]:
        """The model's inputs in batches on the device; the variant's cells in order of length, each batch
        cut to its longest cell (its results do not depend on batching or padding)."""
        by_length = not self.config.pads_to_fixed_length
        lengths = encoded["attention_mask"].sum(dim=1)
        order = torch.argsort(lengths, stable=True) if by_length else torch.arange(lengths.numel())
        for first in range(0, order.numel(), self.batch_size):
            cells = order[first : first + self.batch_size]
            batch = {key: encoded[key][cells] for key in MODEL_INPUTS}
            if by_length:
                width = max(int(lengths[cells].max()), 1)  # real genes are left-aligned
                for key in ("input_ids", "input_values", "attention_mask"):
                    batch[key] = batch[key][:, :width]
            yield {key: value.to(self.device) for key, value in batch.items()}


def _genes_in_cells(cells: _Cells, index: GeneIndex) -> np.ndarray:
    """Cells that have each gene of ``index`` in their encoding, over all cells (tokenization only)."""
    counts = torch.zeros(index.size, dtype=torch.float64)
    for _, _, encoded in cells.chunks():
        counts += index.presence(index.of(encoded["input_ids"], encoded["attention_mask"].bool())).sum(0).double()
    return counts.numpy()


def _rank_by_received(model, cells: _Cells, tokens: np.ndarray, recipe: str, progress) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Encoder attention received by each window gene summed over cells, and the cells that had it."""
    index = GeneIndex(tokens, model.config.vocab_size, cells.device)
    total = torch.zeros(index.size, dtype=torch.float64, device=cells.device)
    present = torch.zeros_like(total)
    bar = _progress(progress, "ranking genes", cells.n_cells)
    for start, stop, encoded in cells.chunks():
        for batch in cells.batches(encoded):
            got, seen = received_by_gene(model, batch, index, recipe)
            total += got
            present += seen
        bar(stop - start)
    return total.cpu().numpy(), present.cpu().numpy()


_NO_GENE_EXPRESSED = ("no cell of the input expresses a gene the model reads (every cell is zero over its genes), so "
                      "there is no attention between genes to rank or map: give cells with expression")


def _select_genes(model, tokenizer, cells: _Cells, genes, recipe: str, progress):
    """Window indices of the genes to map, a description, and (top-K) the attention they received."""
    names, tokens = cells.window()
    top = _parse_top(genes)
    if top is not None:
        if top < 1:
            raise ValueError("top-K needs K >= 1")
        _check_gene_map_size(top, f"top-{top}")  # before ranking: top-100000 wrote 5 GB of tables unasked
        total, present = _rank_by_received(model, cells, tokens, recipe, progress)
        candidates = np.flatnonzero(present > 0)
        if not candidates.size:
            raise ValueError(_NO_GENE_EXPRESSED)
        order = candidates[np.argsort(-total[candidates], kind="stable")][:top]
        return order.tolist(), f"top-{top} by encoder attention received (summed over cells)", total
    if genes is None:
        present = np.flatnonzero(_genes_in_cells(cells, GeneIndex(tokens, model.config.vocab_size,
                                                                   torch.device("cpu"))) > 0)
        if not present.size:
            raise ValueError(_NO_GENE_EXPRESSED)
        _check_gene_map_size(present.size, "mapping every gene")
        return present.tolist(), "all genes the model sees (in at least one cell)", None
    if isinstance(genes, str):
        genes = genes.split(",")
    _check_gene_map_size(len(genes), f"the {len(genes):,} genes listed")
    return locate_genes(tokenizer, list(genes), names, tokens), "listed genes", None


def _check_gene_map_size(n_genes: int, what: str) -> None:
    """Refuse a gene x gene map of more than :data:`MAX_ALL_GENES` genes (every gene, top-K or a list): it grows with
    the square (a 10x file's ~10,000 expressed genes: 10^8 entries, gigabytes of tables, minutes of work) and a
    gene subset is what such an analysis needs."""
    if n_genes <= MAX_ALL_GENES:
        return
    gigabytes = len(("sum", "mean", "normalized")) * n_genes**2 * _CSV_BYTES_PER_ENTRY / 1e9
    raise ValueError(
        f"{what} means up to {n_genes:,} genes here: a {n_genes:,} x {n_genes:,} gene x gene encoder map "
        f"({n_genes**2:,} entries, about {gigabytes:,.1f} GB as CSV tables); maps are made of at most "
        f"{MAX_ALL_GENES:,} genes. Choose fewer: --genes top-500 (genes='top-500': the 500 receiving the most "
        "encoder attention) or --genes A,B,C / a file of names"
    )


def attention_analysis(
    model,
    tokenizer,
    rna: Any,
    proteins: Any,
    genes: int | str | Sequence[str] | None = None,
    recipe: str | None = None,
    gene_names: Sequence[str] | None = None,
    batch_size: int = 2,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int], None] = False,
    layer: str | None = None,
) -> AttentionResult:
    """Encoder, decoder and gene→protein attention maps aggregated over the cells of ``rna``, by gene.

    Args:
        rna: AnnData, ``.h5ad`` path (read backed, in chunks), MuData or ``(matrix, gene_names)``.
        proteins: protein names (or a protein AnnData: its var_names); at most ``max_proteins``
            mapped ones (one decoder pass: the decoder map couples the proteins of one pass).
        genes: None = every gene the model sees (in at least one cell; |S|² entries: refused above
            :data:`MAX_ALL_GENES` genes, with the size it would have); ``"top-K"`` / K = the K genes
            receiving the most encoder attention summed over cells (an extra, encoder-only pass over the
            cells); a list of names = those genes.
        recipe: None = the model's default (``"corrected"``; ``"cross_attention"`` for the variant), or
            ``"original"`` (module docstring).
        batch_size: cells per forward pass; chunk_size: cells read and tokenized at once.
        layer: read the RNA from ``layers[layer]`` (``"raw"``: ``.raw``) where X holds scaled or normalised values,
            as the pipeline's ``layer=`` and the CLI's ``--layer`` do.
    Returns:
        :class:`AttentionResult` (``recipe`` records the recipe used). For the variant a cell adds only
        to the genes in its encoding and ``mean`` is over those cells (module docstring).
    """
    from modeling_sctranslator.inference import (
        aligned_to_layout,
        read_rna,
        resolve_device,
        resolve_targets,
        untrained_proteins,
        with_layer,
    )

    recipe = resolve_recipe(model, recipe)
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be positive")
    rna = with_layer(rna, layer)
    rna, gene_names = aligned_to_layout(model, tokenizer, *read_rna(rna, gene_names))
    targets = resolve_targets(tokenizer, proteins)
    untrained = untrained_proteins(model, targets)
    config = model.config
    n_proteins = len(targets.token_ids)
    if n_proteins > config.max_proteins:
        raise ValueError(
            f"{n_proteins} proteins exceed the decoder length {config.max_proteins}: attention maps couple "
            "the proteins of one decoder pass; ask for at most max_proteins proteins per run"
        )
    device = resolve_device(device) if device is not None else model.device
    model = model.to(device).eval()
    cells = _Cells(tokenizer, rna, gene_names, targets.token_ids, config, chunk_size, batch_size, device,
                   getattr(model, "gene_layout", None))
    names, tokens = cells.window()
    positions, selection, total_received = _select_genes(model, tokenizer, cells, genes, recipe, progress)

    sums = GeneMapSums(tokens[positions], n_proteins, config.vocab_size, device)
    bar = _progress(progress, "attention maps", cells.n_cells)
    for start, stop, encoded in cells.chunks():
        for batch in cells.batches(encoded):
            sums.add(model, batch, recipe)
        bar(stop - start)
    cells.warn_constant()
    gene_counts = sums.gene_counts.cpu().numpy()
    _warn_absent([names[p] for p in positions], gene_counts)
    return AttentionResult(
        genes=[names[p] for p in positions],
        proteins=list(targets.names),
        n_cells=cells.n_cells,
        recipe=recipe,
        sums=sums.numpy(),
        gene_token_ids=[int(tokens[p]) for p in positions],
        protein_token_ids=list(targets.token_ids),
        received=None if total_received is None else total_received[positions],
        gene_selection=selection,
        unmapped_proteins=list(targets.unmapped),
        untrained_proteins=untrained,
        gene_cell_counts=gene_counts,
        pair_cell_counts=sums.pairs.numpy(),
        model=str(getattr(config, "_name_or_path", "") or "in-memory model"),
    )


def _warn_absent(genes: Sequence[str], counts: np.ndarray) -> None:
    absent = [gene for gene, count in zip(genes, counts, strict=True) if count == 0]
    if absent:
        warnings.warn(
            f"{len(absent)} of the listed genes {'is' if len(absent) == 1 else 'are'} in no cell's encoding (not "
            "expressed, or beyond the genes the "
            "model reads of a cell: at most its max_genes), so they "
            f"have no attention: {absent[:10]}; their means and normalized values are NaN and they are left out of "
            "the ranked lists",
            UserWarning, stacklevel=3,
        )


def _progress(progress, desc: str, total: int) -> Callable[[int], None]:
    """Update function for a progress bar of ``total`` cells (tqdm when True, a callable as is)."""
    from modeling_sctranslator.inference import progress_bar

    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="cell", desc=desc)

        def update(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return update
    return progress_bar(progress, total)

