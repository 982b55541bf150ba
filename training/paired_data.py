"""Paired RNA + protein sets for ``benchmarks/quality.py``: QC, split, gene selection, prepared files.

In ``training`` (below the benchmarks) because pre-training needs the same split: no pre-training
corpus may contain a benchmark's held-out cells (:func:`held_out_cells`).

Protocol (the same for every set and every method):

1. Cells: ``reapseq_pbmc`` keeps cells with >= 200 detected genes and < 5 % mitochondrial (``MT-``)
   counts; other sets are used as shipped. An optional cap (``max_cells``) draws a random subset with
   ``numpy.random.default_rng(0)`` (sorted, so the source order is kept).
2. Proteins: the tokenizer's panel rules decide; isotype/blank controls (``var['is_control']``), proteins
   that do not map to a token and second barcodes of one protein (duplicates) are dropped. Targets are
   the kept proteins on the log scale (``tokenization.value_kinds.to_log_scale``): ``log1p`` of ADT
   counts; RPPA and mass-spec values (signed or log) as they are.
3. Split: 80/20 with ``default_rng(0).permutation(n_cells)`` — exactly what ``training.corpus.build_corpus``
   draws for ``--split_seed 0 --eval_fraction 0.2`` on the prepared file (one function,
   ``training.corpus.split_cells``, serves both), and the benchmark checks the built corpus's ``eval`` rows
   against it. Every method trains on the train rows only and is scored on the eval rows. Cross-validation
   (``quality.py --folds K``) holds out the k-th of K blocks of the same permutation in round k (block 0
   of 5 is the 80/20 test split).
4. Genes: the RNA on the log scale (``training.baselines.rna_on_log_scale``: log1p(CP10k) of counts,
   library size over all genes; bulk log values as they are); the ``n_genes`` highly variable genes
   that map to the vocabulary, by Seurat's dispersion rule as scanpy implements it
   (``training.baselines.seurat_hvg``; identical to ``scanpy.pp.highly_variable_genes(flavor="seurat")``
   1.11.5 on eccite) over the *training* cells only (RNA only, no protein information), best first.
   The model sees them in that order (``--truncation first`` keeps them all); the PCA baselines use the
   same genes.

Any paired set can be used (``load_set(..., rna_path=, protein_path=)``, ``quality.py --data``): the two
files need the same cells (``obs_names``; the protein file is reordered to the RNA's order if needed).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from tokenization.cell_files import read_pair
from tokenization.checks import protein_in_rna_order
from tokenization.value_kinds import to_log_scale, value_kind
from training.baselines import rna_on_log_scale, seurat_hvg
from training.corpus import protein_values, split_cells

# ../shared beside the repository (SCTRANSLATOR_SHARED overrides it, as for the tests)
SHARED_DIR = Path(os.environ.get("SCTRANSLATOR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA_DIR = SHARED_DIR / "data"
VOCAB_DIR = SHARED_DIR / "vocab"
SETS = ("eccite", "reapseq_pbmc", "neurips_bmmc", "tenx_pbmc10k_s200", "eccite_ctcl")
DEFAULT_SETS = ("eccite", "reapseq_pbmc", "neurips_bmmc", "tenx_pbmc10k_s200")
QC_SETS = {"reapseq_pbmc": {"min_genes": 200, "max_mito_fraction": 0.05}}
# the cell caps of benchmarks/quality.py's budgets: a capped draw changes which cells are held out
MAX_CELLS = {"small": {"reapseq_pbmc": 2000}, "full": {}}


@dataclass
class PairedSet:
    name: str
    rna_values: sp.csr_matrix  # cells x all genes as the file holds them (after QC / subsampling)
    genes: list[str]  # all gene names
    gene_tokens: np.ndarray  # token id per gene (-1 = unmapped)
    protein_values: np.ndarray  # cells x kept proteins as the file holds them (NaN: not measured)
    proteins: list[str]  # kept protein names (mapped, no controls, no duplicates)
    protein_tokens: np.ndarray
    obs_names: list[str]
    train: np.ndarray  # row indices into the cells above
    eval: np.ndarray
    selected: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # gene indices, best first
    notes: list[str] = field(default_factory=list)
    rna_kind: str = "counts"  # tokenization.value_kinds
    protein_kind: str = "counts"

    @property
    def targets(self) -> np.ndarray:
        """The proteins on the log scale every method is scored on."""
        return to_log_scale(self.protein_values, self.protein_kind)

    @cached_property
    def rna_log(self) -> sp.csr_matrix:
        """The RNA on the log scale the baselines and the gene selection read."""
        return rna_on_log_scale(self.rna_values, self.rna_kind)

    @property
    def counts_only(self) -> str:
        """Why a count model (totalVI) cannot run on this set, or '' when both sides are counts."""
        kinds = {"RNA": self.rna_kind, "protein": self.protein_kind}
        return "; ".join(f"{side} values are {kind}, not counts" for side, kind in kinds.items() if kind != "counts")


def split_rows(n_cells: int, seed: int = 0, eval_fraction: float = 0.2, fold: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The corpus builder's split (:func:`training.corpus.split_cells`): (train, held-out) rows; ``fold`` k holds
    out the k-th block of ``round(n·f)`` cells of the permutation (the last fold: the rest; fold 0: the usual
    test cells)."""
    train, _, held_out = split_cells(n_cells, seed, eval_fraction, eval_fold=fold)
    return train, held_out


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


def pair_paths(name: str, data_dir: Path = DATA_DIR) -> tuple[Path, Path]:
    """``<name>_rna.h5ad`` and its protein file (``_adt.h5ad``, or ``_rppa.h5ad`` for bulk) in ``data_dir``."""
    rna = data_dir / f"{name}_rna.h5ad"
    for suffix in ("adt", "rppa"):
        if (data_dir / f"{name}_{suffix}.h5ad").exists():
            return rna, data_dir / f"{name}_{suffix}.h5ad"
    return rna, data_dir / f"{name}_adt.h5ad"


def load_set(name: str, tokenizer, max_cells: int | None = None, data_dir: Path = DATA_DIR,
             rna_path: Path | None = None, protein_path: Path | None = None, fold: int = 0,
             n_folds: int = 5) -> PairedSet:
    """A paired set: ``name``'s files in ``data_dir``, or the files given; its test cells are ``fold`` of
    ``n_folds`` (:func:`split_rows`; fold 0 of 5 is the 80/20 split every benchmark table uses)."""
    default_rna, default_protein = pair_paths(name, data_dir)
    # a CITE-seq file in one piece (an .h5ad with feature types, a Cell Ranger .h5) may be both files
    rna, prot = read_pair(rna_path or default_rna, protein_path or default_protein)
    prot, _ = protein_in_rna_order(name, rna.obs_names, prot)
    values = sp.csr_matrix(rna.X, dtype=np.float32)
    rna_kind = value_kind(values[: min(values.shape[0], 2000)])
    if rna_kind == "signed":
        raise ValueError(f"{name}: the RNA values are negative in places (centred or scaled?); pass raw counts "
                         "or log-scale values")
    notes = [f"RNA values: {rna_kind}"]
    keep = qc_keep(name, values, rna.var_names)
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
    whole, _, how = protein_values(prot)  # the counts beside normalised values, or CLR read back
    if how:
        warnings.warn(f"{name}: {how}", stacklevel=2)
        notes.append(how)
    pvalues = whole[rows][:, columns].astype(np.float64)
    protein_kind = value_kind(pvalues)
    notes.append(f"protein values: {protein_kind}")
    if protein_kind == "signed":  # centred CLR, z-scores: no counts to compare log1p predictions with
        warnings.warn(f"{name}: the protein values are signed (centred CLR or z-scores) and the file keeps no counts "
                      "beside them: scored as given, so the log1p-scale MSE and cosine mean nothing and the "
                      "correlations compare only with runs on the same normalisation; give raw ADT counts",
                      stacklevel=2)
    genes = [str(g) for g in rna.var_names]
    gene_report = tokenizer.resolve(genes, kind="gene")
    gene_tokens = np.full(len(genes), -1, np.int64)
    for i, tid in zip(gene_report.columns, np.asarray(gene_report.token_ids)[list(gene_report.columns)],
                      strict=True):
        gene_tokens[i] = int(tid)
    train, eval_ = split_rows(len(rows), eval_fraction=1 / n_folds, fold=fold)
    return PairedSet(
        name=name, rna_values=values[rows], genes=genes, gene_tokens=gene_tokens, protein_values=pvalues,
        proteins=[str(prot.var_names[i]) for i in columns],
        protein_tokens=np.asarray([int(report.token_ids[i]) for i in columns], np.int64),
        obs_names=[str(o) for o in rna.obs_names[rows]], train=train, eval=eval_, notes=notes,
        rna_kind=rna_kind, protein_kind=protein_kind,
    )


GENE_RULES = ("seurat", "variance")


def select_genes(data: PairedSet, n_genes: int, rule: str = "seurat") -> np.ndarray:
    """The ``n_genes`` highly variable vocabulary genes over the training cells, best first; of several names
    of one token, the better ranked one. ``rule``: "seurat" (Seurat's dispersion rule, the benchmark's
    protocol) or "variance" (highest variance of the log-scale RNA: the protocol before 2026-12-01, which
    keeps genes most cells express; ``benchmarks/gene_selection.py`` compares the two)."""
    candidates = data.gene_tokens >= 0
    if rule == "seurat":
        ranked = seurat_hvg(data.rna_log[data.train], len(data.genes), candidates=candidates)
    elif rule == "variance":
        x = data.rna_log[data.train]
        mean = np.asarray(x.mean(axis=0)).ravel()
        variance = np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean**2
        ranked = np.flatnonzero(candidates)[np.argsort(-variance[candidates], kind="stable")]
    else:
        raise ValueError(f"gene selection rule must be one of {GENE_RULES}, not {rule!r}")
    seen, chosen = set(), []
    for g in ranked:
        t = int(data.gene_tokens[g])
        if t not in seen:
            seen.add(t)
            chosen.append(g)
        if len(chosen) == n_genes:
            break
    data.selected = np.asarray(chosen, np.int64)
    return data.selected


def write_prepared(data: PairedSet, out_dir: Path, rna_values: str, all_genes: bool = False) -> Path:
    """``<out_dir>/<name>_rna.h5ad`` (selected genes, in selection order) + ``_adt.h5ad`` (kept proteins).

    ``rna_values``: ``counts`` (the values as the source holds them: raw counts for single-cell sets, the
    corpus's usual content) or ``lognorm`` (:attr:`PairedSet.rna_log`). The tokenizer scales either per
    cell (max-min) at training time.
    ``all_genes``: every gene of the set in the source's order, as ``<name>_allgenes_*`` (for models that
    read genes by identity and choose their own, e.g. the pre-trained default model).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    x = data.rna_values if rna_values == "counts" else data.rna_log
    columns = np.arange(len(data.genes)) if all_genes else data.selected
    x = sp.csr_matrix(x[:, columns], dtype=np.float32)
    obs = pd.DataFrame(index=pd.Index(data.obs_names, dtype=str))
    rna = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index([data.genes[g] for g in columns],
                                                                   dtype=str)))
    rna.var_names_make_unique()
    prot = ad.AnnData(X=data.protein_values.astype(np.float32), obs=obs.copy(),
                      var=pd.DataFrame({"is_control": False}, index=pd.Index(data.proteins, dtype=str)))
    base = out_dir / (f"{data.name}_allgenes" if all_genes else data.name)
    rna.write_h5ad(f"{base}_rna.h5ad")
    prot.write_h5ad(f"{base}_adt.h5ad")
    return base


def held_out_cells(name: str, tokenizer) -> set[str]:
    """obs names of ``name``'s test cells under every budget (the cell cap changes the split, e.g.
    reapseq_pbmc's 2,000-cell draw): cells that no pre-training corpus may contain."""
    held_out: set[str] = set()
    for cap in {caps.get(name) for caps in MAX_CELLS.values()}:
        data = load_set(name, tokenizer, cap)
        held_out.update(data.obs_names[i] for i in data.eval)
    return held_out
