"""Paired RNA + protein sets for ``benchmarks/quality.py``: QC, split, gene selection, prepared files.

Protocol (the same for every set and every method):

1. Cells: ``reapseq_pbmc`` keeps cells with >= 200 detected genes and < 5 % mitochondrial (``MT-``)
   counts; other sets are used as shipped. An optional cap (``max_cells``) draws a random subset with
   ``numpy.random.default_rng(0)`` (sorted, so the source order is kept).
2. Proteins: the tokenizer's panel rules decide; isotype/blank controls (``var['is_control']``), proteins
   that do not map to a token and second barcodes of one protein (duplicates) are dropped. Targets are
   ``log1p`` of the raw ADT counts of the kept proteins.
3. Split: 80/20 with ``default_rng(0).permutation(n_cells)`` — exactly what ``training.corpus.build_corpus``
   draws for ``--split_seed 0 --eval_fraction 0.2`` on the prepared file, and the benchmark checks the
   built corpus's ``eval`` rows against it. Every method trains on the train rows only and is scored on
   the eval rows.
4. Genes: log1p(CP10k) of the RNA (library size over all genes); the ``n_genes`` genes that map to the
   vocabulary with the largest variance over the *training* cells only (RNA only, no protein
   information), in decreasing order of variance. The model sees them in that order (``--truncation
   first`` keeps them all); the PCA baselines use the same genes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

# ../shared beside the repository (SCTRANSLATOR_SHARED overrides it, as for the tests)
SHARED_DIR = Path(os.environ.get("SCTRANSLATOR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA_DIR = SHARED_DIR / "data"
VOCAB_DIR = SHARED_DIR / "vocab"
SETS = ("eccite", "reapseq_pbmc", "neurips_bmmc", "tenx_pbmc10k_s200", "eccite_ctcl")
DEFAULT_SETS = ("eccite", "reapseq_pbmc", "neurips_bmmc", "tenx_pbmc10k_s200")
QC_SETS = {"reapseq_pbmc": {"min_genes": 200, "max_mito_fraction": 0.05}}


@dataclass
class PairedSet:
    name: str
    counts: sp.csr_matrix  # cells x all genes, raw RNA counts (after QC / subsampling)
    genes: list[str]  # all gene names
    gene_tokens: np.ndarray  # token id per gene (-1 = unmapped)
    protein_counts: np.ndarray  # cells x kept proteins, raw
    proteins: list[str]  # kept protein names (mapped, no controls, no duplicates)
    protein_tokens: np.ndarray
    obs_names: list[str]
    train: np.ndarray  # row indices into the cells above
    eval: np.ndarray
    selected: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # gene indices, by variance
    notes: list[str] = field(default_factory=list)

    @property
    def targets(self) -> np.ndarray:
        return np.log1p(self.protein_counts.astype(np.float64))


def lognorm(counts: sp.spmatrix) -> sp.csr_matrix:
    """log1p(CP10k) with library sizes over every gene of ``counts``."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    totals[totals == 0] = 1.0
    return sp.csr_matrix(sp.diags(1e4 / totals) @ counts).log1p()


def split_rows(n_cells: int, seed: int = 0, eval_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The corpus builder's split (``training/corpus.py``): permutation, first ``round(n·f)`` held out."""
    order = np.random.default_rng(seed).permutation(n_cells)
    n_eval = int(round(n_cells * eval_fraction))
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])


def qc_keep(name: str, counts: sp.spmatrix, gene_names) -> np.ndarray:
    """(cells,) True for cells that pass ``name``'s QC (``QC_SETS``; every cell for sets without one).
    The benchmark and the pre-training corpus (``training/pretrain.py``) both apply it."""
    if name not in QC_SETS:
        return np.ones(counts.shape[0], bool)
    qc = QC_SETS[name]
    counts = sp.csr_matrix(counts)
    mito = np.asarray([str(g).upper().startswith("MT-") for g in gene_names])
    totals = np.asarray(counts.sum(axis=1)).ravel()
    mito_frac = np.asarray(counts[:, mito].sum(axis=1)).ravel() / np.maximum(totals, 1)
    return (np.diff(counts.indptr) >= qc["min_genes"]) & (mito_frac < qc["max_mito_fraction"])


def load_set(name: str, tokenizer, max_cells: int | None = None, data_dir: Path = DATA_DIR) -> PairedSet:
    rna = ad.read_h5ad(data_dir / f"{name}_rna.h5ad")
    prot = ad.read_h5ad(data_dir / f"{name}_adt.h5ad")
    if list(rna.obs_names) != list(prot.obs_names):
        raise ValueError(f"{name}: RNA and ADT cells differ")
    counts = sp.csr_matrix(rna.X, dtype=np.float32)
    notes = []
    keep = qc_keep(name, counts, rna.var_names)
    if name in QC_SETS:
        qc = QC_SETS[name]
        n_mito = sum(str(g).upper().startswith("MT-") for g in rna.var_names)
        notes.append(f"QC >= {qc['min_genes']} genes, < {qc['max_mito_fraction']:.0%} MT- counts "
                     f"({n_mito} MT- genes): {keep.sum()} of {rna.n_obs} cells kept")
    rows = np.flatnonzero(keep)
    if max_cells is not None and len(rows) > max_cells:
        rows = np.sort(np.random.default_rng(0).choice(rows, max_cells, replace=False))
        notes.append(f"random subset of {max_cells} cells (default_rng(0))")
    is_control = prot.var["is_control"].astype(bool).tolist() if "is_control" in prot.var else None
    report = tokenizer.resolve(list(prot.var_names), kind="protein", is_control=is_control)
    columns = list(report.columns)
    dropped = {"controls": report.controls, "unmapped": report.unmapped,
               "duplicates": [f"{a}={b}" for a, b, _ in report.duplicates]}
    notes.append("proteins dropped: " + "; ".join(f"{k} {v}" for k, v in dropped.items() if v))
    pcounts = prot.X.toarray() if sp.issparse(prot.X) else np.asarray(prot.X)
    genes = [str(g) for g in rna.var_names]
    gene_report = tokenizer.resolve(genes, kind="gene")
    gene_tokens = np.full(len(genes), -1, np.int64)
    for i, tid in zip(gene_report.columns, np.asarray(gene_report.token_ids)[list(gene_report.columns)],
                      strict=True):
        gene_tokens[i] = int(tid)
    train, eval_ = split_rows(len(rows))
    return PairedSet(
        name=name, counts=counts[rows], genes=genes, gene_tokens=gene_tokens,
        protein_counts=pcounts[rows][:, columns].astype(np.float64),
        proteins=[str(prot.var_names[i]) for i in columns],
        protein_tokens=np.asarray([int(report.token_ids[i]) for i in columns], np.int64),
        obs_names=[str(o) for o in rna.obs_names[rows]], train=train, eval=eval_, notes=notes,
    )


def select_genes(data: PairedSet, n_genes: int) -> np.ndarray:
    """Most variable mapped genes of log1p(CP10k) over the training cells, by decreasing variance."""
    x = lognorm(data.counts[data.train])
    mean = np.asarray(x.mean(axis=0)).ravel()
    var = np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean**2
    var[data.gene_tokens < 0] = -np.inf
    # one token per gene: keep the most variable gene of a token shared by several names
    order = np.argsort(-var, kind="stable")
    seen, chosen = set(), []
    for g in order:
        if not np.isfinite(var[g]):
            break
        t = int(data.gene_tokens[g])
        if t in seen:
            continue
        seen.add(t)
        chosen.append(g)
        if len(chosen) == n_genes:
            break
    data.selected = np.asarray(chosen, np.int64)
    return data.selected


def write_prepared(data: PairedSet, out_dir: Path, rna_values: str, all_genes: bool = False) -> Path:
    """``<out_dir>/<name>_rna.h5ad`` (selected genes, in selection order) + ``_adt.h5ad`` (kept proteins).

    ``rna_values``: ``counts`` (raw counts, the corpus's usual content) or ``lognorm`` (log1p CP10k with
    library sizes over all genes). The tokenizer scales either per cell (max-min) at training time.
    ``all_genes``: every gene of the set in the source's order, as ``<name>_allgenes_*`` (for models that
    read genes by identity and choose their own, e.g. the pre-trained default model).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    x = data.counts if rna_values == "counts" else lognorm(data.counts)
    columns = np.arange(len(data.genes)) if all_genes else data.selected
    x = sp.csr_matrix(x[:, columns], dtype=np.float32)
    obs = pd.DataFrame(index=pd.Index(data.obs_names, dtype=str))
    rna = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index([data.genes[g] for g in columns],
                                                                   dtype=str)))
    rna.var_names_make_unique()
    prot = ad.AnnData(X=sp.csr_matrix(data.protein_counts.astype(np.float32)), obs=obs.copy(),
                      var=pd.DataFrame({"is_control": False}, index=pd.Index(data.proteins, dtype=str)))
    base = out_dir / (f"{data.name}_allgenes" if all_genes else data.name)
    rna.write_h5ad(f"{base}_rna.h5ad")
    prot.write_h5ad(f"{base}_adt.h5ad")
    return base
