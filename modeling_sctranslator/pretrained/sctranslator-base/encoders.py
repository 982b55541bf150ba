"""The three encoders: every mapped gene (:func:`encode_all_genes`, the original encoding), each cell's
expressed genes (:func:`encode_expressed`, the variant's), and the proteins (:func:`encode_proteins`).

They take resolved columns and token ids from the tokenizer, read the matrix in row chunks
(:mod:`.matrix`), check the values (:mod:`.checks`), scale them (:mod:`.scaling`) and keep at most
``max_length`` genes (:mod:`.truncation`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .checks import check_rna, first_bad_dense_row
from .matrix import is_anndata, rows_per_chunk, take_columns
from .scaling import scale_between, scale_rows, warn_constant_cells
from .truncation import kept_genes, zero_gene_order

__all__ = ["encode_all_genes", "encode_expressed", "encode_proteins", "protein_passes"]


def encode_all_genes(matrix, columns, tokens, width, max_length, truncation, seed, chunk_size):
    """The original encoding: every mapped gene of every cell (zeros included), ``width`` positions per cell.

    Values are the per-cell scaled values over all mapped genes (:mod:`.scaling`); past ``max_length``
    genes the truncation rule (:func:`.truncation.kept_genes`) chooses. Returns (ids int64, values float32,
    mask bool, number of constant cells).
    """
    import scipy.sparse as sp

    n_cells, n_vars = matrix.shape
    n_kept = columns.size
    keep_n = min(n_kept, max_length)
    # np.empty + full writes in the workers: the pages are touched once, in parallel
    ids_out = np.empty((n_cells, width), dtype=np.int64)
    values_out = np.empty((n_cells, width), dtype=np.float32)
    mask_out = np.empty((n_cells, width), dtype=bool)
    identity = n_kept == n_vars and bool((columns == np.arange(n_vars)).all())
    rank_of_col = None
    if not identity:  # a column of -1 (a layout gene the input lacks) has no entries: implicit zeros
        present = columns >= 0
        rank_of_col = np.full(n_vars, -1, dtype=np.int64)
        rank_of_col[columns[present]] = np.flatnonzero(present)
    random_mode = truncation == "random" and n_kept > max_length
    rng = np.random.default_rng(seed) if random_mode else None
    step = rows_per_chunk(n_kept, chunk_size)
    workers = 1 if (random_mode or matrix.backed) else min(2, os.cpu_count() or 1)
    if workers > 1 and chunk_size is None:
        step = max(1, min(step, -(-n_cells // workers)))
    obs_names = matrix.obs_names

    def work(start: int, stop: int, perms: np.ndarray | None) -> int:
        block = matrix.rows(start, stop)
        ids, mask = ids_out[start:stop], mask_out[start:stop]
        ids[:, keep_n:] = 0
        mask[:, :keep_n] = True
        mask[:, keep_n:] = False
        ids[:, :keep_n] = tokens[:keep_n] if perms is None else tokens[perms]
        out = values_out[start:stop]
        out[:, keep_n:] = 0
        if sp.issparse(block):
            const = _scale_sparse_block(block, rank_of_col, n_kept, keep_n, perms, out, start, obs_names)
        else:
            dense = block if identity else take_columns(block, columns)
            check_rna(dense, start, obs_names, first_bad_dense_row)
            scaled, const = scale_rows(dense)
            out[:, :keep_n] = (
                scaled[:, :keep_n] if perms is None else np.take_along_axis(scaled, perms, axis=1)
            )
        return int(const.sum())

    bounds = [(a, min(a + step, n_cells)) for a in range(0, n_cells, step)]
    if workers > 1 and len(bounds) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            n_const = sum(pool.map(lambda ab: work(ab[0], ab[1], None), bounds))
    else:
        n_const = 0
        for a, b in bounds:
            perms = None
            if random_mode:
                perms = np.stack([kept_genes(n_kept, max_length, truncation, rng) for _ in range(b - a)])
            n_const += work(a, b, perms)
    return ids_out, values_out, mask_out, n_const



def encode_expressed(matrix, columns, tokens, max_length, padding, truncation, seed, zero_genes, chunk_size):
    """The variant's encoding: per cell its non-zero genes (+ ``zero_genes`` zero genes), left-aligned.

    Scaled exactly as :func:`encode_all_genes` (max-min over all mapped genes, implicit zeros
    included); width = the longest cell (at least 1) or ``max_length`` with ``padding="max_length"``.
    """
    import scipy.sparse as sp

    n_cells = matrix.shape[0]
    n_kept = int(columns.size)
    tokens = np.asarray(tokens, dtype=np.int64)
    rng = np.random.default_rng(seed) if truncation == "random" else None
    zero_order = None
    if zero_genes and rng is None:  # a fixed ranking of genes by a hash of their token id
        zero_order = zero_gene_order(tokens, seed)
    step = rows_per_chunk(n_kept, chunk_size)
    obs_names = matrix.obs_names
    cells: list[tuple[np.ndarray, np.ndarray]] = []
    n_const = 0
    for start in range(0, n_cells, step):
        block = matrix.rows(start, min(start + step, n_cells))
        if sp.issparse(block):
            sub = take_columns(block, columns).tocsr()
            check_rna(sub.data, start, obs_names, lambda bad, m=sub: int(np.searchsorted(
                m.indptr, np.argmax(bad), side="right") - 1))
        else:
            dense = take_columns(np.asarray(block), columns)
            check_rna(dense, start, obs_names, first_bad_dense_row)
            sub = sp.csr_matrix(dense)
        for r in range(sub.shape[0]):
            lo_, hi_ = sub.indptr[r], sub.indptr[r + 1]
            ranks = sub.indices[lo_:hi_].astype(np.int64)
            raw = sub.data[lo_:hi_].astype(np.float64)
            implicit = ranks.size < n_kept
            lo = min(raw.min(), 0.0) if implicit and raw.size else (raw.min() if raw.size else 0.0)
            hi = max(raw.max(), 0.0) if implicit and raw.size else (raw.max() if raw.size else 0.0)
            n_const += int(hi == lo)
            expressed = raw != 0
            ranks, raw = ranks[expressed], raw[expressed]
            scaled, zero_value = scale_between(raw, lo, hi), float(scale_between(0.0, lo, hi))
            order = np.argsort(ranks, kind="stable")
            ranks, scaled = ranks[order], scaled[order]
            if ranks.size > max_length:
                keep = kept_genes(ranks.size, max_length, truncation, rng, values=scaled, tokens=tokens[ranks])
                ranks, scaled = ranks[keep], scaled[keep]
            n_zero = min(zero_genes, max_length - ranks.size, n_kept - ranks.size)
            if n_zero > 0:
                is_expressed = np.zeros(n_kept, dtype=bool)
                is_expressed[ranks] = True
                if rng is None:
                    zeros = zero_order[~is_expressed[zero_order]][:n_zero]
                else:
                    zeros = rng.choice(np.flatnonzero(~is_expressed), n_zero, replace=False)
                ranks = np.concatenate([ranks, zeros])
                scaled = np.concatenate([scaled, np.full(n_zero, zero_value)])
            cells.append((tokens[ranks], scaled.astype(np.float32)))
    longest = max((c[0].size for c in cells), default=0)
    width = max_length if padding == "max_length" else max(1, longest)
    ids_out = np.zeros((n_cells, width), dtype=np.int64)
    values_out = np.zeros((n_cells, width), dtype=np.float32)
    mask_out = np.zeros((n_cells, width), dtype=bool)
    for i, (cell_ids, cell_values) in enumerate(cells):
        ids_out[i, : cell_ids.size] = cell_ids
        values_out[i, : cell_ids.size] = cell_values
        mask_out[i, : cell_ids.size] = True
    return ids_out, values_out, mask_out, n_const



def encode_proteins(report, values, n_cells, max_len, padding, truncate):
    """Protein ids, mask and, with ``values`` (cells x proteins as given), ``labels`` scaled per cell and
    ``protein_scale_labels`` (the bounds they were scaled between). More mapped proteins than ``max_len``
    (one decoder pass) is an error unless ``truncate`` (keeps the first ones, scaled over all of them, as
    the original). Returns (outputs, number of constant cells).
    """
    columns = report.columns
    n_kept = int(columns.size)
    if n_kept == 0:
        raise ValueError(
            f"none of the {report.n_total} proteins maps to a token (unmapped: {report.unmapped[:5]}, "
            "controls: "
            f"{report.controls[:5]}); use overrides={{name: 'SYMBOL'}} or tokenizer.add_genes([...])"
        )
    if n_kept > max_len and not truncate:
        raise ValueError(
            f"{n_kept} mapped proteins exceed protein_max_length={max_len} (one decoder pass). Split "
            "them with "
            f"tokenizer.split_proteins(proteins) / protein_passes(proteins, {max_len}) and encode "
            "each pass, or "
            "pass protein_truncation=True to keep only the first ones as the original did."
        )
    keep_n = min(n_kept, max_len)
    width = max_len if padding == "max_length" else keep_n
    ids = np.zeros((n_cells, width), dtype=np.int64)
    ids[:, :keep_n] = report.kept_token_ids[:keep_n]
    mask = np.zeros((n_cells, width), dtype=bool)
    mask[:, :keep_n] = True
    out: dict[str, Any] = {"protein_ids": ids, "protein_attention_mask": mask}
    n_const = 0
    if values is not None:
        sub = np.asarray(values[:, columns], dtype=np.float64)
        if np.isinf(sub).any():
            raise ValueError("protein values contain inf; replace them (NaN marks a missing value)")
        scaled, const = scale_rows(sub)
        all_nan = np.isnan(sub).all(axis=1)
        bounds = np.full((n_cells, 2), np.nan, dtype=np.float32)
        if (~all_nan).any():
            bounds[~all_nan] = np.stack([np.nanmin(sub[~all_nan], axis=1), np.nanmax(sub[~all_nan], axis=1)], 1)
        out["protein_scale_labels"] = bounds
        const &= ~all_nan
        n_const = int(const.sum())
        warn_constant_cells(n_const, n_cells, "protein", stacklevel=4)
        labels = np.zeros((n_cells, width), dtype=np.float32)
        labels[:, :keep_n] = scaled[:, :keep_n]
        out["labels"] = labels
    return out, n_const



def protein_passes(proteins: Any, max_len: int = 1000) -> Iterator[Any]:
    """Split proteins into decoder-sized passes of at most ``max_len`` each, in order.

    ``proteins`` may be a list of names/ids (yields lists) or a protein AnnData (yields column
    slices, so each slice keeps its values). The decoder sees ``max_len`` proteins per forward pass;
    run one tokenizer call (and one model pass) per chunk and concatenate the predictions. Split
    *mapped* proteins (see ``SCTranslatorTokenizer.split_proteins``) to fill every pass.
    """
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    n = proteins.shape[1] if is_anndata(proteins) else len(proteins)
    for start in range(0, n, max_len):
        if is_anndata(proteins):
            yield proteins[:, start : start + max_len]
        else:
            yield list(proteins[start : start + max_len])



def _scale_sparse_block(block, rank_of_col, n_kept, keep_n, perms, out, start, obs_names) -> np.ndarray:
    """Scale one CSR row block over the mapped columns, writing ``out`` (b x width float32); O(nnz) + fill."""
    b = block.shape[0]
    indptr = block.indptr
    rows = np.repeat(np.arange(b), np.diff(indptr))
    data = block.data
    if rank_of_col is None:  # every column kept, in order
        ranks = block.indices
    else:
        ranks = rank_of_col[block.indices]
        keep = ranks >= 0
        if not keep.all():
            rows, ranks, data = rows[keep], ranks[keep], data[keep]
    check_rna(data, start, obs_names, lambda bad: int(rows[np.argmax(bad)]))
    nnz = np.bincount(rows, minlength=b)
    vals = data.astype(np.float64)
    hi = np.full(b, -np.inf)
    lo = np.full(b, np.inf)
    nonempty = nnz > 0
    if vals.size:
        starts = np.concatenate(([0], np.cumsum(nnz)[:-1]))[nonempty]
        hi[nonempty] = np.maximum.reduceat(vals, starts)
        lo[nonempty] = np.minimum.reduceat(vals, starts)
    implicit = nnz < n_kept  # the row has zeros that are not stored
    hi = np.where(implicit, np.maximum(hi, 0.0), hi)
    lo = np.where(implicit, np.minimum(lo, 0.0), lo)
    constant = hi - lo == 0
    out[:, :keep_n] = scale_between(0.0, lo, hi).astype(np.float32)[:, None]  # each row's scaled zero
    scaled = scale_between(vals, lo[rows], hi[rows])
    width = out.shape[1]
    if perms is None:
        flat = rows.astype(np.int64) * width + ranks
        if keep_n < n_kept:
            sel = ranks < keep_n
            flat, scaled = flat[sel], scaled[sel]
        out.reshape(-1)[flat] = scaled
    else:
        position = np.full((b, n_kept), -1, dtype=np.int64)
        np.put_along_axis(position, perms, np.arange(perms.shape[1])[None, :].repeat(b, 0), axis=1)
        pos = position[rows, ranks]
        sel = pos >= 0
        out[rows[sel], pos[sel]] = scaled[sel]
    return constant
