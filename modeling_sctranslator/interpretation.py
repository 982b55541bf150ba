"""Interpretation: attention maps (encoder, decoder, encoder→decoder) and in-silico gene knockout.

Attention recipes
=================
scTranslator's paper reads three maps out of a trained model, per cell, then sums them over cells:

* **encoder** (gene × gene): per layer, the head average of the FAVOR+ attention
  ``A_ij = q'_i·k'_j / Σ_n q'_i·k'_n`` (rows sum to one over every key, padded ones included, as
  the layer applies it), then the average over layers;
* **decoder** (protein × protein): the same over the decoder's layers and positions;
* **encoder→decoder** (gene × protein): ``translator(enc) @ dec``: the translator (an MLP along the
  *position* axis, biases, ReLU, dropout in eval mode) applied to each gene's row of the encoder map,
  then multiplied by the decoder map.

Two recipes differ only in *which* hidden state a layer's map is computed from:

``recipe="corrected"`` (default)
    The map of what the layer really attended over: queries and keys from ``LN(x)``, the block's
    input after its attention norm. Equal to the model's ``output_attentions``.
``recipe="original"``
    What the original ``attention_matrix.py`` computed, kept to reproduce published figures: the
    layer's pre-norm attention is called a second time on the residual stream *after* the attention
    update, ``x_new = x + attn(LN(x))``, and the map is taken from ``LN(x_new)`` with the same layer's
    norm and q/k weights. It is not the map the layer applied (it differs by 0.006–0.04 on the small
    fixture model). This recipe reproduces ``original_small_attention.npz`` to ~1e-7.

The ``m^-1/2`` factor of the random features and the padding mask do not enter the maps (padding
only zeroes values, and the maps use V = identity), exactly as the original.

Cost. FAVOR+ makes single rows of a map cheap: ``A[S, :] = q'_S k'ᵀ / (q'_S · Σ_n k'_n)`` needs
``|S| × L`` work per head, never ``L × L``. With a gene subset ``S`` (``genes=[...]`` or ``top-K``)
only those rows are built, in blocks of rows (memory ``batch × block × L``); the encoder→decoder map
needs each selected gene's full row (the translator mixes all positions), so it costs
``|S| × max_genes × translator width`` per cell. The attention *received* by every gene
(column sums, used to pick ``top-K``) is linear: ``Σ_i A_ij = k'_j · Σ_i q'_i / (q'_i · Σ_n k'_n)``.

Aggregation. ``sum`` (the paper) and ``mean`` over cells; ``normalized`` is the original's min-max
normalisation of the summed map: every column to [0, 1], then every row (min-max is invariant to
scaling, so it is the same for ``mean``). Cells are aggregated by position, which is a gene because
the tokenizer's ``truncation="first"`` puts the same genes at the same positions in every cell.

Knockout: see :mod:`.interpretation_knockout`. Output writers and plots:
:mod:`.interpretation_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .favor_attention import softmax_kernel_features, split_heads

__all__ = [
    "AttentionResult",
    "RECIPES",
    "attention_analysis",
    "attention_maps",
    "attention_received",
    "minmax_normalize",
]

RECIPES = ("corrected", "original")
MAP_NAMES = ("encoder", "decoder", "encoder_to_decoder")
_ROW_BLOCK_ELEMENTS = 1 << 24  # batch × rows × length elements per block of map rows (64 MiB float32)


# --------------------------------------------------------------------------- per-layer features
def _check_recipe(recipe: str) -> str:
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    return recipe


def _layer_features(block, hidden: torch.Tensor, mask: torch.Tensor, recipe: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features (q', k') of one Performer block, (batch, heads, length, features) each.

    ``hidden`` is the block's input (the residual stream before the block).
    """
    normed = block.attention_norm(hidden)
    if recipe == "original":
        attended, _ = block.attention(normed, mask, False)
        normed = block.attention_norm(hidden + attended)
    attention = block.attention
    q = split_heads(attention.to_q(normed), attention.num_heads)
    k = split_heads(attention.to_k(normed), attention.num_heads)
    qf = softmax_kernel_features(q, attention.projection_matrix, True, attention.kernel_epsilon)
    kf = softmax_kernel_features(k, attention.projection_matrix, False, attention.kernel_epsilon)
    return qf, kf


def _stack_features(stack, hidden_states: Sequence[torch.Tensor], mask: torch.Tensor, recipe: str):
    return [_layer_features(block, hidden_states[i], mask, recipe) for i, block in enumerate(stack.layers)]


def _map_rows(features: list[tuple[torch.Tensor, torch.Tensor]], rows: torch.Tensor | None) -> torch.Tensor:
    """Rows ``rows`` (all when None) of the head- and layer-averaged map: (batch, rows, length)."""
    out = None
    for qf, kf in features:
        q_rows = qf if rows is None else qf[:, :, rows]
        key_sum = kf.sum(dim=-2)  # (B, H, m)
        scores = torch.matmul(q_rows, kf.transpose(-1, -2))  # (B, H, r, L)
        norm = torch.matmul(q_rows, key_sum.unsqueeze(-1))  # (B, H, r, 1)
        layer_map = (scores / norm).mean(dim=1)
        out = layer_map if out is None else out + layer_map
    return out / len(features)


def _received(features: list[tuple[torch.Tensor, torch.Tensor]], query_mask: torch.Tensor | None) -> torch.Tensor:
    """Column sums ``Σ_i A_ij`` over (real) query rows, head- and layer-averaged: (batch, length)."""
    out = None
    for qf, kf in features:
        norm = torch.matmul(qf, kf.sum(dim=-2).unsqueeze(-1))  # (B, H, L, 1)
        weights = qf / norm
        if query_mask is not None:
            weights = weights * query_mask[:, None, :, None].to(weights.dtype)
        col = torch.matmul(kf, weights.sum(dim=-2).unsqueeze(-1)).squeeze(-1).mean(dim=1)  # (B, L)
        out = col if out is None else out + col
    return out / len(features)


def _forward_states(model, input_ids, input_values, attention_mask, protein_ids, protein_attention_mask):
    """One forward pass with hidden states, padded to the model's fixed lengths (masks padded too)."""
    from .modeling_sctranslator import prepare_side

    config = model.config
    ids, values, mask = prepare_side(
        input_ids, input_values, attention_mask, config.max_genes, config.vocab_size, "genes"
    )
    pids, _, pmask = prepare_side(
        protein_ids, None, protein_attention_mask, config.max_proteins, config.vocab_size, "proteins"
    )
    output = model(
        input_ids=ids, input_values=values, attention_mask=mask, protein_ids=pids,
        protein_attention_mask=pmask, output_hidden_states=True,
    )
    return output, mask, pmask


def require_mlp_translator(model, what: str) -> None:
    """Interpretation follows the original recipes, which go through the MLP translator over positions."""
    translator_type = getattr(model.config, "translator_type", "mlp")
    if translator_type != "mlp":
        raise ValueError(
            f"{what} follow the original scTranslator recipes and need translator_type='mlp'; this model uses "
            f"{translator_type!r} (the cross-attention variant), which they do not support yet"
        )


@torch.inference_mode()
def attention_maps(
    model,
    input_ids: torch.Tensor,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    protein_ids: torch.Tensor | None = None,
    protein_attention_mask: torch.Tensor | None = None,
    gene_positions: Sequence[int] | torch.Tensor | None = None,
    recipe: str = "corrected",
    row_block: int | None = None,
) -> dict[str, torch.Tensor]:
    """Per-cell attention maps of a batch of tokenized cells (see the module docstring for the recipes).

    Args:
        input_ids ... protein_attention_mask: the model's inputs (as from the tokenizer); padded here to
            ``max_genes`` / ``max_proteins`` as the model pads them.
        gene_positions: encoder positions ``S`` whose rows (and columns) are wanted; None = all
            ``max_genes`` positions (an L × L map per cell: only for small models).
        recipe: ``"corrected"`` (what each layer attended over) or ``"original"`` (the original's
            recipe, see the module docstring).
        row_block: map rows computed at once (bounds memory at batch × row_block × max_genes).

    Returns:
        ``encoder`` (B, |S|, |S|), ``decoder`` (B, max_proteins, max_proteins) and
        ``encoder_to_decoder`` (B, |S|, max_proteins), float32 on the model's device; padded
        protein positions are included (slice them off with the protein mask).
    """
    _check_recipe(recipe)
    require_mlp_translator(model, "attention maps")
    model.eval()
    output, mask, pmask = _forward_states(
        model, input_ids, input_values, attention_mask, protein_ids, protein_attention_mask
    )
    enc_features = _stack_features(model.encoder, output.encoder_hidden_states, mask, recipe)
    dec_features = _stack_features(model.decoder, output.decoder_hidden_states, pmask, recipe)
    dec = _map_rows(dec_features, None).float()
    batch, length = mask.shape
    positions = (
        torch.arange(length, device=mask.device)
        if gene_positions is None
        else torch.as_tensor(gene_positions, dtype=torch.long, device=mask.device)
    )
    block = row_block or max(1, _ROW_BLOCK_ELEMENTS // max(1, batch * length))
    enc_parts, cross_parts = [], []
    for start in range(0, positions.numel(), block):
        rows = positions[start : start + block]
        rows_map = _map_rows(enc_features, rows)  # (B, r, L)
        enc_parts.append(rows_map[:, :, positions].float())
        translated = model.translator(rows_map.transpose(1, 2).to(model.translator.layers[0].weight.dtype))
        cross_parts.append(torch.matmul(translated.transpose(1, 2).float(), dec))
    return {
        "encoder": torch.cat(enc_parts, dim=1),
        "decoder": dec,
        "encoder_to_decoder": torch.cat(cross_parts, dim=1),
    }


@torch.inference_mode()
def attention_received(
    model,
    input_ids: torch.Tensor,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    recipe: str = "corrected",
) -> torch.Tensor:
    """Encoder attention received by every position, ``Σ_i A_ij`` over real query genes: (B, max_genes).

    Linear in length (no map is built); runs the encoder only.
    """
    from .modeling_sctranslator import prepare_side

    _check_recipe(recipe)
    model.eval()
    config = model.config
    ids, values, mask = prepare_side(
        input_ids, input_values, attention_mask, config.max_genes, config.vocab_size, "genes"
    )
    encoder = model.encoder
    dtype = encoder.value_embedding.weight.dtype
    embedded = encoder.value_embedding(values.to(dtype).unsqueeze(-1)) + encoder.gene_embedding(ids)
    states = encoder(embedded, mask, False, True).hidden_states
    return _received(_stack_features(encoder, states, mask, recipe), mask).float()


def minmax_normalize(matrix: np.ndarray) -> np.ndarray:
    """The original's normalisation: every column min-max to [0, 1], then every row. Constant → 0."""

    def scale(x: np.ndarray, axis: int) -> np.ndarray:
        lo = np.nanmin(x, axis=axis, keepdims=True)
        span = np.nanmax(x, axis=axis, keepdims=True) - lo
        return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)

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
    ``top-K`` criterion).
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

    def mean(self, name: str) -> np.ndarray:
        return self.sums[name] / max(self.n_cells, 1)

    def normalized(self, name: str) -> np.ndarray:
        return minmax_normalize(self.sums[name])

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
        """Genes ranked for one protein by its encoder→decoder column (descending): a pandas Series."""
        import pandas as pd

        if protein not in self.proteins:
            raise ValueError(f"{protein!r} is not among the mapped proteins {self.proteins[:10]}")
        column = self.get("encoder_to_decoder", by)[:, self.proteins.index(protein)]
        series = pd.Series(column, index=pd.Index(self.genes, name="gene"), name=protein)
        return series.sort_values(ascending=False, kind="stable")

    def to_anndata(self):
        """AnnData with genes as obs and proteins as var.

        ``X`` = encoder→decoder sum; ``layers['mean' | 'normalized']``; ``obsm['encoder_<stat>']``
        (genes × genes, columns in obs order); ``varm['decoder_<stat>']`` (proteins × proteins, columns
        in var order); ``obs['attention_received']``; ``uns['sctranslator_attention']`` describes it.
        """
        import anndata
        import pandas as pd

        obs = pd.DataFrame(index=pd.Index(self.genes, dtype=str))
        if self.gene_token_ids:
            obs["token_id"] = np.asarray(self.gene_token_ids, dtype=np.int64)
        if self.received is not None:
            obs["attention_received"] = np.asarray(self.received, dtype=np.float64)
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
            "recipe": self.recipe,
            "n_cells": int(self.n_cells),
            "gene_selection": self.gene_selection,
            "X": "encoder->decoder attention (genes x proteins), summed over cells",
            "obsm": "encoder_<stat>: genes x genes (query x key), columns in obs order",
            "varm": "decoder_<stat>: proteins x proteins (query x key), columns in var order",
            "normalized": "column min-max to [0, 1], then row min-max, of the summed map (original's)",
            "unmapped_proteins": list(self.unmapped_proteins),
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
    """Positions in the encoder window of the ``requested`` genes (by name, else by vocabulary token).

    Raises ValueError listing every gene that is not in the vocabulary or not among the window's genes.
    """
    requested = [str(g).strip() for g in requested if str(g).strip()]
    if not requested:
        raise ValueError("the list of genes is empty")
    by_name = {name: i for i, name in enumerate(window_names)}
    by_token = {int(t): i for i, t in enumerate(np.asarray(window_tokens).tolist())}
    report = tokenizer.resolve(requested, kind="gene")
    positions, not_in_vocab, not_in_data = [], [], []
    for j, gene in enumerate(requested):
        if gene in by_name:
            positions.append(by_name[gene])
            continue
        status = report.status[j]
        token = int(report._dup_tokens[j]) if status in ("mapped", "duplicate") else 0
        if not token:
            not_in_vocab.append(gene)
        elif token in by_token:
            positions.append(by_token[token])
        else:
            not_in_data.append(gene)
    problems = []
    if not_in_vocab:
        problems.append(f"not in the scTranslator vocabulary: {not_in_vocab}")
    if not_in_data:
        problems.append(
            f"not among the data's genes the model sees (mapped genes within the first max_genes): {not_in_data}"
        )
    if problems:
        raise ValueError(f"{len(not_in_vocab) + len(not_in_data)} of {len(requested)} genes cannot be used; "
                         + "; ".join(problems))
    seen: set[int] = set()
    return [p for p in positions if not (p in seen or seen.add(p))]


def _encode_chunk(tokenizer, rna, gene_names, start, stop, protein_ids, config):
    from .inference import cell_rows

    return tokenizer(
        rna=cell_rows(rna, start, stop),
        gene_names=gene_names,
        proteins=protein_ids,
        max_length=config.max_genes,
        protein_max_length=config.max_proteins,
        padding="max_length",
        truncation="first",
        return_tensors="pt",
        return_report=True,
    )


def attention_analysis(
    model,
    tokenizer,
    rna: Any,
    proteins: Any,
    genes: int | str | Sequence[str] | None = None,
    recipe: str = "corrected",
    gene_names: Sequence[str] | None = None,
    batch_size: int = 2,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int], None] = False,
) -> AttentionResult:
    """Encoder, decoder and encoder→decoder attention maps aggregated over the cells of ``rna``.

    Args:
        rna: AnnData, ``.h5ad`` path (read backed, in chunks), MuData or ``(matrix, gene_names)``.
        proteins: protein names (or a protein AnnData: its var_names); at most ``max_proteins``
            mapped ones (one decoder pass: the decoder map couples the proteins of one pass).
        genes: None = every gene the model sees (|S| × L rows per cell: fine for small models);
            ``"top-K"`` / K = the K genes receiving the most encoder attention summed over cells
            (an extra, encoder-only pass over the cells); a list of names = those genes.
        recipe: ``"corrected"`` or ``"original"`` (module docstring).
        batch_size: cells per forward pass; chunk_size: cells read and tokenized at once.
    Returns:
        :class:`AttentionResult`.
    """
    from .inference import count_cells, read_rna, resolve_device, resolve_targets

    _check_recipe(recipe)
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be positive")
    rna, gene_names = read_rna(rna, gene_names)
    targets = resolve_targets(tokenizer, proteins)
    config = model.config
    n_proteins = len(targets.token_ids)
    if n_proteins > config.max_proteins:
        raise ValueError(
            f"{n_proteins} proteins exceed the decoder length {config.max_proteins}: attention maps couple "
            "the proteins of one decoder pass; ask for at most max_proteins proteins per run"
        )
    device = resolve_device(device) if device is not None else model.device
    model = model.to(device).eval()
    n_cells = count_cells(rna)
    if n_cells == 0:
        raise ValueError("the RNA data has no cells")

    encoded, report = _encode_chunk(tokenizer, rna, gene_names, 0, min(chunk_size, n_cells), targets.token_ids, config)
    keep_n = int(encoded["attention_mask"][0].sum())
    columns = report.rna.columns[:keep_n]
    window_names = [report.rna.names[c] for c in columns]
    window_tokens = report.rna.token_ids[columns]

    def chunks():
        for start in range(0, n_cells, chunk_size):
            stop = min(start + chunk_size, n_cells)
            if start == 0:
                yield start, stop, encoded
            else:
                yield start, stop, _encode_chunk(tokenizer, rna, gene_names, start, stop, targets.token_ids, config)[0]

    def batches(enc):
        for first in range(0, enc["input_ids"].shape[0], batch_size):
            sl = slice(first, first + batch_size)
            yield {key: value[sl].to(device) for key, value in enc.items() if key != "labels"}

    top = _parse_top(genes)
    received = None
    if top is not None or genes is None:
        if top is not None and top < 1:
            raise ValueError("top-K needs K >= 1")
        if top is not None:
            received = np.zeros(config.max_genes)
            bar = _progress(progress, "ranking genes", n_cells)
            for start, stop, enc in chunks():
                for b in batches(enc):
                    received += attention_received(
                        model, b["input_ids"], b["input_values"], b["attention_mask"], recipe
                    ).sum(0).double().cpu().numpy()
                bar(stop - start)
            order = np.argsort(-received[:keep_n], kind="stable")[: min(top, keep_n)]
            positions = sorted(order.tolist(), key=lambda p: -received[p])
            selection = f"top-{top} by encoder attention received (summed over cells)"
        else:
            positions = list(range(keep_n))
            selection = "all genes the model sees"
    else:
        if isinstance(genes, str):
            genes = [g for g in genes.split(",")]
        positions = locate_genes(tokenizer, list(genes), window_names, window_tokens)
        selection = "listed genes"

    sums = {
        "encoder": np.zeros((len(positions), len(positions))),
        "decoder": np.zeros((n_proteins, n_proteins)),
        "encoder_to_decoder": np.zeros((len(positions), n_proteins)),
    }
    received_pass = np.zeros(len(positions))
    bar = _progress(progress, "attention maps", n_cells)
    pos_tensor = torch.as_tensor(positions, dtype=torch.long)
    for start, stop, enc in chunks():
        for b in batches(enc):
            maps = attention_maps(model, **b, gene_positions=pos_tensor.to(device), recipe=recipe)
            sums["encoder"] += maps["encoder"].sum(0).double().cpu().numpy()
            sums["decoder"] += maps["decoder"][:, :n_proteins, :n_proteins].sum(0).double().cpu().numpy()
            sums["encoder_to_decoder"] += maps["encoder_to_decoder"][:, :, :n_proteins].sum(0).double().cpu().numpy()
        bar(stop - start)
    if received is not None:
        received_pass = received[positions]
    return AttentionResult(
        genes=[window_names[p] for p in positions],
        proteins=list(targets.names),
        n_cells=n_cells,
        recipe=recipe,
        sums=sums,
        gene_token_ids=[int(window_tokens[p]) for p in positions],
        protein_token_ids=list(targets.token_ids),
        received=received_pass if received is not None else None,
        gene_selection=selection,
        unmapped_proteins=list(targets.unmapped),
    )


def _progress(progress, desc: str, total: int) -> Callable[[int], None]:
    """Update function for a progress bar of ``total`` cells (tqdm when True, a callable as is)."""
    from .inference import progress_bar

    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="cell", desc=desc)

        def update(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return update
    return progress_bar(progress, total)


# the public API in one place (the knockout and file writers live in sibling modules)
from .interpretation_knockout import KnockoutResult, knockout_analysis, knockout_encoding  # noqa: E402
from .interpretation_outputs import add_interpretation_commands, write_attention, write_knockout  # noqa: E402

__all__ += [
    "KnockoutResult",
    "add_interpretation_commands",
    "knockout_analysis",
    "knockout_encoding",
    "write_attention",
    "write_knockout",
]
