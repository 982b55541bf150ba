"""Attention maps of one batch of cells, and their sums over cells indexed by gene.

The pieces behind :func:`.attention.attention_maps` and :func:`.attention.attention_analysis`,
for both translators:

* :class:`LayerAttention` holds one layer's queries and keys and gives any rows of its map, with
  the layer's own masking (``config.attention_masking``): ``"original"`` FAVOR+ normalises over every
  key, padding included (the original's quirk); ``"masked"`` FAVOR+ and ``"exact"`` softmax over
  the cell's real keys only, so padded keys get exactly 0 and rows sum to 1 over the cell's genes.
  FAVOR+ maps are the FAVOR+ approximation the layer applied, ``q'_i·k'_j / Σ_n q'_i·k'_n``, not the
  exact softmax it approximates.
* gene → protein: the MLP translator's ``translator(encoder rows) @ decoder`` (the original's
  recipe), or for the cross-attention variant the translator's own cross-attention weights
  (protein query → gene key, exact softmax over the cell's real genes), averaged over heads.
* :class:`GeneMapSums` adds per-cell maps into gene × gene / gene × protein sums by *gene*, through
  the token ids: a gene sits at a different position in every cell of the variant (and is absent
  from cells that do not express it), at the same position in every cell of the compatible model.
  It counts, per gene and per gene pair, the cells where the gene(s) were in the encoding, so means
  are over those cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from modeling_sctranslator.favor_attention import masked_softmax_kernel_features, softmax_kernel_features, split_heads

RECIPES = ("corrected", "original", "cross_attention")  # see the module docstring of .attention
VARIANT_RECIPE = "cross_attention"
ROW_BLOCK_ELEMENTS = 1 << 24  # batch × rows × length elements per block of map rows (64 MiB float32)


# --------------------------------------------------------------------------- one layer
@dataclass
class LayerAttention:
    """One attention layer's queries and keys, (batch, heads, length, width) each.

    ``softmax=False``: FAVOR+ random features ``q'``, ``k'``; ``softmax=True``: the projections ``q``,
    ``k`` of exact attention. ``key_mask`` (batch, length), True = a key the layer normalises over;
    None = every key, padding included (the original's masking).
    """

    queries: torch.Tensor
    keys: torch.Tensor
    key_mask: torch.Tensor | None
    softmax: bool

    def rows(self, rows: torch.Tensor | None) -> torch.Tensor:
        """Weights of query ``rows`` over every key: (batch, heads, rows, length).

        ``rows``: None = every position; 1-D = the same positions in every cell; (batch, R) = per cell.
        With a key mask, padded keys get 0 and a cell without real keys gets a row of zeros.
        """
        q = take_rows(self.queries, rows)
        scores = torch.matmul(q, self.keys.transpose(-1, -2))
        if self.softmax:
            return masked_softmax(scores * q.shape[-1] ** -0.5, self.key_mask)
        if self.key_mask is not None:
            scores = scores * self.key_mask[:, None, None, :].to(scores.dtype)
        norm = torch.matmul(q, self.key_sum().unsqueeze(-1))  # (B, H, R, 1) = Σ_n q'_i·k'_n over real keys
        return scores / torch.where(norm > 0, norm, torch.ones_like(norm))

    def key_sum(self) -> torch.Tensor:
        """``Σ_n k'_n`` over the keys the layer normalises over: (batch, heads, features)."""
        if self.key_mask is None:
            return self.keys.sum(dim=-2)
        return (self.keys * self.key_mask[:, None, :, None].to(self.keys.dtype)).sum(dim=-2)

    def received(self, query_mask: torch.Tensor, row_block: int | None = None) -> torch.Tensor:
        """Column sums ``Σ_i A_ij`` over the real query rows, head-averaged: (batch, length).

        Linear in length for FAVOR+; exact attention builds the map in blocks of ``row_block`` rows.
        """
        if self.softmax:
            batch, heads, length, _ = self.queries.shape
            block = row_block or max(1, ROW_BLOCK_ELEMENTS // max(1, batch * heads * length))
            out = None
            for start in range(0, length, block):
                rows = torch.arange(start, min(start + block, length), device=self.queries.device)
                weights = self.rows(rows) * query_mask[:, None, rows, None].to(self.queries.dtype)
                part = weights.sum(dim=2)
                out = part if out is None else out + part
            return out.mean(dim=1)
        norm = torch.matmul(self.queries, self.key_sum().unsqueeze(-1))  # (B, H, L, 1)
        weights = self.queries / torch.where(norm > 0, norm, torch.ones_like(norm))
        weights = weights * query_mask[:, None, :, None].to(weights.dtype)
        columns = torch.matmul(self.keys, weights.sum(dim=-2).unsqueeze(-1)).squeeze(-1)  # (B, H, L)
        if self.key_mask is not None:
            columns = columns * self.key_mask[:, None, :].to(columns.dtype)
        return columns.mean(dim=1)


def take_rows(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Rows of (batch, heads, length, width): all (None), shared (1-D) or per cell ((batch, R))."""
    if rows is None:
        return x
    if rows.dim() == 1:
        return x.index_select(2, rows)
    batch, heads, _, width = x.shape
    index = rows[:, None, :, None].expand(batch, heads, rows.shape[1], width)
    return x.gather(2, index)


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis (keys) of (batch, heads, rows, keys) restricted to real keys.

    A cell with no real key gets zeros (as :func:`.favor_attention.exact_attention`).
    """
    if key_mask is None:
        return scores.softmax(dim=-1)
    empty = ~key_mask.any(dim=-1)
    allowed = (key_mask | empty[:, None])[:, None, None, :]
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    return weights.masked_fill(empty[:, None, None, None], 0.0)


def layer_attention(block, hidden: torch.Tensor, mask: torch.Tensor, original_recipe: bool) -> LayerAttention:
    """Queries and keys of one Performer block, with the block's masking.

    ``hidden`` is the block's input (the residual stream before the block). ``original_recipe``: take
    them from ``LN(x + attn(LN(x)))`` as the original ``attention_matrix.py`` did, instead of ``LN(x)``.
    """
    attention = block.attention
    normed = block.attention_norm(hidden)
    if original_recipe:
        attended, _ = attention(normed, mask, False)
        normed = block.attention_norm(hidden + attended)
    q = split_heads(attention.to_q(normed), attention.num_heads)
    k = split_heads(attention.to_k(normed), attention.num_heads)
    masking = getattr(attention, "masking", "original")
    if masking == "exact":
        return LayerAttention(q, k, mask, softmax=True)
    matrix, eps = attention.projection_matrix, attention.kernel_epsilon
    if masking == "masked":
        return LayerAttention(
            masked_softmax_kernel_features(q, matrix, True, eps, mask),
            masked_softmax_kernel_features(k, matrix, False, eps, mask),
            mask, softmax=False,
        )
    return LayerAttention(
        softmax_kernel_features(q, matrix, True, eps), softmax_kernel_features(k, matrix, False, eps), None, False
    )


def stack_attention(stack, hidden_states: Sequence[torch.Tensor], mask: torch.Tensor, recipe: str):
    """:func:`layer_attention` of every block of an encoder or decoder stack."""
    original = recipe == "original"
    return [layer_attention(block, hidden_states[i], mask, original) for i, block in enumerate(stack.layers)]


def map_rows(layers: Sequence[LayerAttention], rows: torch.Tensor | None) -> torch.Tensor:
    """Rows of the head- and layer-averaged map: (batch, rows, length); ``rows`` as :meth:`LayerAttention.rows`."""
    out = None
    for layer in layers:
        part = layer.rows(rows).mean(dim=1)
        out = part if out is None else out + part
    return out / len(layers)


def received(layers: Sequence[LayerAttention], query_mask: torch.Tensor) -> torch.Tensor:
    """Attention each position receives from the real queries, head- and layer-averaged: (batch, length)."""
    return sum(layer.received(query_mask) for layer in layers) / len(layers)


# --------------------------------------------------------------------------- one batch
@dataclass
class BatchStates:
    """One forward pass with hidden states; ids and masks as the model saw them (padded if it pads)."""

    output: object
    input_ids: torch.Tensor
    mask: torch.Tensor
    protein_ids: torch.Tensor
    protein_mask: torch.Tensor


def forward_states(model, input_ids, input_values, attention_mask, protein_ids, protein_attention_mask) -> BatchStates:
    """Run the model with hidden states; the compatible model's inputs padded to its fixed lengths first."""
    from modeling_sctranslator.modeling_sctranslator import prepare_side

    config = model.config
    fixed = config.pads_to_fixed_length
    if protein_ids is None:
        raise ValueError("protein_ids is required: the token ids of the proteins the maps are for")
    ids, values, mask = prepare_side(
        input_ids, input_values, attention_mask, config.max_genes if fixed else None, config.vocab_size, "genes"
    )
    pids, _, pmask = prepare_side(
        protein_ids, None, protein_attention_mask, config.max_proteins if fixed else None, config.vocab_size,
        "proteins",
    )
    output = model(
        input_ids=ids, input_values=values, attention_mask=mask, protein_ids=pids,
        protein_attention_mask=pmask, output_hidden_states=True,
    )
    return BatchStates(output, ids, mask, pids, pmask)


def cross_attention_weights(model, states: BatchStates) -> torch.Tensor:
    """The variant's translator weights, protein query → gene key, head-averaged: (batch, proteins, genes).

    Exact softmax over the cell's real genes (padded genes get 0; each protein's row sums to 1).
    """
    embeddings = model.decoder.gene_embedding(states.protein_ids)
    _, weights = model.translator(
        embeddings, states.output.encoder_last_hidden_state, states.mask, output_attentions=True
    )
    return weights.float().mean(dim=1)


def gene_to_protein(model, rows_map: torch.Tensor, rows: torch.Tensor, decoder_map: torch.Tensor,
                    cross: torch.Tensor | None) -> torch.Tensor:
    """The gene → protein map of the encoder rows ``rows`` (batch, R): (batch, R, proteins).

    MLP translator: ``translator(rows_map) @ decoder_map`` (the original's encoder→decoder map, from the
    rows' full encoder map ``rows_map`` (batch, R, max_genes)); cross-attention: ``cross`` at the rows.
    """
    if cross is not None:
        return cross.gather(2, rows[:, None, :].expand(-1, cross.shape[1], -1)).transpose(1, 2)
    weight = model.translator.layers[0].weight
    translated = model.translator(rows_map.transpose(1, 2).to(weight.dtype))  # (B, max_proteins, R)
    return torch.matmul(translated.transpose(1, 2).float(), decoder_map)


def row_block_size(batch: int, width: int, row_block: int | None = None) -> int:
    return row_block or max(1, ROW_BLOCK_ELEMENTS // max(1, batch * width))


# --------------------------------------------------------------------------- sums over cells, by gene
class GeneIndex:
    """Token id → index among ``genes`` (their token ids); -1 for other genes and padding."""

    def __init__(self, gene_tokens: Sequence[int], vocab_size: int, device: torch.device) -> None:
        tokens = torch.as_tensor(np.asarray(gene_tokens, dtype=np.int64), device=device)
        self.size = int(tokens.numel())
        self.lookup = torch.full((vocab_size,), -1, dtype=torch.long, device=device)
        self.lookup[tokens] = torch.arange(self.size, device=device)

    def of(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, length) → (batch, length) gene index, -1 where not a listed gene or padding."""
        return torch.where(mask, self.lookup[ids], torch.full_like(ids, -1))

    def presence(self, index: torch.Tensor) -> torch.Tensor:
        """(batch, length) gene index → (batch, genes) bool: the gene is in the cell's encoding."""
        out = torch.zeros(index.shape[0], self.size + 1, dtype=torch.bool, device=index.device)
        out.scatter_(1, torch.where(index >= 0, index, self.size), True)
        return out[:, : self.size]

    def positions(self, index: torch.Tensor) -> torch.Tensor:
        """(batch, length) gene index → (batch, genes): each gene's position in the cell, 0 when absent."""
        batch, length = index.shape
        out = torch.zeros(batch, self.size + 1, dtype=torch.long, device=index.device)
        where = torch.arange(length, device=index.device).expand(batch, length)
        out.scatter_(1, torch.where(index >= 0, index, self.size), where)
        return out[:, : self.size]


def present_rows(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of listed genes per cell, left-aligned: (batch, R) positions and (batch, R) validity."""
    present = index >= 0
    order = torch.argsort((~present).to(torch.int8), dim=1, stable=True)
    width = max(int(present.sum(dim=1).max()), 1) if present.numel() else 1
    rows = order[:, :width]
    return rows, present.gather(1, rows)


class PairCounts:
    """Cells in which both genes of each pair were in the encoding: (genes, genes), built lazily.

    While every gene is in every cell (the compatible model), no matrix is kept: the count is the
    number of cells.
    """

    def __init__(self, size: int, device: torch.device) -> None:
        self.size, self.device = size, device
        self.n_cells = 0
        self.matrix: torch.Tensor | None = None

    def add(self, presence: torch.Tensor) -> None:
        """``presence`` (batch, genes) bool."""
        if self.matrix is None and bool(presence.all()):
            self.n_cells += presence.shape[0]
            return
        if self.matrix is None:
            self.matrix = torch.full((self.size, self.size), float(self.n_cells), dtype=torch.float64,
                                     device=self.device)
        p = presence.to(torch.float64)
        self.matrix += p.T @ p

    def numpy(self) -> np.ndarray | None:
        return None if self.matrix is None else self.matrix.cpu().numpy()


class GeneMapSums:
    """Encoder (genes × genes), decoder (proteins × proteins) and gene → protein maps summed over cells.

    Rows and columns follow ``gene_tokens`` (the listed genes, by token id) and the first ``n_proteins``
    protein positions. A cell adds to the entries of the genes in its encoding only; ``gene_counts``
    and :class:`PairCounts` say over how many cells each entry was summed.
    """

    def __init__(self, gene_tokens: Sequence[int], n_proteins: int, vocab_size: int, device: torch.device) -> None:
        self.index = GeneIndex(gene_tokens, vocab_size, device)
        n_genes = self.index.size
        self.n_proteins = n_proteins
        self.n_cells = 0
        # one extra row collects the rows of padding (never read)
        self.encoder = torch.zeros(n_genes + 1, n_genes, dtype=torch.float64, device=device)
        self.cross = torch.zeros(n_genes + 1, n_proteins, dtype=torch.float64, device=device)
        self.decoder = torch.zeros(n_proteins, n_proteins, dtype=torch.float64, device=device)
        self.gene_counts = torch.zeros(n_genes, dtype=torch.float64, device=device)
        self.pairs = PairCounts(n_genes, device)

    @torch.inference_mode()
    def add(self, model, batch: dict[str, torch.Tensor], recipe: str, row_block: int | None = None) -> None:
        """Add the maps of one batch of tokenized cells (the model's inputs)."""
        states = forward_states(model, **batch)
        output, n_p = states.output, self.n_proteins
        encoder = stack_attention(model.encoder, output.encoder_hidden_states, states.mask, recipe)
        decoder_map = map_rows(stack_attention(model.decoder, output.decoder_hidden_states, states.protein_mask,
                                               recipe), None).float()
        self.decoder += decoder_map[:, :n_p, :n_p].sum(dim=0).double()
        cross = None if model.config.pads_to_fixed_length else cross_attention_weights(model, states)

        index = self.index.of(states.input_ids, states.mask)
        presence = self.index.presence(index)
        self.gene_counts += presence.sum(dim=0).double()
        self.pairs.add(presence)
        self.n_cells += index.shape[0]
        columns = self.index.positions(index)[:, None, :]  # (B, 1, genes)
        column_present = presence[:, None, :].float()
        rows, valid = present_rows(index)
        batch, length = index.shape
        block = row_block_size(batch, max(length, self.index.size), row_block)
        for start in range(0, rows.shape[1], block):
            r, ok = rows[:, start : start + block], valid[:, start : start + block]
            rows_map = map_rows(encoder, r).float()  # (B, r, L)
            genes_map = rows_map.gather(2, columns.expand(-1, r.shape[1], -1)) * column_present  # (B, r, genes)
            proteins = gene_to_protein(model, rows_map, r, decoder_map, cross)[:, :, :n_p]
            target = torch.where(ok, index.gather(1, r), self.index.size).reshape(-1)
            self.encoder.index_add_(0, target, genes_map.reshape(-1, genes_map.shape[-1]).double())
            self.cross.index_add_(0, target, proteins.reshape(-1, n_p).double())

    def numpy(self) -> dict[str, np.ndarray]:
        """The sums: ``encoder``, ``decoder``, ``encoder_to_decoder`` as float64 arrays."""
        n_genes = self.index.size
        return {
            "encoder": self.encoder[:n_genes].cpu().numpy(),
            "decoder": self.decoder.cpu().numpy(),
            "encoder_to_decoder": self.cross[:n_genes].cpu().numpy(),
        }


def encoder_received(
    model, input_ids: torch.Tensor, input_values: torch.Tensor, attention_mask: torch.Tensor | None, recipe: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoder attention received by every position, ``Σ_i A_ij`` over real query genes, running the encoder only.

    Returns the ids and mask as the model saw them (padded to ``max_genes`` if it pads) and the attention
    received, all (batch, length). Linear in length for FAVOR+ (no map is built).
    """
    from modeling_sctranslator.modeling_sctranslator import prepare_side

    config = model.config
    ids, values, mask = prepare_side(
        input_ids, input_values, attention_mask, config.max_genes if config.pads_to_fixed_length else None,
        config.vocab_size, "genes",
    )
    encoder = model.encoder
    states = encoder(encoder.embed(ids, values), mask, False, True).hidden_states
    return ids, mask, received(stack_attention(encoder, states, mask, recipe), mask)


@torch.inference_mode()
def received_by_gene(model, batch: dict[str, torch.Tensor], index: GeneIndex, recipe: str) -> tuple[torch.Tensor,
                                                                                                       torch.Tensor]:
    """Encoder attention each listed gene received in a batch, summed over its cells, and the cells it was in.

    Runs the encoder only. Returns two (genes,) float64 tensors: attention received, cells present.
    """
    ids, mask, per_position = encoder_received(
        model, batch["input_ids"], batch["input_values"], batch.get("attention_mask"), recipe
    )
    per_position = per_position.double()  # (B, L)
    genes = index.of(ids, mask)
    target = torch.where(genes >= 0, genes, index.size).reshape(-1)
    totals = torch.zeros(index.size + 1, dtype=torch.float64, device=ids.device)
    totals.index_add_(0, target, per_position.reshape(-1))
    return totals[: index.size], index.presence(genes).sum(dim=0).double()
