"""Read the files cells come in: AnnData ``.h5ad`` and Cell Ranger's HDF5 matrices (``.h5``).

A Cell Ranger ``filtered_feature_bc_matrix.h5`` is what a 10x CITE-seq run hands its user: genes and
antibodies in one matrix, told apart by ``feature_type`` (kept as ``var["feature_types"]``, so each side reads
its own features, see :func:`tokenization.checks.modality`). Reading it needs only ``h5py``; it gives the X,
names and feature types of scanpy's ``read_10x_h5(..., gex_only=False)``, read whole into memory.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .checks import modality, modality_columns

__all__ = ["CELL_FILE_SUFFIXES", "check_one_piece", "read_10x_h5", "read_cells", "read_pair", "require_file",
           "set_name"]

CELL_FILE_SUFFIXES = (".h5ad", ".h5")


def require_file(path: Path, what: str) -> None:
    """A clear error when ``path`` is missing or is a folder (users pass folders by mistake)."""
    if path.is_dir():
        if any(path.glob("matrix.mtx*")):  # Cell Ranger's filtered_feature_bc_matrix/ folder
            raise IsADirectoryError(f"{what} {path} is a Cell Ranger matrix folder (matrix.mtx): give the run's .h5 "
                                    "(filtered_feature_bc_matrix.h5), or convert the folder with "
                                    "scanpy.read_10x_mtx(...).write_h5ad(...)")
        raise IsADirectoryError(f"{what} {path} is a folder; give the .h5ad or Cell Ranger .h5 file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")


def read_cells(path: str | os.PathLike[str], what: str = "file", backed: bool = False) -> Any:
    """The AnnData in ``path``: an ``.h5ad`` (opened backed with ``backed``: read in chunks later) or a Cell
    Ranger ``.h5`` (read whole). A missing, damaged or unknown file is one clear error naming it."""
    import anndata

    path = Path(path)
    require_file(path, what)
    suffix = path.suffix.lower()
    if suffix == ".h5":
        return read_10x_h5(path)
    if suffix != ".h5ad":
        raise ValueError(f"{path}: cells are read from .h5ad files or Cell Ranger .h5 matrices, not "
                         f"{path.suffix or 'a file without a suffix'}; convert it first (e.g. anndata.read_csv, "
                         "read_loom or scanpy.read_10x_mtx, then .write_h5ad)")
    try:
        adata = anndata.read_h5ad(path, backed="r" if backed else None)
        has_x = not backed or "X" in adata.file._file  # backed files read X lazily: find a missing one now
    except Exception as error:  # damaged files raise h5py/anndata errors of many kinds
        raise ValueError(f"cannot read {path} as .h5ad ({type(error).__name__}: {error})") from error
    if not has_x:
        raise ValueError(f"{path} has no X matrix (the expression values); write them into X and save again")
    return adata


def read_10x_h5(path: str | os.PathLike[str]) -> Any:
    """Cells x features AnnData of a Cell Ranger HDF5 matrix: v3+ (``/matrix`` with ``features``: gene symbols
    as var_names, Ensembl ids in ``var["gene_ids"]``, ``var["feature_types"]``) or v2 (one group per genome,
    genes only). Counts as float32 CSR, barcodes as obs_names."""
    import anndata
    import h5py
    import pandas as pd
    import scipy.sparse as sp

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                group = f["matrix"]
                features = group["features"]
                var = pd.DataFrame({"gene_ids": _text(features["id"]),
                                    "feature_types": _text(features["feature_type"])},
                                   index=_text(features["name"]))
            else:  # v2: /<genome>/{genes, gene_names, barcodes, data, indices, indptr, shape}
                genomes = [key for key in f if isinstance(f[key], h5py.Group) and "gene_names" in f[key]]
                if len(genomes) != 1:
                    anndata_hint = "; an AnnData saved as .h5: rename it to .h5ad" if "X" in f and "obs" in f else ""
                    raise ValueError(f"expected Cell Ranger's /matrix group (or one genome group of v2); it holds "
                                     f"{sorted(f)}{anndata_hint}")
                group = f[genomes[0]]
                var = pd.DataFrame({"gene_ids": _text(group["genes"]), "feature_types": "Gene Expression"},
                                   index=_text(group["gene_names"]))  # v2 holds genes only
            n_features, n_cells = (int(n) for n in group["shape"][:])
            # stored features x cells in CSC, which is cells x features in CSR
            counts = sp.csr_matrix((group["data"][:].astype(np.float32), group["indices"][:], group["indptr"][:]),
                                   shape=(n_cells, n_features))
            obs = pd.DataFrame(index=_text(group["barcodes"]))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"cannot read {path} as a Cell Ranger .h5 matrix ({type(error).__name__}: {error})") from error
    var.index.name = None
    with warnings.catch_warnings():  # names repeat (a few symbols; an antibody named as its gene): the tokenizer
        warnings.filterwarnings("ignore", "Variable names are not unique")  # reports such columns itself
        return anndata.AnnData(counts, obs=obs, var=var)


def _text(dataset: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dataset[:]]


_CELL_RANGER_FILES = ("filtered_feature_bc_matrix", "raw_feature_bc_matrix", "sample_filtered_feature_bc_matrix",
                      "sample_raw_feature_bc_matrix", "filtered_gene_bc_matrices_h5", "raw_gene_bc_matrices_h5")


def set_name(path: str | os.PathLike[str]) -> str:
    """A paired set's name from its (RNA) file: the stem less ``_rna``; for Cell Ranger's own file names, which
    every run shares, the run's folder (``RUN/outs/filtered_feature_bc_matrix.h5`` -> ``RUN``)."""
    path = Path(path)
    stem = path.name.removesuffix(".h5ad").removesuffix(".h5mu").removesuffix(".h5").removesuffix("_rna")
    if stem not in _CELL_RANGER_FILES:
        return stem
    folders = [p.name for p in path.absolute().parents if p.name and p.name not in ("outs", "count")]
    return folders[0] if folders else stem


def check_one_piece(adata: Any, path: str | os.PathLike[str]) -> None:
    """``path`` is given as both the RNA and the protein file: it must tell its genes from its antibodies."""
    columns, _ = modality_columns(getattr(adata, "var", None), "RNA")
    if columns is None:
        raise ValueError(f"{path} is given as both the RNA and the protein file, but it does not tell genes from "
                         "antibodies (var['feature_types'] with 'Gene Expression' and 'Antibody Capture', as Cell "
                         "Ranger writes them); give the two files")


def read_pair(rna_path: str | os.PathLike[str], protein_path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """The RNA and protein AnnData of a paired set, each with its own features; one CITE-seq file given as both
    sides (a Cell Ranger .h5, or an .h5ad with feature types) is read once."""
    rna = read_cells(rna_path, "RNA file")
    same = Path(protein_path).resolve() == Path(rna_path).resolve()
    if same:
        check_one_piece(rna, rna_path)
    prot = rna if same else read_cells(protein_path, "protein file")
    return modality(rna, "RNA"), modality(prot, "protein")
