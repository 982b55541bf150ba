"""Read the files cells come in: AnnData ``.h5ad`` and Cell Ranger's HDF5 matrices (``.h5``).

A Cell Ranger ``filtered_feature_bc_matrix.h5`` is what a 10x CITE-seq run hands its user: genes and
antibodies in one matrix, told apart by ``feature_type`` (kept as ``var["feature_types"]``, so each side reads
its own features, see :func:`tokenization.checks.modality`). Reading it needs only ``h5py``; scanpy's
``read_10x_h5`` gives the same AnnData.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CELL_FILE_SUFFIXES", "read_10x_h5", "read_cells", "require_file"]

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
    if path.suffix == ".h5":
        return read_10x_h5(path)
    if path.suffix != ".h5ad":
        raise ValueError(f"{path}: cells are read from .h5ad files or Cell Ranger .h5 matrices, not "
                         f"{path.suffix or 'a file without a suffix'} (anndata.read_csv / read_mtx / read_loom, "
                         "then .write_h5ad, convert others)")
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
                    raise ValueError(f"expected Cell Ranger's /matrix group (or one genome group of v2); it holds "
                                     f"{sorted(f)}")
                group = f[genomes[0]]
                var = pd.DataFrame({"gene_ids": _text(group["genes"])}, index=_text(group["gene_names"]))
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
