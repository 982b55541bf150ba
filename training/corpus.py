"""Paired RNA + protein files -> a sharded Parquet corpus with a ``manifest.json``.

A corpus folder holds::

    manifest.json                      name, cells, splits, shard files (+ rows, bytes), gene and protein
                                       names, source files (size, mtime in ns), vocabulary summary, build settings
    train-00000-of-00004.parquet ...   held-in cells (the training stream)
    validation-00000-of-00001.parquet  cells held out of training for model selection (only with
                                       ``validation_fraction`` > 0)
    eval-00000-of-00001.parquet  ...   held-out cells (evaluation: the test split)

One row per cell: ``cell_id`` (the source obs name), ``row`` (its row in the RNA file), ``split``,
``rna_indices`` / ``rna_values`` (the raw RNA row, sparse over ``manifest["genes"]``) and
``protein_values`` (one value per ``manifest["proteins"]``, NaN = missing). Nothing is scaled,
truncated or tokenized here: the tokenizer does all of that at training time (see ``training.data``),
so one corpus serves any model length, truncation mode or vocabulary.

The hold-out split is drawn here, once (``eval_fraction`` of the cells, ``split_seed``), so
evaluation is always on cells no training step saw. ``validation_fraction`` (of all cells) is then
taken from the remaining cells: a validation split for early stopping / best-checkpoint selection
that never touches the test cells. The eval split does not depend on ``validation_fraction``: the
same seed gives the same test cells with or without validation. ``eval_fold`` k holds out the k-th
block of ``eval_fraction`` of the same permutation instead of the first (cross-validation: folds
0 .. 1/eval_fraction - 1 hold out disjoint cells; fold 0 is the usual split).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from tokenization.cell_files import is_matrix_market, matrix_market_files, read_pair, set_name
from tokenization.checks import modality, protein_rows_in_rna_order, repeated_names
from tokenization.gene_ids import RowNumberNames
from tokenization.matrix import PANEL_MAX_COLUMNS, rna_like_protein_message, rna_like_protein_side, single_cell_like
from tokenization.value_kinds import clr_counts, value_kind

__all__ = [
    "CorpusError",
    "CorpusSource",
    "build_corpus",
    "find_source",
    "load_manifest",
    "prepare_corpus",
    "split_cells",
]

logger = logging.getLogger(__name__)

# a protein side of PANEL_MAX_COLUMNS counts or more, next to an RNA side this narrow, is an RNA and a protein file
# swapped
SWAP_GENES = 500

MANIFEST = "manifest.json"

# An antibody at background: a protein whose counts reach SHOWN_COUNTS in under BACKGROUND_RATIO as many training
# cells as its own gene's mRNA is detected in (where that mRNA is detected in at least MRNA_EVIDENCE of them). ADT
# counts detect a surface protein in more cells than scRNA detects its mRNA (working antibodies on the shared sets:
# ratio 0.44 and up, above 1 for 70 of the 83 judged), so a panel that barely counts a protein whose mRNA is common
# measured nothing: a failed antibody, or an epitope the stain cannot reach. On the nine shared single-cell sets
# this finds CD45 in eccite (0.20), eccite_ctcl (0.05) and reapseq_pbmc (0.00, both barcodes), LAG3 in eccite
# (0.00), CCR7 (0.08) and CD68 (mostly intracellular, 0.11) in reapseq_pbmc, CD19 in pbmc5p_totalseqc_mme (0.18);
# the next lowest is CD69 in neurips (0.44). Trained on, such columns teach a protein's embedding that it is absent
# (the shipped model learnt CD45 so, from three of its four panels): training reads them as unmeasured unless the
# run asks to keep them.
SHOWN_COUNTS = 3
BACKGROUND_RATIO = 0.25
MRNA_EVIDENCE = 0.05
FORMAT_VERSION = 1
PROTEIN_SUFFIXES = ("_adt", "_rppa", "_prot", "_protein")

SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("row", pa.int64()),
        ("split", pa.string()),
        ("rna_indices", pa.list_(pa.int32())),
        ("rna_values", pa.list_(pa.float32())),
        ("protein_values", pa.list_(pa.float32())),
    ]
)


class CorpusError(ValueError):
    """A corpus cannot be built or used (unpaired cells, no mappable protein, empty shard, ...)."""


@dataclass
class CorpusSource:
    """Where a corpus comes from: an RNA + protein AnnData pair, one MuData file, or one CITE-seq file or Cell
    Ranger matrix folder given as both sides."""

    name: str
    rna_path: Path
    protein_path: Path | None = None  # None for MuData (its RNA and protein modalities inside rna_path)

    @property
    def files(self) -> list[Path]:
        """The files read (a matrix folder's matrix, features and barcodes: the cache is rebuilt when one
        changes, which the folder's own size and time do not show)."""
        paths = [p for p in (self.rna_path, self.protein_path) if p is not None]
        return [f for p in paths for f in (matrix_market_files(p) if is_matrix_market(p) else (p,))]


def find_source(spec: str | os.PathLike[str], name: str | None = None) -> CorpusSource:
    """Resolve ``spec`` into source files.

    Accepts ``DIR/<name>`` (finds ``<name>_rna.h5ad`` + ``<name>_adt|_rppa|_prot.h5ad``), the RNA file
    itself (``..._rna.h5ad``), ``RNA.h5ad:PROTEIN.h5ad``, a MuData ``.h5mu`` file or a Cell Ranger ``.h5``
    CITE-seq matrix or matrix folder (both sides in one, told apart by their feature types).
    """
    text = str(spec)
    if text.endswith((".h5mu", ".h5")):
        path = Path(text)
        if not path.is_file():
            raise CorpusError(f"{'MuData' if text.endswith('.h5mu') else 'Cell Ranger'} file {path} does not exist")
        return CorpusSource(name or set_name(path), path, None if text.endswith(".h5mu") else path)
    if os.path.exists(text) and is_matrix_market(text):  # a Cell Ranger matrix folder: both sides in one
        return CorpusSource(name or set_name(text), Path(text), Path(text))
    if ":" in text and not os.path.exists(text):
        rna, prot = text.split(":", 1)
        rna_path, prot_path = Path(rna), Path(prot)
        for p in (rna_path, prot_path):
            if not p.is_file():
                raise CorpusError(f"{p} does not exist")
        return CorpusSource(name or set_name(rna_path), rna_path, prot_path)
    base = text.removesuffix(".h5ad").removesuffix("_rna")
    rna_path = Path(base + "_rna.h5ad")
    if not rna_path.is_file():
        raise CorpusError(
            f"no RNA file for {spec!r}: expected {rna_path} (pairs are <name>_rna.h5ad + <name>_adt.h5ad, "
            "or give RNA.h5ad:PROTEIN.h5ad, a .h5mu file or a built corpus folder with manifest.json)"
        )
    for suffix in PROTEIN_SUFFIXES:
        candidate = Path(base + suffix + ".h5ad")
        if candidate.is_file():
            return CorpusSource(name or Path(base).name, rna_path, candidate)
    expected = [base + s + ".h5ad" for s in PROTEIN_SUFFIXES]
    raise CorpusError(f"no protein file next to {rna_path}: expected one of {expected}")


def _read_pair(source: CorpusSource):
    try:  # one CITE-seq file may be both sides (a Cell Ranger .h5 or matrix folder, a .h5mu, FILE.h5ad:FILE.h5ad)
        return read_pair(source.rna_path, source.protein_path or source.rna_path)
    except (OSError, ValueError) as err:  # missing, unreadable, swapped or undivided files: one line, not a traceback
        raise CorpusError(f"corpus {source.name}: {err}") from err


def _paired(rna, prot, source: CorpusSource) -> np.ndarray | None:
    """The protein file's rows of the RNA's cells, in the RNA's order (a shard's ``row`` is the cell's row in the
    RNA file), or None where both files list the same cells in one order: files that list them in another order are
    matched by obs_names, as ``evaluate`` matches them, and protein cells the RNA file lacks (an ADT matrix of every
    barcode beside filtered RNA) are left out, with a warning. Rows, not a subset: CLR values tell their counts only
    over every cell they were computed over. A :class:`CorpusError` when the RNA holds cells the protein file lacks or
    names repeat."""
    rna_names = np.asarray(rna.obs_names).astype(str)
    prot_names = np.asarray(prot.obs_names).astype(str)
    where = f"{source.name} ({', '.join(map(str, source.files))})"
    if rna.n_obs == 0:
        raise CorpusError(f"corpus {where} has no cells")
    if rna_names.shape == prot_names.shape and (rna_names == prot_names).all():
        if len(set(rna_names)) != len(rna_names):
            repeated = repeated_names(rna_names.tolist())
            raise CorpusError(f"corpus {where}: {len(repeated)} obs_names repeat (e.g. {repeated[0]!r}); the two "
                              "files list the cells in one order, so obs_names_make_unique() on each keeps them paired")
        return None
    try:
        rows, left_out = protein_rows_in_rna_order("", rna_names, prot_names, drop_extra=True)
    except ValueError as error:
        raise CorpusError(f"corpus {where}: unpaired cells — {error}.{_transposed_hint(rna, prot)}") from None
    logger.info("corpus %s: protein cells matched to the RNA file's order by obs_names", source.name)
    if left_out:
        logger.warning("corpus %s: %d of the protein file's %d cells are not in the RNA file and are left out",
                       source.name, left_out, len(prot_names))
    return rows


def _transposed_hint(rna, prot) -> str:
    """A file saved features x cells (a CSV read without .T) names its cells in var_names: say which, and the fix."""
    rna_cells, prot_cells = set(map(str, rna.obs_names)), set(map(str, prot.obs_names))
    for side, cells_as_features, other_cells in (("RNA", set(map(str, rna.var_names)), prot_cells),
                                                  ("protein", set(map(str, prot.var_names)), rna_cells)):
        if len(cells_as_features & other_cells) > len(other_cells) / 2:
            return (f" The {side} file's var_names are the other file's cells: it holds features as rows, cells as "
                    "columns; transpose it (adata.T) first")
    return ""


# where a scanpy or Seurat file keeps its counts when X holds scaled values
COUNT_LAYERS = ("counts", "raw_counts", "count", "umi_counts")


def _has_negative(x) -> bool:
    values = x.data if sp.issparse(x) else np.asarray(x)
    return bool(values.size) and bool(np.nanmin(values) < 0)


def _nonzero_sample(x) -> np.ndarray:
    """The non-zeros of the first cells of ``x``: enough to tell counts from normalised values."""
    values = x.data if sp.issparse(x) else np.asarray(x[: min(x.shape[0], 64)]).ravel()
    values = values[: 1_000_000]
    return values[values != 0]


def _kept_counts(rna, counts_only: bool = True):
    """(where, AnnData) of the raw counts a file keeps beside X (a counts layer, else ``.raw``), or None;
    ``counts_only=False``: any non-negative values there (scanpy keeps log-normalised values in ``.raw``)."""
    def usable(x) -> bool:
        return value_kind(_nonzero_sample(x)) == "counts" if counts_only else not _has_negative(x)

    for layer in COUNT_LAYERS:
        if layer in rna.layers and usable(rna.layers[layer]):
            return f"layers[{layer!r}]", anndata.AnnData(X=rna.layers[layer], obs=rna.obs[[]], var=rna.var)
    if rna.raw is not None and usable(rna.raw.X):
        # .raw keeps every feature of a CITE-seq file in one piece (antibodies too): its genes only
        raw = modality(anndata.AnnData(X=rna.raw.X, obs=rna.obs[[]], var=rna.raw.var), "RNA")
        return f".raw ({raw.n_vars:,} genes)", raw
    return None


def _protein_counts_kept(prot):
    """(where, matrix) of the antibody counts a protein file keeps beside a normalised X (a counts layer, else a
    ``.raw`` of the same columns), or None."""
    for layer in COUNT_LAYERS:
        if layer in prot.layers and value_kind(_nonzero_sample(prot.layers[layer])) == "counts":
            return f"layers[{layer!r}]", prot.layers[layer]
    raw = prot.raw
    if (raw is not None and list(raw.var_names) == list(prot.var_names)
            and value_kind(_nonzero_sample(raw.X)) == "counts"):
        return ".raw", raw.X
    return None


def protein_values(prot) -> tuple[np.ndarray, str, str]:
    """The protein values to train or score on, over every cell of the file (float32), their kind
    (:func:`~tokenization.value_kinds.value_kind`) and what was done to get them ("" for X as it is): the counts a
    file keeps beside a normalised X (an ADT file as muon or Seurat writes it), else CLR values brought back to the
    counts they came from. Counts give the log1p-count output and the check for antibodies at background."""
    values = _dense_rows(prot.X).astype(np.float32)
    kind = value_kind(values[~np.isnan(values)])
    if kind == "counts":
        return values, kind, ""
    kept = _protein_counts_kept(prot)
    if kept is not None:
        where, counts = kept
        return (_dense_rows(counts).astype(np.float32), "counts",
                f"the protein X holds {kind} values, not counts; read its {where} instead")
    recovered = clr_counts(values) if kind == "log" else None
    if recovered is not None:  # over every cell of the file: a subset has other geometric means
        return (recovered[0].astype(np.float32), "counts",
                f"protein values are CLR-normalised ({recovered[1]}): brought back to their counts, every value a "
                "whole count again")
    return values, kind, ""


def _counts_for_scaled_rna(rna, corpus: str):
    """``rna`` itself, or, when its X holds no counts but the file keeps them beside it (a counts layer, else
    ``.raw``), an AnnData of those counts, with a warning. Centred or scaled values (negative: ``sc.pp.scale``,
    Seurat's scale.data) cannot be trained on; log-normalised ones can, but counts give the tokenizer's own
    normalisation, each cell's library size, and the check for antibodies at background (it needs counts: on
    Seurat's data slot it was skipped and an isotype-like column trained on). Training corpora take no layer
    option. Scaled values without counts: an error naming the fix."""
    negative = _has_negative(rna.X)
    if not negative and value_kind(_nonzero_sample(rna.X)) == "counts":
        return rna
    kept = _kept_counts(rna) or (_kept_counts(rna, counts_only=False) if negative else None)
    if kept is not None:
        where, counts = kept
        logger.warning("corpus %s: the RNA's X %s; trained on its %s instead", corpus,
                       "is centred or scaled (negative values)" if negative else "holds normalised values, not counts",
                       where)
        return counts
    if not negative:
        return rna
    raise CorpusError(
        f"corpus {corpus}: the RNA's X has negative values, centred or scaled (sc.pp.scale, Seurat's scale.data) or "
        f"log ratios, and the file keeps no counts beside it (layers: {sorted(rna.layers) or 'none'}, no .raw). "
        "Single cells: write a file whose X (or layers['counts'], or .raw) holds the raw counts; bulk log values: "
        "shift each sample to a non-negative scale first (as training/pretrain.py does for its bulk arrays)"
    )


def _check_values(corpus: str, rna: sp.csr_matrix, proteins: np.ndarray, obs_names) -> None:
    """Refuse negative/NaN/inf RNA and infinite protein values (NaN protein = not measured) when the corpus
    is built, not at the final evaluation after hours of training."""
    bad_rna = ~np.isfinite(rna.data) | (rna.data < 0)
    if bad_rna.any():
        row = int(np.searchsorted(rna.indptr, int(np.argmax(bad_rna)), side="right") - 1)
        raise CorpusError(
            f"corpus {corpus}: {int(bad_rna.sum())} RNA values are negative, NaN or infinite (first in cell "
            f"{obs_names[row]!r}); fill or drop those cells: RNA must be finite, non-negative counts or log values"
        )
    if proteins.size and np.isnan(proteins).all():
        raise CorpusError(f"corpus {corpus}: every protein value is NaN (not measured): nothing to train or evaluate "
                          "on; is it the right protein file (its X, not a layer)?")
    bad_protein = np.isinf(proteins)
    if bad_protein.any():
        row = int(np.argmax(bad_protein.any(axis=1)))
        raise CorpusError(
            f"corpus {corpus}: {int(bad_protein.sum())} protein values are infinite (first in cell "
            f"{obs_names[row]!r}); use NaN for proteins that were not measured"
        )


def _warn_unmeasured(corpus: str, proteins: np.ndarray, protein_report: Any) -> None:
    """Name mapped protein columns that no cell measured and cells that measured none of them (NaN throughout): they
    train nothing, which the counts of mapped proteins and cells did not show."""
    columns = np.asarray(protein_report.columns, dtype=np.int64)
    if not columns.size or not proteins.size:
        return
    measured = ~np.isnan(proteins[:, columns])
    empty_columns = columns[~measured.any(axis=0)]
    if empty_columns.size:
        names = [protein_report.names[c] for c in empty_columns]
        logger.warning("corpus %s: %d mapped protein column(s) are NaN in every cell (not measured) and train "
                       "nothing: %s", corpus, len(names), ", ".join(names[:10]) + (" ..." if len(names) > 10 else ""))
    empty_cells = int((~measured.any(axis=1)).sum())
    if empty_cells:
        logger.warning("corpus %s: %d of %d cells measured none of the mapped proteins (NaN throughout) and train "
                       "nothing", corpus, empty_cells, proteins.shape[0])


def _dense_rows(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def _file_info(path: Path) -> dict[str, Any]:
    stat = path.stat()
    # mtime_ns: a file rewritten within the same second at the same size kept its stale corpus (mtime, in seconds,
    # stays for the fingerprints of corpora built before it)
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime": int(stat.st_mtime),
            "mtime_ns": stat.st_mtime_ns}


def _vocab_summary(tokenizer) -> dict[str, Any]:
    return {"vocab_size": int(tokenizer.vocab_size), "n_added_genes": len(tokenizer.added_genes),
            "species": tokenizer.species}


def split_cells(n_source: int, split_seed: int = 0, eval_fraction: float = 0.2, validation_fraction: float = 0.0,
                eval_fold: int = 0, n_cells: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, eval) row numbers, each sorted: the one split of a corpus and of the benchmarks.

    A permutation of the ``n_source`` rows (``split_seed``), cut to ``n_cells`` (a random subset). The eval
    rows are its first ``round(n_cells * eval_fraction)``; with ``eval_fold`` k (cross-validation in
    K = 1 / ``eval_fraction`` folds) the k-th block of that size instead, the last fold taking whatever is
    left, so the K folds hold out every cell once. The validation rows are the next
    ``round(n_cells * validation_fraction)`` of the rest (in permutation order), training the others: the
    test cells never depend on ``validation_fraction``."""
    n_cells = n_source if n_cells is None else n_cells
    order = np.random.default_rng(split_seed).permutation(n_source)[:n_cells]
    n_eval = int(round(n_cells * eval_fraction))
    n_validation = int(round(n_cells * validation_fraction))
    if eval_fold:
        n_folds = round(1 / eval_fraction) if eval_fraction else 0
        if n_folds < 2 or abs(n_folds * eval_fraction - 1) > 1e-6:
            raise ValueError(f"eval_fold needs eval_fraction = 1/K for K folds (0.2 for 5), got {eval_fraction}")
        if not 0 <= eval_fold < n_folds:
            raise ValueError(f"eval_fold must be in [0, {n_folds}) with eval_fraction {eval_fraction}, got {eval_fold}")
        start = eval_fold * n_eval
        stop = n_cells if eval_fold == n_folds - 1 else start + n_eval
    else:
        start, stop = 0, n_eval
    rest = np.concatenate([order[:start], order[stop:]])
    return np.sort(rest[n_validation:]), np.sort(rest[:n_validation]), np.sort(order[start:stop])


def proteins_at_background(rna_counts: sp.csr_matrix, protein_counts: np.ndarray, gene_report: Any,
                           protein_report: Any) -> dict[int, dict[str, Any]]:
    """Protein columns whose antibody counted nothing its own mRNA did not (see :data:`BACKGROUND_RATIO`):
    ``{column: {"protein": name, "protein_shown": share of cells, "mrna_detected": share}}``, over the cells
    given (raw counts of both sides, rows paired). Proteins whose gene is not in the RNA file, or rarely detected
    there, are not judged."""
    if rna_counts.shape[0] == 0:
        return {}
    gene_column = {int(gene_report.token_ids[c]): c for c in gene_report.columns}
    rna_counts = sp.csc_matrix(rna_counts)  # one gene column at a time below
    found = {}
    for c in protein_report.columns:
        g = gene_column.get(int(protein_report.token_ids[c]))
        measured = np.isfinite(protein_counts[:, c])  # both shares over the cells whose panel measured it
        if g is None or not measured.any():
            continue
        mrna_detected = float((rna_counts[:, g].toarray().ravel()[measured] > 0).mean())
        if mrna_detected < MRNA_EVIDENCE:
            continue
        shown = float(np.mean(protein_counts[measured, c] >= SHOWN_COUNTS))
        if shown < BACKGROUND_RATIO * mrna_detected:
            found[int(c)] = {"protein": protein_report.names[c], "protein_shown": round(shown, 4),
                             "mrna_detected": round(mrna_detected, 4)}
    return found


def build_corpus(
    source: CorpusSource | str,
    out_dir: str | os.PathLike[str],
    tokenizer,
    num_shards: int = 4,
    eval_fraction: float = 0.2,
    split_seed: int = 0,
    max_cells: int | None = None,
    eval_shards: int = 1,
    validation_fraction: float = 0.0,
    eval_fold: int = 0,
) -> dict[str, Any]:
    """Write the corpus of ``source`` to ``out_dir`` (atomically: a temporary folder renamed at the end).

    ``tokenizer`` only checks that genes and proteins map (nothing is tokenized here); its vocabulary
    summary goes into the manifest. Raises :class:`CorpusError` on unpaired cells, no mappable
    protein or gene, or a split too small to fill ``num_shards`` non-empty shards.
    """
    if isinstance(source, str):
        source = find_source(source)
    if num_shards < 1 or eval_shards < 1:
        raise CorpusError("num_shards and eval_shards must be >= 1")
    if not 0.0 <= eval_fraction < 1.0:
        raise CorpusError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if not 0.0 <= validation_fraction < 1.0 - eval_fraction:
        raise CorpusError(f"validation_fraction must be in [0, 1 - eval_fraction), got {validation_fraction} "
                          f"(eval_fraction {eval_fraction}): no cell would be left for training")
    _check_replaceable(Path(out_dir), source)
    rna, prot = _read_pair(source)
    protein_rows = _paired(rna, prot, source)
    rna = _counts_for_scaled_rna(rna, source.name)
    genes = [str(g) for g in rna.var_names]
    proteins = [str(p) for p in prot.var_names]
    try:
        gene_report = tokenizer.resolve(genes, kind="gene")
    except RowNumberNames as error:
        named = tokenizer.gene_name_columns(rna.var)
        raise CorpusError(f"corpus {source.name}: {error}" + (
            f"; its var column {named[0][0]!r} names genes: set adata.var_names = adata.var[{named[0][0]!r}] and "
            "write the file again" if named else "")) from None
    if gene_report.n_mapped == 0:
        raise CorpusError(f"corpus {source.name}: none of its {len(genes)} genes is in the vocabulary "
                          f"(first: {genes[:5]})")
    is_control = prot.var["is_control"].astype(bool).tolist() if "is_control" in prot.var.columns else None
    try:
        protein_report = tokenizer.resolve(proteins, kind="protein", is_control=is_control)
    except RowNumberNames as error:
        raise CorpusError(f"corpus {source.name}: {error}") from None
    if protein_report.n_mapped == 0:
        raise CorpusError(
            f"corpus {source.name}: no mappable protein among its {len(proteins)} (unmapped: "
            f"{protein_report.unmapped[:8]}, controls: {protein_report.controls[:8]}); nothing to train on. "
            "Rename the panel or add overrides to the tokenizer."
        )
    left_out = {"not in the vocabulary": protein_report.unmapped, "controls": protein_report.controls,
                "the same protein as an earlier column": [f"{a} (= {b})" for a, b, _ in protein_report.duplicates]}
    for why, names in left_out.items():
        if names:  # the card counts them; the names go to the log (and the manifest's proteins_mapped)
            logger.warning("corpus %s: %d of %d protein columns are %s and not trained on: %s%s", source.name,
                           len(names), len(proteins), why, ", ".join(names[:10]), " ..." if len(names) > 10 else "")

    n_cells = rna.n_obs if max_cells is None else min(rna.n_obs, int(max_cells))
    try:
        train_rows, validation_rows, eval_rows = split_cells(rna.n_obs, split_seed, eval_fraction,
                                                             validation_fraction, eval_fold, n_cells)
    except ValueError as err:
        raise CorpusError(f"corpus {source.name}: {err}") from None
    values_all, protein_kind, how = protein_values(prot)
    if how:
        logger.warning("corpus %s: %s", source.name, how)
    if protein_rows is not None:  # the RNA's cells, once CLR has been read over every cell of the file
        values_all = values_all[protein_rows]
    rna_x = rna.X
    if not sp.issparse(rna_x):
        rna_x = sp.csr_matrix(np.asarray(rna_x))
    rna_x = sp.csr_matrix(rna_x)
    _check_values(source.name, rna_x, values_all, list(rna.obs_names))
    _warn_unmeasured(source.name, values_all, protein_report)
    no_rna = np.diff(rna_x.indptr) == 0
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no measurement, no loss (said above)
        constant_protein = np.nanmax(values_all, axis=1) == np.nanmin(values_all, axis=1)
    empty = no_rna | constant_protein
    if empty.any():  # after the split, so every other cell keeps its split (and held-out cells their names)
        train_rows, validation_rows, eval_rows = (np.asarray(rows)[~empty[np.asarray(rows, dtype=np.int64)]]
                                                  for rows in (train_rows, validation_rows, eval_rows))
        logger.warning("corpus %s: %d of %d cells left out of training and held-out cells: %d with no RNA read, %d "
                       "with every protein value equal (e.g. no antibody counted: failed droplets); per-cell scaling "
                       "is undefined there, and they trained and scored as all-floor profiles", source.name,
                       int(empty.sum()), len(empty), int(no_rna.sum()), int((constant_protein & ~no_rna).sum()))
    n_eval = len(eval_rows)
    if len(train_rows) < num_shards:
        raise CorpusError(
            f"corpus {source.name}: {len(train_rows)} training cells cannot fill {num_shards} shards (a shard "
            "would be empty); use fewer shards or more cells"
        )
    if n_eval and n_eval < eval_shards:
        eval_shards = n_eval
    rna_kind = value_kind(_nonzero_sample(rna_x))
    if protein_kind == "counts" and len(proteins) >= PANEL_MAX_COLUMNS and len(genes) <= SWAP_GENES:
        raise CorpusError(
            f"corpus {source.name}: the protein side has {len(proteins):,} columns of counts and the RNA side "
            f"{len(genes)}: are the two files swapped? Give the RNA file first: --corpora RNA.h5ad:PROTEIN.h5ad"
        )
    if rna_like_protein_side(prot):
        raise CorpusError(f"corpus {source.name}: " + rna_like_protein_message("its protein file", len(proteins)))
    single_cell = single_cell_like(rna_x[: min(rna_x.shape[0], 64)])  # bulk pairs: log RNA, signed RPPA by nature
    if single_cell:
        if protein_kind == "signed":
            logger.warning("corpus %s: protein values are signed (CLR or z-scores): trained as given, scaled per "
                           "cell; a log1p-count output cannot be learnt from them (raw ADT counts give it)",
                           source.name)
        if rna_kind in ("log", "linear"):
            logger.warning("corpus %s: RNA values are normalised, not counts: read as the tokenizer reads such input "
                           "at prediction (see its report); raw counts match the pre-training best", source.name)
    at_background = {}
    if single_cell:
        if protein_kind == "counts" and rna_kind == "counts":
            at_background = proteins_at_background(rna_x[train_rows], values_all[train_rows], gene_report,
                                                   protein_report)
        else:  # said: a failed antibody (CD45 counted in no cell) is then trained on as a real zero
            logger.warning("corpus %s: the check for antibodies at background needs counts on both sides (RNA: %s, "
                           "protein: %s values): not run, every protein column is trained on", source.name, rna_kind,
                           protein_kind)
    if at_background:
        logger.warning("corpus %s: %d protein column(s) at background, counted (>= %d) in under %.0f %% as many "
                       "training cells as their mRNA is detected in, and not trained on unless the run keeps them "
                       "(--train_background_proteins): %s",
                       source.name, len(at_background), SHOWN_COUNTS, 100 * BACKGROUND_RATIO,
                       ", ".join(f"{v['protein']} ({v['protein_shown']:.1%} of cells vs mRNA {v['mrna_detected']:.1%})"
                                 for v in at_background.values()))
    obs = np.asarray(rna.obs_names).astype(str)

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        splits: dict[str, Any] = {}
        layout = (("train", train_rows, num_shards), ("validation", validation_rows, min(1, len(validation_rows))),
                  ("eval", eval_rows, eval_shards))
        for split, rows, k in layout:
            shards = []
            if len(rows):
                for i, chunk in enumerate(np.array_split(rows, k)):
                    fname = f"{split}-{i:05d}-of-{k:05d}.parquet"
                    block = rna_x[chunk]
                    block.sum_duplicates()
                    table = pa.table(
                        {
                            "cell_id": obs[chunk].tolist(),
                            "row": chunk.astype(np.int64),
                            "split": [split] * len(chunk),
                            "rna_indices": [block.indices[block.indptr[j]:block.indptr[j + 1]].astype(np.int32)
                                            for j in range(len(chunk))],
                            "rna_values": [block.data[block.indptr[j]:block.indptr[j + 1]].astype(np.float32)
                                           for j in range(len(chunk))],
                            "protein_values": list(values_all[chunk]),
                        },
                        schema=SCHEMA,
                    )
                    pq.write_table(table, tmp / fname)
                    shards.append({"file": fname, "rows": len(chunk), "bytes": (tmp / fname).stat().st_size})
            splits[split] = {"n_cells": int(len(rows)), "shards": shards}
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": source.name,
            "n_cells": int(n_cells),
            "n_cells_source": int(rna.n_obs),
            "splits": splits,
            "split_seed": int(split_seed),
            "eval_fraction": float(eval_fraction),
            "eval_fold": int(eval_fold),
            "validation_fraction": float(validation_fraction),
            "genes": genes,
            "proteins": proteins,
            "protein_is_control": is_control,
            # antibodies that counted nothing their mRNA did not (proteins_at_background), per column
            "protein_at_background": [i in at_background for i in range(len(proteins))],
            "protein_background_evidence": list(at_background.values()),
            "n_genes_mapped": int(gene_report.n_mapped),
            "n_proteins_mapped": int(protein_report.n_mapped),
            "proteins_mapped": protein_report.mapped,
            # tokenization.value_kinds: counts, log, linear or signed (before 2026-12: counts or continuous)
            "protein_values_kind": protein_kind,
            "rna_values_kind": rna_kind,
            "source_files": [_file_info(p) for p in source.files],
            "vocabulary": _vocab_summary(tokenizer),
        }
        manifest["fingerprint"] = _fingerprint(manifest)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _fingerprint(manifest: dict[str, Any]) -> str:
    keys = ("name", "n_cells", "split_seed", "eval_fraction", "source_files", "splits")
    fields = {k: manifest[k] for k in keys}
    if manifest.get("eval_fold"):  # other test cells; fold 0 keeps the fingerprints of earlier corpora
        fields["eval_fold"] = manifest["eval_fold"]
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cell_ids(corpus_dir: str | os.PathLike[str], splits: Sequence[str]) -> set[str]:
    """The cells (``cell_id``, the source obs names) of a built corpus's ``splits`` ("train", "validation",
    "eval")."""
    manifest = load_manifest(corpus_dir, check_files=False)
    return {cell for split in splits for shard in manifest["splits"].get(split, {}).get("shards", [])
            for cell in pq.read_table(Path(manifest["dir"]) / shard["file"], columns=["cell_id"])
            .column("cell_id").to_pylist()}


def load_manifest(corpus_dir: str | os.PathLike[str], check_files: bool = True) -> dict[str, Any]:
    """Read and check a corpus manifest: every shard exists, is non-empty and has the recorded rows."""
    corpus_dir = Path(corpus_dir)
    path = corpus_dir / MANIFEST
    if not path.is_file():
        raise CorpusError(f"{corpus_dir} is not a corpus (no {MANIFEST}); build it with training.corpus.build_corpus")
    manifest = json.loads(path.read_text())
    manifest["dir"] = str(corpus_dir.resolve())
    if manifest.get("n_cells", 0) == 0 or not manifest["splits"]["train"]["shards"]:
        raise CorpusError(f"corpus {manifest.get('name')} at {corpus_dir} is empty (no training cells)")
    if check_files:
        for split in manifest["splits"]:
            for shard in manifest["splits"][split]["shards"]:
                f = corpus_dir / shard["file"]
                if not f.is_file():
                    raise CorpusError(f"corpus {manifest['name']}: shard {f} is missing")
                rows = pq.ParquetFile(f).metadata.num_rows
                if rows == 0:
                    raise CorpusError(f"corpus {manifest['name']}: shard {f} is empty (0 rows); rebuild the corpus")
                if rows != shard["rows"]:
                    raise CorpusError(
                        f"corpus {manifest['name']}: shard {f} has {rows} rows, the manifest says {shard['rows']}"
                    )
    return manifest


def held_out_rows(corpus_dir: str | os.PathLike[str]) -> np.ndarray:
    """Rows (in the source files) of the cells a prepared corpus holds out as its test cells, sorted."""
    corpus_dir = Path(corpus_dir)
    shards = load_manifest(corpus_dir)["splits"]["eval"]["shards"]
    return np.sort(np.concatenate([pq.read_table(corpus_dir / s["file"], columns=["row"])["row"].to_numpy()
                                   for s in shards]))


def _is_up_to_date(manifest_path: Path, source: CorpusSource, num_shards: int, eval_fraction: float,
                   split_seed: int, max_cells: int | None, validation_fraction: float = 0.0,
                   eval_fold: int = 0) -> bool:
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    n_source = manifest.get("n_cells_source", 0)
    want_cells = n_source if max_cells is None else min(max_cells, n_source)
    return (
        manifest.get("format_version") == FORMAT_VERSION
        and _same_files(manifest.get("source_files"), [_file_info(p) for p in source.files])
        and len(manifest["splits"]["train"]["shards"]) == num_shards
        and manifest.get("eval_fraction") == float(eval_fraction)
        and manifest.get("validation_fraction", 0.0) == float(validation_fraction)
        and manifest.get("split_seed") == int(split_seed)
        and manifest.get("eval_fold", 0) == int(eval_fold)
        and manifest.get("n_cells") == want_cells
        and "protein_at_background" in manifest  # built before the background check: build again
    )


def _same_files(recorded: list[dict[str, Any]] | None, current: list[dict[str, Any]]) -> bool:
    """The source files are those recorded: compared with mtime_ns where recorded; a manifest written before it
    was recorded compares path, size and mtime in seconds (so its corpus and fingerprint stay as they were)."""
    if recorded is None or len(recorded) != len(current):
        return False
    return all(old == {k: v for k, v in new.items() if k in old} for old, new in zip(recorded, current, strict=True))


CORPUS_FILE_SUFFIXES = (".parquet",)  # with the manifest: what a build writes (a half-deleted one is replaceable)


def _check_replaceable(out_dir: Path, source: CorpusSource) -> None:
    """A build replaces ``out_dir`` as a whole: refuse a folder that holds the source's files, or files that are no
    corpus (a data folder named as the set: building into the cache dir ``data`` erased ``data/pbmc``'s h5ad files)."""
    target = out_dir.resolve()
    for path in source.files:
        if Path(path).resolve().is_relative_to(target):
            raise CorpusError(f"the corpus of {source.name} would be written to {out_dir}, which holds its source file "
                              f"{path}: a build replaces that folder as a whole. Build it elsewhere (e.g. "
                              "--corpus_cache_dir corpora)")
    if out_dir.is_symlink():
        raise CorpusError(f"the corpus folder {out_dir} is a symbolic link: a build replaces the folder as a whole; "
                          "give the folder it points to, or another one")
    if out_dir.is_file():
        raise CorpusError(f"the corpus folder {out_dir} is a file: give a folder for the corpus")
    if out_dir.is_dir() and not (out_dir / MANIFEST).is_file():
        # a build stopped while replacing the folder leaves shards without a manifest: those may go
        foreign = next((p for p in out_dir.iterdir() if not p.name.startswith(".")
                        and not (p.is_file() and p.name.endswith(CORPUS_FILE_SUFFIXES))), None)
        if foreign is not None:
            raise CorpusError(f"{out_dir} holds files that are no corpus (e.g. {foreign.name}): a build replaces the "
                              "folder as a whole. Give an empty or new folder for the corpus (--corpus_cache_dir)")


# a built corpus's split options: a folder passed as it is keeps its own (its test cells are fixed in it)
_SPLIT_OPTIONS = {"eval_fraction": 0.2, "validation_fraction": 0.0, "split_seed": 0, "eval_fold": 0}


def _check_split_options(folder: Path, asked: dict[str, float], given: set[str] | None = None) -> None:
    """A built corpus passed as its folder has its split in it: options asking another (``--eval_fold 2`` to
    cross-validate) were dropped in silence, so every fold tested the same cells. Refused when asked for: ``given``
    (the options the command line or config named, even at their default), else those off their default; a default
    nobody asked for that differs from the folder's is said and the folder's split kept."""
    manifest = json.loads((folder / MANIFEST).read_text())
    built = {name: manifest.get(name, default) for name, default in _SPLIT_OPTIONS.items()}
    differing = {name: value for name, value in asked.items() if float(value) != float(built[name])}
    explicit = {name: value for name, value in differing.items()
                if (given is not None and name in given) or float(value) != float(_SPLIT_OPTIONS[name])}
    if explicit:
        raise CorpusError(
            f"the corpus folder {folder} was built with {', '.join(f'{n} {built[n]}' for n in explicit)}; this run "
            f"asks {', '.join(f'{n} {v}' for n, v in explicit.items())}, which only a new build gives (its test cells "
            "are fixed in the folder): pass the source files (RNA.h5ad:PROTEIN.h5ad) instead of the built folder"
        )
    if differing:
        logger.info("corpus %s keeps the split it was built with (%s)", folder,
                    ", ".join(f"{n} {built[n]}" for n in differing))


def prepare_corpus(
    spec: str,
    cache_dir: str | os.PathLike[str],
    tokenizer,
    num_shards: int = 4,
    eval_fraction: float = 0.2,
    split_seed: int = 0,
    max_cells: int | None = None,
    validation_fraction: float = 0.0,
    eval_fold: int = 0,
    given_options: set[str] | None = None,
) -> Path:
    """A built corpus folder for ``spec``: itself when it holds a manifest (its split must be the one asked:
    ``given_options`` names the split options the user gave, see :func:`_check_split_options`), else built (or
    reused) in ``cache_dir``.

    Call on one process only (the main one) and let the others wait; returns the folder.
    """
    path = Path(spec)
    if path.is_dir() and (path / MANIFEST).is_file():
        _check_split_options(path, {"eval_fraction": eval_fraction, "validation_fraction": validation_fraction,
                                    "split_seed": split_seed, "eval_fold": eval_fold}, given_options)
        return path
    source = find_source(spec)
    out = Path(cache_dir) / source.name
    if not _is_up_to_date(out / MANIFEST, source, num_shards, eval_fraction, split_seed, max_cells,
                          validation_fraction, eval_fold):
        build_corpus(source, out, tokenizer, num_shards=num_shards, eval_fraction=eval_fraction,
                     split_seed=split_seed, max_cells=max_cells, validation_fraction=validation_fraction,
                     eval_fold=eval_fold)
    return out
