"""Matrix access: row chunks of a dense array, a scipy sparse matrix or (backed) AnnData ``X``, the RNA
transform the tokenizer applies before scaling, and the column choices (mapped genes, a model's gene layout).
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import MixedFeaturesWarning, check_block, check_choice, modality_columns
from .gene_ids import MappingReport
from .value_kinds import is_whole, value_kind

__all__ = ["CHUNK_ELEMENTS", "PANEL_MAX_COLUMNS", "RNA_TRANSFORMS", "Matrix", "ValueReading", "align_to_layout",
           "cell_covariates", "check_numeric_columns", "is_anndata", "rna_like_protein_message",
           "rna_like_protein_side", "rows_per_chunk", "take_columns"]

CHUNK_ELEMENTS = 1 << 24  # values per dense chunk (128 MiB in float64)
# What the tokenizer does to RNA values before per-cell scaling. "none": the values as given (the
# original, and every model trained on them); "log1p_cp10k": raw counts -> log1p(counts per 10,000,
# library size over every column of the input), so a model trained on log-normalised values takes the
# raw counts users have. Such a model also takes what its training corpora held besides counts (see
# value_kinds): log values (bulk log2(x+1), log1p(CP10k)) are read as they are, linear normalised values
# (CP10k, TPM) get log1p; the report says which (EncodingReport.rna_values). Where every cell sums to one
# total (normalised over all its genes: CPM, TPM, scanpy's median target, their log1p), that total is
# known, and the values are brought to log1p(CP10k) exactly (see Matrix.choose_reading).
RNA_TRANSFORMS = ("none", "log1p_cp10k")
_APPLIED_TRANSFORMS = {
    ("log1p_cp10k", "counts"): ("log1p_cp10k", "raw counts -> log1p(CP10k)"),
    ("log1p_cp10k", "log"): ("none", "log values, read as they are"),
    ("log1p_cp10k", "linear"): ("log1p", "linear normalised values -> log1p"),
}



@dataclass(frozen=True)
class ValueReading:
    """How an input's RNA values are read before per-cell scaling: their kind (value_kinds), the transform applied
    ("none", "log1p", "log1p_cp10k", or "relog_cp10k": normalised log values brought back to log1p(CP10k)), what
    was done in words, the base the values were logged in (relog_cp10k), whether they look like counts corrected
    for ambient RNA, whether they are log values too large for log1p(CP10k) whose normalisation could not be
    told (the checks warn about both), and the total every cell was normalised to where one was found (so each
    cell's count total can be recovered for the library-size covariate: :func:`count_totals`). Chosen once per
    input (:meth:`Matrix.choose_reading`)."""

    kind: str
    applied: str
    done: str
    log_base: float = math.e
    ambient_corrected: bool = False
    beyond_cp10k: bool = False
    cell_total: float | None = None
    logged_counts: bool = False  # log values of raw counts (log1p without normalising): their counts are exact
    total_unknown: bool = False  # single cells' log values sharing no total (a gene subset): taken as log1p(CP10k)


def check_numeric_columns(frame: Any, what: str) -> None:
    """Refuse a cells x features DataFrame with columns of text (a cell type, the cell ids), naming them: pandas
    would fail converting them with "could not convert string to float"."""
    text = [str(c) for c, dtype in frame.dtypes.items()
            if dtype.kind not in "biufc" and not hasattr(dtype, "subtype")]  # sparse columns: a numeric subtype
    if text:
        raise ValueError(f"the {what} DataFrame has columns that are not numbers ({', '.join(text[:5])}"
                         f"{' ...' if len(text) > 5 else ''}): give the expression columns only, e.g. "
                         "df.drop(columns=[...]), with the cell ids as the index (df.set_index(...))")


def rows_per_chunk(width: int, chunk_size: int | None = None) -> int:
    """Cells read at once: ``chunk_size``, else as many as fit ``CHUNK_ELEMENTS`` values of ``width`` (<= 4096)."""
    return chunk_size or max(1, min(4096, CHUNK_ELEMENTS // max(width, 1)))


def is_anndata(obj: Any) -> bool:
    return (
        type(obj).__name__ in ("AnnData", "Raw") and hasattr(obj, "var_names") and hasattr(obj, "obs_names")
    )


_WARNED: weakref.WeakValueDictionary[tuple[int, str], Any] = weakref.WeakValueDictionary()


def _warn_once_per_input(data: Any, message: str) -> None:
    """Warn about an AnnData once, although every chunk of its cells (a view of it) builds a Matrix: Python's
    once-per-place rule is undone by any ``warnings.catch_warnings`` between two chunks."""
    root = data._adata_ref if getattr(data, "is_view", False) and getattr(data, "_adata_ref", None) is not None \
        else data
    key = (id(root), message)
    if _WARNED.get(key) is root:
        return
    try:
        _WARNED[key] = root
    except TypeError:  # not weakly referable: warn every time rather than never
        pass
    warnings.warn(message, MixedFeaturesWarning, stacklevel=3)


class Matrix:
    """Row-chunk access to a dense array, a scipy sparse matrix or (backed) AnnData ``X``."""

    def __init__(self, data: Any, what: str, transform: str = "none") -> None:
        import scipy.sparse as sp

        self.what = what
        self.transform = check_choice("rna_transform", transform, RNA_TRANSFORMS)
        self.obs_names = None
        self.var_names = None
        self.var = None
        self.columns = None  # the file's columns that hold ``what`` (a CITE-seq file in one piece), None: all
        if is_anndata(data):
            self.obs_names = list(map(str, data.obs_names))
            self.var_names = list(map(str, data.var_names))
            self.var = data.var
            self.columns, message = modality_columns(data.var, what)
            if self.columns is not None:
                _warn_once_per_input(data, message)
                self.var_names = [self.var_names[i] for i in self.columns]
                self.var = data.var.iloc[self.columns]
            x = data.X
            if x is None:
                raise ValueError(
                    f"{what} AnnData has no X matrix; give the layer that holds the values (predict, the pipeline, "
                    "knockout and attention take layer='counts'), or put them in X (adata.X = adata.layers[...])"
                )
            self.backed = bool(getattr(data, "isbacked", False))
        else:
            self.backed = False
            if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame
                check_numeric_columns(data, what)
                self.var_names = list(map(str, data.columns))
                self.obs_names = list(map(str, data.index))
                x = data.to_numpy()
            elif type(data).__module__.startswith("torch"):
                x = data.detach().cpu().numpy()
            else:
                x = data
        if sp.issparse(x):
            if x.format not in ("csr", "csc"):
                x = x.tocsr()
            elif x.format == "csc":
                x = x.tocsr()  # row chunks of CSC are slow; one conversion per call
        elif not self.backed and not hasattr(x, "shape"):
            x = np.asarray(x)
        if not self.backed and isinstance(x, np.ndarray) and x.ndim == 1:
            x = x[None, :]
        if len(x.shape) != 2:
            raise ValueError(f"{what} must be a 2-D cells x features matrix, got shape {tuple(x.shape)}")
        if getattr(x, "dtype", None) == np.bool_:  # binarised (detected or not): read as counts of 0/1, silently
            raise ValueError(f"the {what} values are True/False (detected or not), not counts; give the counts "
                             "(e.g. adata.layers['counts'] or adata.raw)")
        self.x = x
        self.file_width = int(x.shape[1])
        self.shape = (int(x.shape[0]), self.file_width if self.columns is None else int(self.columns.size))

    def own_columns(self, per_column: Sequence[Any]) -> Sequence[Any]:
        """``per_column`` (names or ids given for every column of the file) restricted to the columns this
        matrix reads; as given when it reads them all or ``per_column`` already matches them."""
        if self.columns is None or len(per_column) != self.file_width:
            return per_column
        return [per_column[i] for i in self.columns.tolist()]

    def choose_reading(self, rows_per_read: int | None = None) -> ValueReading:
        """How this input's values are read (see :class:`ValueReading`), from the kind of its first 64 rows.

        Normalised values whose cells all sum to one total other than 10,000 -- log1p(CPM), log2(CPM + 1),
        scanpy's ``normalize_total`` to the median, TPM -- are brought to log1p(CP10k) exactly (the total says how
        they were normalised, the base how they were logged); read as they are, they would sit 100x (CPM) off the
        scale the model learnt. A lone cell shows no common total: one summing to 10,000 or 1,000,000 is taken as
        normalised to it. Values whose totals differ between cells (a gene subset) and bulk samples (mostly
        non-zero: RSEM, TPM, log2 arrays, read as the bulk corpora were) stay as the rule above. ``rows_per_read``:
        read the rows in slices of at most this many (a backed file streamed in chunks)."""
        import scipy.sparse as sp

        n_rows = min(self.shape[0], 64)
        step = max(1, rows_per_read or n_rows)
        blocks = [self.raw_rows(start, min(start + step, n_rows)) for start in range(0, n_rows, step)] or [
            self.raw_rows(0, 0)]
        sample = (blocks[0] if len(blocks) == 1 else sp.vstack(blocks, format="csr") if sp.issparse(blocks[0])
                  else np.vstack(blocks))
        kind = value_kind(sample)
        applied, done = _APPLIED_TRANSFORMS.get((self.transform, kind), (self.transform, ""))
        base, ambient, beyond_cp10k, cell_total, logged_counts = math.e, False, False, None, False
        total_unknown = False
        if self.transform == "log1p_cp10k" and kind in ("log", "linear") and single_cell_like(sample):
            dense = _dense_float(sample)
            total = None
            for base in (math.e, 2.0, 10.0) if kind == "log" else (math.e,):
                total = common_cell_total(_unlog(dense, base) if kind == "log" else dense)
                if total is not None:
                    break
            cell_total = total
            if total is not None and not (kind == "log" and base == math.e
                                          and abs(total / 1e4 - 1) <= TOTAL_TOLERANCE):
                applied = "log1p_cp10k" if kind == "linear" else "relog_cp10k"
                logged = {math.e: "log1p", 2.0: "log2(x+1)", 10.0: "log10(x+1)"}[base]
                done = (f"{logged + ' of values' if kind == 'log' else 'values'} normalised to {total:,.0f} per cell "
                        "-> log1p(CP10k)")
            elif total is None and kind == "linear" and not scaled_counts(dense):
                # totals differ and the values are no cell-wise multiple of counts: counts corrected for ambient
                # RNA (SoupX, DecontX), which need their library size as much as raw counts do
                applied, done, ambient = "log1p_cp10k", AMBIENT_CORRECTED, True
            elif total is None and kind == "log" and (counts_base := logged_counts_base(dense)) is not None:
                # log1p (or log2(x+1)) run on counts without normalising them: read as they were, each cell's values
                # sat up to 2 log units off the scale the model learnt, in silence; unlogged, they are the counts
                base, logged_counts, applied = counts_base, True, "relog_cp10k"
                done = f"{'log1p' if base == math.e else 'log2(x+1)'} of raw counts (not normalised) -> log1p(CP10k)"
            elif total is None and kind == "log":
                beyond_cp10k = float(dense.max()) > LOG1P_CP10K_MAX  # no log1p(CP10k) value is this large
                total_unknown = not beyond_cp10k
            base = base if cell_total is not None or logged_counts else math.e
        done = done or ("as given" if applied == "none" else "raw counts -> log1p(CP10k)")
        return ValueReading(kind, applied, done, base, ambient, beyond_cp10k, cell_total, logged_counts, total_unknown)

    def adapt_transform(self, reading: ValueReading | None = None) -> str:
        """Read the values as ``reading`` says (an input's cells in chunks: the one chosen over the whole input, so
        every chunk is read alike), by default as :meth:`choose_reading` chooses from these rows; returns what was
        done, in words."""
        reading = reading or self.choose_reading()
        self.reading = reading
        self.kind, self.applied = reading.kind, reading.applied
        self.ambient_corrected = reading.ambient_corrected  # a guess from the values: the checks warn about it
        return reading.done

    def rows(self, start: int, stop: int):
        """Rows ``start:stop`` (CSR or dense), after the transform."""
        block = self.raw_rows(start, stop)
        applied = getattr(self, "applied", self.transform)
        if applied == "log1p_cp10k":
            block = _log1p_cp10k(block, start, self.obs_names)
        elif applied == "relog_cp10k":
            check_block(block, start, self.obs_names)
            block = _log1p_cp10k(_unlog(block, self.reading.log_base), start, self.obs_names)
        elif applied == "log1p":
            block = _log1p(block, start, self.obs_names)
        return block

    def raw_rows(self, start: int, stop: int):
        """Rows ``start:stop`` as stored (CSR with canonical indices, or dense)."""
        import scipy.sparse as sp

        block = self.x[start:stop]
        if self.columns is not None:
            block = block[:, self.columns]
        if sp.issparse(block):
            block = block.tocsr() if block.format != "csr" else block
            if not block.has_canonical_format:
                block = block.copy()
                block.sum_duplicates()
            return block
        block = np.asarray(block)
        # float16 (a dense matrix saved small) widened exactly: scipy.sparse refuses it, and sums of it overflow
        return block.astype(np.float32) if block.dtype == np.float16 else block



def align_to_layout(report: MappingReport, layout: Sequence[int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(columns, tokens, filled, dropped) for encoding in ``layout`` order: the input column of each layout
    token (-1 where the input lacks it: a true zero), the layout's tokens, how many were filled, how many mapped
    input columns fall outside the layout."""
    tokens = np.asarray(layout, dtype=np.int64)
    column_of = {int(t): int(c) for t, c in zip(report.kept_token_ids, report.columns, strict=True)}
    columns = np.asarray([column_of.get(int(t), -1) for t in tokens], dtype=np.int64)
    filled = int((columns < 0).sum())
    dropped = len(column_of) - (tokens.size - filled)
    if filled == tokens.size:
        raise ValueError(f"none of the model's {tokens.size} layout genes is in the input; is it the right data?")
    return columns, tokens, filled, dropped


def take_columns(block, columns: np.ndarray):
    """``block[:, columns]`` (CSR or dense), where a column of -1 -- a gene the input lacks -- is all zeros."""
    import scipy.sparse as sp

    present = columns >= 0
    if present.all():
        return block[:, columns]
    if sp.issparse(block):
        sub = block[:, columns[present]].tocsr()
        positions = np.flatnonzero(present)
        return sp.csr_matrix((sub.data, positions[sub.indices], sub.indptr), shape=(block.shape[0], columns.size))
    out = np.zeros((block.shape[0], columns.size), dtype=np.result_type(block.dtype, np.float32))
    out[:, present] = block[:, columns[present]]
    return out


def cell_covariates(matrix: Matrix, columns: np.ndarray, chunk_size: int | None) -> np.ndarray:
    """(cells, 4) float32: log1p library size (every column: counts summed, or the count total recovered from
    values normalised per cell to one total; other values summed as given), log1p detected mapped genes, and the
    minimum and maximum of the mapped genes after the RNA transform: what per-cell scaling leaves out."""
    import scipy.sparse as sp

    n_cells = matrix.shape[0]
    out = np.empty((n_cells, 4), dtype=np.float32)
    step = rows_per_chunk(matrix.shape[1], chunk_size)
    for start in range(0, n_cells, step):
        stop = min(start + step, n_cells)
        raw = matrix.raw_rows(start, stop)
        mapped = take_columns(matrix.rows(start, stop), columns)
        if sp.issparse(mapped):  # scipy's min/max count the implicit zeros
            mapped = mapped.tocsr()
            low, high = mapped.min(axis=1).toarray().ravel(), mapped.max(axis=1).toarray().ravel()
            row_of_value = np.repeat(np.arange(mapped.shape[0]), np.diff(mapped.indptr))
            detected = np.bincount(row_of_value[mapped.data != 0], minlength=mapped.shape[0])
        else:
            low, high, detected = mapped.min(axis=1), mapped.max(axis=1), (mapped != 0).sum(axis=1)
        # summed in float64: a float16 matrix overflows to inf above 65,504 counts per cell (NaN predictions)
        library = np.asarray(raw.sum(axis=1, dtype=np.float64)).ravel()
        reading = getattr(matrix, "reading", None)
        if reading is not None and reading.logged_counts:
            library = np.asarray(_unlog(raw, reading.log_base).sum(axis=1, dtype=np.float64)).ravel()
        elif reading is not None and reading.cell_total is not None:
            # normalised values sum to the normalisation total (1e6 for CPM), not to the counts the model learnt
            library = count_totals(raw, reading)
        out[start:stop] = np.stack([np.log1p(library), np.log1p(detected), low, high], axis=1)
    return out


TOTAL_TOLERANCE = 0.01  # cells whose totals agree to 1 % were normalised to one total


SINGLE_CELL_ZEROS = 0.5  # single-cell matrices are mostly zeros, even over highly variable genes; bulk ones are not


BULK_DETECTED_GENES = 12_000  # genes detected in a typical bulk sample; deep single cells reach several thousand


def single_cell_like(block) -> bool:
    """True when at least :data:`SINGLE_CELL_ZEROS` of ``block``'s values are zero (sparse: counting the implicit
    ones) and its typical row detects fewer than :data:`BULK_DETECTED_GENES` genes: a bulk table listing every
    annotated gene (GENCODE's 60,000, most never expressed) is mostly zeros too, and its TPM was read as normalised
    single cells (scaled values 0.45 off the same samples without those columns)."""
    n = block.shape[0] * block.shape[1]
    nonzero = block.count_nonzero() if hasattr(block, "count_nonzero") else int(np.count_nonzero(block))
    if n == 0 or (n - nonzero) < SINGLE_CELL_ZEROS * n:
        return False
    return float(np.median(detected_per_row(block))) < BULK_DETECTED_GENES


def detected_per_row(block) -> np.ndarray:
    """Non-zero values per row of a dense or sparse block (a scipy sparse matrix or array: anndata reads X as
    ``csr_array`` with ``settings.use_sparse_array_on_read``; np.asarray of one is no matrix of values)."""
    import scipy.sparse as sp

    if sp.issparse(block):
        return np.asarray(sp.csr_matrix(block).getnnz(axis=1)).ravel()
    return np.asarray((np.asarray(block) != 0).sum(axis=1)).ravel()


# the totals a lone cell is taken as normalised to when it sums to one of them (CP10k, CPM)
LONE_CELL_TOTALS = (1e4, 1e6)
LOG1P_CP10K_MAX = math.log1p(1e4) * (1 + TOTAL_TOLERANCE)  # no gene of a log1p(CP10k) cell exceeds its total


def common_cell_total(values: np.ndarray) -> float | None:
    """The total every cell (row) of ``values`` sums to, when they agree to :data:`TOTAL_TOLERANCE` (empty rows
    left aside); None when they differ or no cell has one. A lone cell's total counts only when it is one of
    :data:`LONE_CELL_TOTALS`: one cell cannot show that its total is shared."""
    totals = values.sum(axis=1, dtype=np.float64)
    totals = totals[totals > 0]
    if totals.size == 1:
        lone = float(totals[0])
        return lone if any(abs(lone / t - 1) <= TOTAL_TOLERANCE for t in LONE_CELL_TOTALS) else None
    if totals.size < 2:
        return None
    middle = float(np.median(totals))
    return middle if (totals.max() - totals.min()) <= TOTAL_TOLERANCE * middle else None


LOGGED_COUNTS_MIN_VALUES = 50  # non-zero values a sample needs before its whole unlogged values read as counts


LOGGED_COUNTS_ONES = 0.9  # cells whose smallest count must be 1 (nearly every scRNA cell has a gene counted once)


def logged_counts_base(values: np.ndarray) -> float | None:
    """The base (e or 2) in which ``values`` (cells x genes) are logged raw counts -- ``log(x + 1)`` of whole
    numbers, as ``sc.pp.log1p`` leaves counts it was given without ``normalize_total`` -- or None. Unlogged,
    every non-zero value must be whole (:func:`value_kinds.is_whole`, over at least
    :data:`LOGGED_COUNTS_MIN_VALUES`), and the smallest of :data:`LOGGED_COUNTS_ONES` of the cells exactly 1:
    ``is_whole`` allows float32's error, relative, so large values pass whatever their fraction, and the unlogged
    values of log1p(CPM) or log2(TPM + 1) are large (a cell's smallest is hundreds, never 1). Base 10 is not tried:
    its unlogged values grow so fast that the test says nothing."""
    for base in (math.e, 2.0):
        linear = _unlog(values, base)
        nonzero = linear[linear > 0]
        if nonzero.size < LOGGED_COUNTS_MIN_VALUES or not is_whole(nonzero).all():
            continue
        _, smallest = _smallest_counts(linear)  # each cell's smallest non-zero value (NaN: an empty cell)
        smallest = smallest[np.isfinite(smallest)]
        if (np.abs(smallest - 1.0) <= 1e-3).mean() >= LOGGED_COUNTS_ONES:
            return base
    return None


AMBIENT_CORRECTED = "non-integer counts (as corrected for ambient RNA) -> log1p(CP10k)"


SCALED_SMALLEST_COUNT = 8  # the smallest count a scRNA cell's smallest non-zero value is taken to stand for


def scaled_counts(values, largest_smallest_count: int = SCALED_SMALLEST_COUNT) -> bool:
    """True when each cell's (row's) values are counts times one factor: whole multiples of its smallest non-zero
    value over ``k``, for a smallest count ``k`` up to ``largest_smallest_count`` (scRNA cells nearly always have a
    gene counted once). Counts normalised per cell, as CP10k of a gene subset, are; counts corrected for ambient
    RNA are not."""
    smallest_count, _ = _smallest_counts(values, largest_smallest_count)
    return bool((smallest_count != 0).all())


def count_totals(raw, reading: ValueReading) -> np.ndarray:
    """Each cell's count total, recovered from values normalised per cell to one total (``reading.cell_total``,
    logged or not): the cell's sum over its smallest non-zero value, times the count that value stands for (1 in
    nearly every scRNA cell; the smallest ``k`` that makes every value a whole multiple, else 1). Empty cells: 0."""
    linear = _unlog(raw, reading.log_base) if reading.kind == "log" else raw
    smallest_count, smallest = _smallest_counts(linear)
    sums = np.asarray(linear.sum(axis=1, dtype=np.float64)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        totals = np.maximum(smallest_count, 1) * sums / smallest
    return np.where(sums > 0, totals, 0.0)



def _smallest_counts(values, largest_smallest_count: int = SCALED_SMALLEST_COUNT) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``values`` (dense or sparse, non-negative): the count ``k`` (1 .. ``largest_smallest_count``)
    its smallest non-zero value stands for if the row is counts times one factor -- the smallest ``k`` that makes
    every value a whole multiple of that value over ``k`` -- else 0, and -1 for a row without non-zero values;
    and that smallest value (NaN for an empty row). Whole as ``value_kinds.is_whole`` says, every value of a row."""
    import scipy.sparse as sp

    rows = sp.csr_matrix(values, dtype=np.float64)
    rows.data[rows.data < 0] = 0.0
    rows.eliminate_zeros()
    lengths = np.diff(rows.indptr)
    smallest_count = np.where(lengths > 0, 0, -1)
    smallest = np.full(rows.shape[0], np.nan)
    filled = lengths > 0
    if not filled.any():
        return smallest_count, smallest
    starts = rows.indptr[:-1][filled]
    smallest[filled] = np.minimum.reduceat(rows.data, starts)
    ratios = rows.data / np.repeat(smallest[filled], lengths[filled])
    for k in range(1, largest_smallest_count + 1):
        whole = np.minimum.reduceat(is_whole(ratios * k), starts).astype(bool)  # every value of the row whole
        undecided = smallest_count[filled] == 0
        smallest_count[np.flatnonzero(filled)[undecided & whole]] = k
    return smallest_count, smallest


def _dense_float(block) -> np.ndarray:
    return np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=np.float64)


def _unlog(block, base: float):
    """``base ** x - 1`` of a row block (expm1 for base e; sparse: of its stored values, zeros stay zeros)."""
    if base == math.e:
        return block.astype(np.float64).expm1() if hasattr(block, "expm1") else np.expm1(block.astype(np.float64))
    if hasattr(block, "tocsr"):
        out = block.astype(np.float64).tocsr(copy=True)
        out.data = np.expm1(out.data * math.log(base))
        return out
    return np.expm1(block.astype(np.float64) * math.log(base))


def _log1p(block, start: int, obs_names):
    """log1p of a row block of linear normalised values (CP10k, TPM)."""
    check_block(block, start, obs_names)
    return block.astype(np.float64).log1p() if hasattr(block, "log1p") else np.log1p(block.astype(np.float64))


def _log1p_cp10k(block, start: int, obs_names):
    """log1p(counts per 10,000) of a row block; library sizes over every column of the input."""
    import scipy.sparse as sp

    check_block(block, start, obs_names)
    totals = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()  # float64: float16 counts overflow at 65,504
    factors = 1e4 / np.where(totals > 0, totals, 1.0)
    if sp.issparse(block):
        out = block.astype(np.float64, copy=True)
        out.data *= np.repeat(factors, np.diff(out.indptr))
        np.log1p(out.data, out=out.data)
        return out
    return np.log1p(block.astype(np.float64) * factors[:, None])


# antibody panels count tens to a few hundred proteins (TotalSeq's largest, ~550); a matrix of thousands of mostly-zero
# single-cell columns is an RNA file (mass-spec proteomes of thousands of proteins are bulk, not mostly zeros)
PANEL_MAX_COLUMNS = 2000


def rna_like_protein_side(proteins: Any) -> bool:
    """Whether a protein AnnData looks like an RNA matrix: at least :data:`PANEL_MAX_COLUMNS` columns whose first
    cells are single-cell-like (mostly zeros) and hold counts, or log values no larger than log1p(CP10k)'s with
    three zeros in four (log-normalised RNA), as a file of genes given as the protein file is. Proteomes of
    thousands of proteins hold intensities or ratios, zero only where a protein was missed (NaN is better there)."""
    if proteins.shape[1] < PANEL_MAX_COLUMNS or proteins.shape[0] == 0:
        return False
    first = proteins.X[: min(proteins.shape[0], 64)]
    if not single_cell_like(first):
        return False
    dense = np.asarray(first.toarray() if hasattr(first, "toarray") else first, dtype=np.float64)
    values = dense[np.isfinite(dense) & (dense != 0)]
    kind = value_kind(values)
    return kind == "counts" or (kind == "log" and (dense == 0).mean() >= 0.75
                                and (values.size == 0 or values.max() <= LOG1P_CP10K_MAX))


def rna_like_protein_message(path: Any, n_columns: int) -> str:
    return (f"{path} holds {n_columns:,} single-cell columns of counts or log-normalised values, as an RNA matrix "
            "does (an antibody panel has tens to hundreds): is it the RNA file? Give the antibody counts as the "
            "protein file (a proteome of that many proteins: write proteins not measured in a cell as NaN, not 0)")
