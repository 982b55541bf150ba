"""Read the files cells come in: AnnData ``.h5ad``, MuData ``.h5mu``, Cell Ranger's HDF5 matrices (``.h5``) and
its Matrix Market folders (``matrix.mtx.gz`` + ``features.tsv.gz`` + ``barcodes.tsv.gz``, also GEO's prefixed files).

A Cell Ranger ``filtered_feature_bc_matrix.h5`` is what a 10x CITE-seq run hands its user: genes and
antibodies in one matrix, told apart by ``feature_type`` (kept as ``var["feature_types"]``, so each side reads
its own features, see :func:`tokenization.checks.modality`). Reading it needs only ``h5py``; it gives the X,
names and feature types of scanpy's ``read_10x_h5(..., gex_only=False)``, read whole into memory.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .checks import modality, modality_columns

__all__ = ["CELL_FILE_SUFFIXES", "PROTEIN_OBSM_KEYS", "is_matrix_market", "matrix_market_files",
           "is_delimited", "protein_side", "proteins_in_obsm", "read_10x_h5", "read_10x_mtx", "read_cells",
           "read_delimited", "read_h5mu", "read_pair", "require_file", "set_name"]

CELL_FILE_SUFFIXES = (".h5ad", ".h5", ".h5mu")
# MuData modality names of each side (muon writes 'rna' and 'prot'; other tools 'gex', 'adt', ...)
_MODALITIES = {"RNA": ("rna", "gex", "gene_expression"), "protein": ("prot", "adt", "protein", "cite", "antibody")}
# where a file with the genes in X keeps its antibodies: scvi-tools and totalVI's 'protein_expression' (a DataFrame,
# or an array with the names in uns['protein_names']), and what other tools name it; the first present is read
PROTEIN_OBSM_KEYS = ("protein_expression", "protein_counts", "protein", "proteins", "prot", "adt", "ADT",
                     "antibody_capture", "Antibody Capture", "cite", "CITE")


def require_file(path: Path, what: str) -> None:
    """A clear error when ``path`` is missing or is a folder (users pass folders by mistake); a Cell Ranger matrix
    folder (``matrix.mtx.gz`` ...) is read as it is."""
    if path.is_dir():
        if is_matrix_market(path):
            return
        if path.suffix == ".zarr" or (path / ".zgroup").is_file() or (path / "zarr.json").is_file():
            raise IsADirectoryError(f"{what} {path} is a zarr store, which is not read here: write it as .h5ad "
                                    "(anndata.read_zarr(path).write_h5ad('cells.h5ad')), or give the AnnData to the "
                                    "pipeline")
        raise IsADirectoryError(f"{what} {path} is a folder; give the .h5ad, .h5mu or Cell Ranger .h5 file inside it, "
                                "or a Cell Ranger matrix folder (matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz)")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")


def read_cells(path: str | os.PathLike[str], what: str = "file", backed: bool = False) -> Any:
    """The AnnData in ``path``: an ``.h5ad`` (opened backed with ``backed``: read in chunks later), the ``what``
    side of a MuData ``.h5mu``, a Cell Ranger ``.h5`` or matrix folder, a delimited table (:func:`read_delimited`;
    these read whole). A missing, damaged or unknown file is one clear error naming it."""
    import anndata

    path = Path(path)
    require_file(path, what)
    if is_matrix_market(path):
        return read_10x_mtx(path)
    suffix = path.suffix.lower()
    if suffix == ".h5":
        return read_10x_h5(path)
    if suffix == ".h5mu":
        return read_h5mu(path, what)
    if is_delimited(path):
        return read_delimited(path, what)
    if suffix != ".h5ad":
        kind = path.suffix or "a file without a suffix"
        raise ValueError(f"{path}: cells are read from .h5ad, .h5mu, Cell Ranger .h5 files or matrix folders and "
                         f"delimited tables (.csv, .tsv, .txt, also gzipped), not {kind}; convert it first (e.g. "
                         "anndata.read_loom, then .write_h5ad)")
    try:
        adata = anndata.read_h5ad(path, backed="r" if backed else None)
        has_x = not backed or "X" in adata.file._file  # backed files read X lazily: find a missing one now
    except Exception as error:  # damaged files raise h5py/anndata errors of many kinds
        raise ValueError(f"cannot read {path} as .h5ad ({type(error).__name__}: {error})") from error
    if not has_x:
        raise ValueError(f"{path} has no X matrix (the expression values); write them into X and save again")
    return adata


def read_h5mu(path: str | os.PathLike[str], what: str = "file", mdata: Any = None) -> Any:
    """The ``what`` side ("RNA file", "protein file") of a MuData file: its modality named as muon names it
    ('rna', 'prot') or as other tools do ('gex', 'adt', ...); for another ``what``, its only modality. Read whole
    (``mdata``: already read)."""
    mdata = mdata if mdata is not None else _read_mudata(path)
    side = next((key for key in _MODALITIES if what.startswith(key)), None)
    names = list(mdata.mod)
    if side is None:
        if len(names) == 1:
            return mdata.mod[names[0]]
        raise ValueError(f"{path} holds the modalities {names}: say which to read")
    muon = _MODALITIES[side][0]  # muon's own name first: a file may hold 'prot' and 'adt' (two normalisations)
    found = [muon] if muon in names else [name for name in names if name.lower() in _MODALITIES[side]]
    if len(found) != 1:
        raise ValueError(f"{path} holds the modalities {names}: the {side} side is read from one named "
                         f"{' or '.join(repr(n) for n in _MODALITIES[side])}; rename it "
                         f"(mdata.mod[{muon!r}] = mdata.mod.pop(name)) and save again")
    return mdata.mod[found[0]]


def _read_mudata(path: str | os.PathLike[str]) -> Any:
    try:
        import mudata
    except ImportError as error:
        raise ValueError(f"reading {path} (.h5mu) needs the optional package mudata (pip install mudata)") from error
    try:
        with warnings.catch_warnings():  # mudata's notice of its own next version, once per modality: not the user's
            warnings.filterwarnings("ignore", message=r"From 0\.4 \.update\(\) will not pull", category=FutureWarning)
            return mudata.read_h5mu(path)
    except Exception as error:  # damaged files raise h5py/anndata errors of many kinds
        raise ValueError(f"cannot read {path} as .h5mu ({type(error).__name__}: {error})") from error


_MTX_NAMES = ("matrix.mtx", "matrix.mtx.gz")
_DELIMITED = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
# a cell barcode in a name: 10x's 16 bases (AAACCTGAGAAGGCCT-1), Drop-seq's 12, sample prefixes around them
_BARCODE_IN_NAME_RE = re.compile(r"[ACGTN]{10,}")
_DELIMITED_ROWS_PER_CHUNK = 2000
_DELIMITED_VALUES_PER_CHUNK = 20_000_000  # about 160 MB as pandas parses them: a chunk's rows shrink as rows widen
# the first column's header where it names what the rows are
_CELL_WORDS_RE = re.compile(r"^(?:cells?|barcodes?|cell[ _.]?(?:ids?|names?|barcodes?)|obs(?:_names)?)$")
_FEATURE_WORDS_RE = re.compile(r"^(?:genes?|gene[ _.]?(?:ids?|names?|symbols?)|symbols?|features?|proteins?|"
                               r"antibod(?:y|ies)|adts?|tags?|var(?:_names)?|ensembl(?:[ _.]?ids?)?)$")


def _table_suffix(path: str | os.PathLike[str]) -> str:
    """A file's suffix before any ``.gz``, in lower case (``x.CSV.gz`` -> ``.csv``)."""
    return Path(Path(path).name.lower().removesuffix(".gz")).suffix


def is_delimited(path: str | os.PathLike[str]) -> bool:
    """True for a delimited text table of values (``.csv``, ``.tsv``, ``.txt``, each maybe ``.gz``), as GEO holds
    many CITE-seq sets (GSE100866's ``..._RNA_umi.csv.gz``)."""
    return _table_suffix(path) in _DELIMITED


def _separator(path: Path) -> str:
    """The separator a table's second line (its first of values) splits on into the most fields: the suffix's own
    first, then tabs, commas, semicolons and runs of spaces (R's write.table writes spaces by default; a .txt may hold
    commas, a .csv tabs)."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
        handle.readline()
        line = handle.readline().rstrip("\r\n")
    own = _DELIMITED[_table_suffix(path)]
    fields = {sep: len(re.split(sep, line.strip()) if sep == r"\s+" else line.split(sep))
              for sep in dict.fromkeys((own, "\t", ",", ";", r"\s+"))}
    best = max(fields.values())
    return own if fields[own] == best else next(sep for sep, n in fields.items() if n == best)


def read_delimited(path: str | os.PathLike[str], what: str = "file") -> Any:
    """A delimited table of values with names in its first row and column, as an AnnData of cells x features. GEO
    and R write features x cells (genes in rows, cells in columns), pandas cells x features: the first column's header
    says which where it names the rows (``cell``, ``barcode``; ``gene``, ``protein``), else the axis whose names hold
    cell barcodes is the cells', or else the axis of numbered names (``cell_1``, ``c2``); when neither
    tells, features in rows (with a warning saying so). Read in chunks of
    rows into a sparse matrix."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    path = Path(path)
    try:
        sep = _separator(path)
        head = pd.read_csv(path, sep=sep, index_col=0, nrows=0)
        columns = [str(c) for c in head.columns]
        if not columns:
            raise ValueError("no column names in its first row")
        # the header as written: pandas renames a repeated name (a cell listed twice becomes X.1), which would hide
        # the repeat from the checks that refuse it
        written = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
        if len(written) in (len(columns), len(columns) + 1):  # R's write.table leaves the first field out
            columns = [str(c) for c in written[len(written) - len(columns):]]
        rows: list[str] = []
        blocks = []
        empty = np.ones(len(columns), dtype=bool)  # a trailing separator adds a column with no values
        chunk_rows = max(1, min(_DELIMITED_ROWS_PER_CHUNK, _DELIMITED_VALUES_PER_CHUNK // len(columns)))
        for chunk in pd.read_csv(path, sep=sep, index_col=0, chunksize=chunk_rows):
            if chunk.empty:
                continue
            text = next((c for c, kind in chunk.dtypes.items()
                         if not pd.api.types.is_numeric_dtype(kind) and chunk[c].notna().any()), None)
            if text is not None:  # pandas reads a column with any non-number in it as text
                numbers = pd.to_numeric(chunk[text], errors="coerce")
                row = int(np.flatnonzero(numbers.isna() & chunk[text].notna())[0])
                raise ValueError(f"row {str(chunk.index[row])!r}, column {str(text)!r} holds "
                                 f"{chunk[text].iloc[row]!r}, not a number")
            values = chunk.to_numpy(dtype=np.float32)
            empty &= np.isnan(values).all(axis=0)
            rows.extend(map(str, chunk.index))
            blocks.append(sp.csr_matrix(values))
    except ValueError as error:
        raise ValueError(f"cannot read {path} as a {what} table ({error}); it needs names in its first row and "
                         "column and numbers elsewhere") from error
    except Exception as error:  # pandas' parser and gzip raise errors of many kinds for damaged files
        raise ValueError(f"cannot read {path} as a {what} table ({type(error).__name__}: {error})") from error
    if not rows:
        raise ValueError(f"{path} holds no rows of values, only its header")
    matrix = sp.vstack(blocks).tocsr()
    unnamed = np.array([c == "" or c.startswith("Unnamed: ") for c in columns]) & empty
    if unnamed.any():  # the empty column a trailing separator makes
        matrix = matrix[:, np.flatnonzero(~unnamed)]
        columns = [c for c, drop in zip(columns, unnamed, strict=True) if not drop]
    # what the rows are: the first column's header says it where it names them (cell / barcode, gene / protein)
    said = str(head.index.name or "").strip().lower()
    rows_are = ("cells" if _CELL_WORDS_RE.match(said) else "features" if _FEATURE_WORDS_RE.match(said) else None)
    barcodes_in = [np.mean([bool(_BARCODE_IN_NAME_RE.search(n)) for n in names[:2000]]) for names in (rows, columns)]
    if rows_are is None and min(barcodes_in) >= 0.5:  # antibody tags named with their barcodes (CD3-CTCATTGTAACTCCT)
        rows_are = "cells" if len(rows) > len(columns) else "features"  # and cells: a panel has fewer tags than cells
    if rows_are is None and max(barcodes_in) < 0.5:  # no barcodes: cells named by a stem and a number
        numbered = [_numbered(names) for names in (rows, columns)]  # cell_1, cell_2 ... (bare numbers are not)
        rows_are = "cells" if numbered == [True, False] else "features" if numbered == [False, True] else None
    if rows_are == "cells" or (rows_are is None and barcodes_in[0] >= 0.5 and barcodes_in[1] < 0.5):
        cells, features = rows, columns  # cells x features, as pandas writes an AnnData's table
    else:
        if rows_are is None and barcodes_in[1] < 0.5:
            warnings.warn(f"{path}: neither its rows nor its columns are named by cell barcodes; read as features x "
                          f"cells (its {len(rows):,} rows as {what.split()[0]} features, its {len(columns):,} columns "
                          "as cells), as GEO and R write tables. If its rows are the cells, write it transposed",
                          UserWarning, stacklevel=3)
        cells, features, matrix = columns, rows, matrix.T.tocsr()
    return anndata.AnnData(X=matrix, obs=pd.DataFrame(index=pd.Index(cells, dtype=str)),
                           var=pd.DataFrame(index=pd.Index(features, dtype=str)))


_NUMBERED_NAME_RE = re.compile(r"^(\D*?)[ _.-]?(\d+)$")


def _numbered(names: list[str]) -> bool:
    """Names that number things: at least 10, nearly all one stem and numbers filling at least half their range
    (``cell_1`` .. ``cell_500`` less filtered cells, ``C12``), as cells are named where they have no barcode.
    Genes (``CD4``, ``CD8``, ``CD19``; Entrez ids) share a stem at most with numbers far apart."""
    sample = names[:2000]
    numbers: dict[str, set[int]] = {}
    for name in sample:
        m = _NUMBERED_NAME_RE.match(name.strip())
        if m and m.group(1):  # bare numbers are as likely Entrez ids (dense from 1: 0.81 of 1..2,475)
            numbers.setdefault(m.group(1).lower(), set()).add(int(m.group(2)))
    if len(sample) < 10 or not numbers:
        return False
    found = max(numbers.values(), key=len)
    return len(found) >= 0.9 * len(sample) and len(found) >= 0.5 * (max(found) - min(found) + 1)


def is_matrix_market(path: str | os.PathLike[str]) -> bool:
    """True for a Cell Ranger matrix folder (holding ``matrix.mtx[.gz]``, maybe prefixed as GEO writes them:
    ``GSM..._matrix.mtx.gz``) or for such a matrix file itself."""
    path = Path(path)
    if path.is_dir():
        return any(p.name.endswith(_MTX_NAMES) for p in path.iterdir())
    return path.name.endswith(_MTX_NAMES)


def matrix_market_files(path: Path) -> tuple[Path, Path, Path]:
    """(matrix, features, barcodes) of a matrix folder or matrix file: ``PREFIXfeatures.tsv[.gz]`` (or v2's
    ``genes.tsv``) and ``PREFIXbarcodes.tsv[.gz]`` beside ``PREFIXmatrix.mtx[.gz]``."""
    if path.is_dir():
        matrices = sorted(p for p in path.iterdir() if p.name.endswith(_MTX_NAMES))
        plain = {p.name for p in matrices}
        matrices = [p for p in matrices if not (p.name.endswith(".gz") and p.name[:-3] in plain)]  # gunzip -k
        if not matrices:
            raise FileNotFoundError(f"{path} holds no Cell Ranger matrix (matrix.mtx.gz)")
        if len(matrices) > 1:
            raise ValueError(f"{path} holds {len(matrices)} matrices ({', '.join(p.name for p in matrices[:4])}): "
                             "give the matrix file of the sample to read")
        path = matrices[0]
    prefix = path.name[: path.name.index("matrix.mtx")]

    def beside(*names: str) -> Path | None:
        return next((path.parent / f"{prefix}{name}{gz}" for name in names for gz in (".gz", "")
                     if (path.parent / f"{prefix}{name}{gz}").is_file()), None)

    features, barcodes = beside("features.tsv", "genes.tsv"), beside("barcodes.tsv")
    if features is None or barcodes is None:
        missing = [f"{prefix}{n}.gz" for n, f in (("features.tsv", features), ("barcodes.tsv", barcodes)) if f is None]
        raise FileNotFoundError(f"{path} is a Cell Ranger matrix, but {' and '.join(missing)} (or without .gz) "
                                f"is not beside it")
    return path, features, barcodes


def read_10x_mtx(path: str | os.PathLike[str]) -> Any:
    """Cells x features AnnData of a Cell Ranger Matrix Market folder (or its matrix file): the names and feature
    types of :func:`read_10x_h5` (v3 ``features.tsv``: id, name, type; v2 ``genes.tsv``: id, name; CITE-seq-Count's
    ``umi_count`` folder: one column of tags, no type). Counts as
    float32 CSR, barcodes as obs_names."""
    import pandas as pd
    import scipy.io
    import scipy.sparse as sp

    matrix, features, barcodes = matrix_market_files(Path(path))
    try:
        counts = sp.csr_matrix(scipy.io.mmread(matrix).T, dtype=np.float32)  # stored features x cells
        table = pd.read_csv(features, sep="\t", header=None, dtype=str, keep_default_na=False)
        cells = pd.read_csv(barcodes, sep="\t", header=None, dtype=str, keep_default_na=False)[0]
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"cannot read {matrix} as a Cell Ranger matrix ({type(error).__name__}: {error})") from error
    if counts.shape != (len(cells), len(table)):
        raise ValueError(f"{matrix} is {counts.shape[1]} features x {counts.shape[0]} cells, but {features.name} "
                         f"lists {len(table)} features and {barcodes.name} {len(cells)} cells: are they one sample's?")
    var = pd.DataFrame({"gene_ids": table[0].to_numpy()},
                       index=pd.Index((table[1] if table.shape[1] > 1 else table[0]).to_numpy(), dtype=str))
    if table.shape[1] > 1:  # v2 genes.tsv (id, name) holds genes; one column of names (CITE-seq-Count) says nothing
        var["feature_types"] = table[2].to_numpy() if table.shape[1] > 2 else "Gene Expression"
    return _cells_by_features(counts, pd.DataFrame(index=pd.Index(cells.to_numpy(), dtype=str)), var)


def read_10x_h5(path: str | os.PathLike[str]) -> Any:
    """Cells x features AnnData of a Cell Ranger HDF5 matrix: v3+ (``/matrix`` with ``features``: gene symbols
    as var_names, Ensembl ids in ``var["gene_ids"]``, ``var["feature_types"]``) or v2 (one group per genome,
    genes only). Counts as float32 CSR, barcodes as obs_names."""
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
    return _cells_by_features(counts, obs, var)


def _cells_by_features(counts: Any, obs: Any, var: Any) -> Any:
    """The AnnData of a Cell Ranger matrix read by hand (.h5 or Matrix Market)."""
    import anndata

    with warnings.catch_warnings():  # names repeat (a few symbols; an antibody named as its gene): the tokenizer
        warnings.filterwarnings("ignore", "Variable names are not unique")  # reports such columns itself
        return anndata.AnnData(counts, obs=obs, var=var)


def _text(dataset: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dataset[:]]


_CELL_RANGER_FILES = ("filtered_feature_bc_matrix", "raw_feature_bc_matrix", "sample_filtered_feature_bc_matrix",
                      "sample_raw_feature_bc_matrix", "filtered_gene_bc_matrices_h5", "raw_gene_bc_matrices_h5")


def set_name(path: str | os.PathLike[str]) -> str:
    """A paired set's name from its (RNA) file: the stem less ``_rna``; for Cell Ranger's own file names, which
    every run shares, the run's folder (``RUN/outs/filtered_feature_bc_matrix.h5`` -> ``RUN``); for a matrix file,
    GEO's prefix (``GSM1_matrix.mtx.gz`` -> ``GSM1``) or its folder's name."""
    path = Path(path)
    if path.name.endswith(_MTX_NAMES):
        prefix = path.name[: path.name.index("matrix.mtx")].rstrip("_-.")
        if prefix:
            return prefix
        path = path.parent
    stem = path.name.removesuffix(".h5ad").removesuffix(".h5mu").removesuffix(".h5")
    if is_delimited(path):  # GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz
        stem = Path(stem.removesuffix(".gz")).stem
    stem = stem.removesuffix("_rna")
    if stem not in _CELL_RANGER_FILES:
        return stem
    folders = [p.name for p in path.absolute().parents if p.name and p.name not in ("outs", "count")]
    return folders[0] if folders else stem


def proteins_in_obsm(adata: Any, path: str | os.PathLike[str]) -> Any | None:
    """The antibodies a file keeps beside its genes in ``obsm`` (:data:`PROTEIN_OBSM_KEYS`), as an AnnData of the
    same cells (X: the values, var_names: the antibodies' names), or None when it keeps none there."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    obsm = getattr(adata, "obsm", None)
    key = next((k for k in PROTEIN_OBSM_KEYS if obsm is not None and k in obsm), None)
    if key is None:
        return None
    held = obsm[key]
    where = f"{path}'s obsm[{key!r}]"
    if isinstance(held, pd.DataFrame):
        names = [str(c) for c in held.columns]
        non_numeric = [str(c) for c, kind in held.dtypes.items() if not pd.api.types.is_numeric_dtype(kind)]
        if non_numeric:
            raise ValueError(f"{where} holds columns that are not numbers ({', '.join(non_numeric[:3])}); keep only "
                             "the antibodies' values there")
        values = held.to_numpy(dtype=np.float32)
    else:
        listed = next((adata.uns[k] for k in (f"{key}_names", "protein_names") if k in getattr(adata, "uns", {})),
                      None)
        if listed is None:
            raise ValueError(f"{where} holds {np.shape(held)[1]:,} antibodies without names: store it as a DataFrame "
                             "whose columns name them (as scvi-tools does), or list the names in uns['protein_names']")
        names = [str(n) for n in np.asarray(listed).ravel().tolist()]
        values = held.tocsr() if sp.issparse(held) else np.asarray(held)
        if len(names) != values.shape[1]:
            raise ValueError(f"{where} has {values.shape[1]:,} columns but uns lists {len(names):,} protein names")
    obs = pd.DataFrame(index=pd.Index(adata.obs_names, dtype=str))
    return anndata.AnnData(X=values, obs=obs, var=pd.DataFrame(index=pd.Index(names, dtype=str)))


def protein_side(adata: Any, path: str | os.PathLike[str]) -> Any:
    """The antibodies of a file given as both the RNA and the protein file: its antibody columns (told from its
    genes by feature types), else the antibodies it keeps in ``obsm`` (:func:`proteins_in_obsm`)."""
    columns, _ = modality_columns(getattr(adata, "var", None), "RNA")
    if columns is not None:
        return modality(adata, "protein")
    in_obsm = proteins_in_obsm(adata, path)
    if in_obsm is None:
        raise ValueError(f"{path} is given as both the RNA and the protein file, but it does not tell genes from "
                         "antibodies (var['feature_types'] with 'Gene Expression' and 'Antibody Capture', as Cell "
                         "Ranger writes them, or 'GEX' and 'ADT'), nor keeps antibodies in obsm (read from: "
                         f"{', '.join(PROTEIN_OBSM_KEYS[:4])}, ...); give the two files")
    return in_obsm


def read_pair(rna_path: str | os.PathLike[str], protein_path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """The RNA and protein AnnData of a paired set, each with its own features; one CITE-seq file given as both
    sides (a Cell Ranger .h5 or matrix folder, an .h5ad with feature types or with its antibodies in obsm, a MuData
    .h5mu) is read once."""
    same = Path(protein_path).resolve() == Path(rna_path).resolve()
    if same and Path(rna_path).suffix.lower() == ".h5mu":
        require_file(Path(rna_path), "RNA file")
        mdata = _read_mudata(rna_path)
        return read_h5mu(rna_path, "RNA file", mdata), read_h5mu(rna_path, "protein file", mdata)
    rna = read_cells(rna_path, "RNA file")
    if same:
        return modality(rna, "RNA"), protein_side(rna, rna_path)
    return modality(rna, "RNA"), modality(read_cells(protein_path, "protein file"), "protein")
