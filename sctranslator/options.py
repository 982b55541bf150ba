"""What every model-running command shares: the model options, loading the model, reading name lists."""

from __future__ import annotations

import argparse
import csv
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from tokenization.cell_files import CELL_FILE_SUFFIXES, is_matrix_market, read_cells

__all__ = ["CONTEXT_BELOW", "DTYPES", "PROTEIN_CONTEXT_CHOICES", "add_model_options", "add_protein_context",
           "compute_dtype", "counted", "load_model_and_tokenizer", "names_argument", "rna_argument", "use_layer"]

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}

def load_model_and_tokenizer(model_id: str | None, device: str | None = None):
    """A model folder or hub id (None: the shipped default model) → (model in eval mode, tokenizer);
    clear errors for missing pieces. The weights stay float32: ``--dtype`` is a compute precision
    (:func:`compute_dtype`)."""
    from transformers import AutoModel

    from modeling_sctranslator.default_model import resolve_model_name
    from modeling_sctranslator.inference import resolve_device
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    from .hub import resolve_model_folder

    target = resolve_device(device)  # a wrong --device fails before minutes of loading
    folder = resolve_model_folder(resolve_model_name(model_id))  # names any missing or damaged file
    model = AutoModel.from_pretrained(folder)
    tokenizer = SCTranslatorTokenizer.from_pretrained(folder)
    return model.to(device=target).eval(), tokenizer


def compute_dtype(name: str | None):
    """``--dtype`` → the torch dtype of the matrix products (None: float32), with a note on what it changes."""
    import torch

    if not name or name == "float32":
        return None
    measured = ("x2.3 at 20,000 genes on CPUs with AVX512-BF16; a trained model's predictions keep their pattern "
                "(per-protein r >= 0.999 with float32), an untrained one's do not" if name == "bfloat16" else
                "speed and agreement with float32 were measured for bfloat16 only")
    print(f"note: {name} matrix products (weights and precision-sensitive steps stay float32): {measured} "
          "(README, 'Speed')", file=sys.stderr)
    return getattr(torch, DTYPES[name])


def _split_names(text: str) -> list[str]:
    """``"A, B,C"`` → ``["A", "B", "C"]`` (empty entries dropped)."""
    return [n.strip() for n in text.split(",") if n.strip()]


# A ``#`` at the start of a line or after a space starts a comment; one inside a name (``CD#1``) does not.
_COMMENT = re.compile(r"(^|\s)#.*")


# a table's column of names, by header (10x feature_reference.csv: id,name,...; a saved pandas column: its name)
_NAME_COLUMNS = ("name", "protein", "proteins", "antibody", "antibodies", "target", "gene", "genes", "feature_name",
                 "symbol")


def _names_from_table(lines: list[str], path: Path, what: str) -> list[str] | None:
    """The names in a table file (every line the same number of tab- or comma-separated fields, read as CSV:
    quoted fields keep their commas): its name column (by header), or the second of two columns whose first counts
    rows (pandas ``to_csv`` with the index from 0, R's ``write.csv`` row names from 1); a single column (a trailing
    delimiter or quotes, as spreadsheets write) less a header naming it. None for a file of names, one per line
    (``HLA-A,B,C`` keeps its commas). Read line by line, a table's rows were taken as panel labels (``1,CD8A``)
    whose first part named other proteins, silently."""
    if len(lines) < 2:
        return None
    for delimiter in ("\t", ","):
        if not any(delimiter in line or (delimiter == "," and '"' in line) for line in lines):
            continue
        rows = [[field.strip() for field in row] for row in csv.reader(lines, delimiter=delimiter)]
        if len({len(row) for row in rows}) != 1:
            continue
        filled = [j for j in range(len(rows[0])) if any(row[j] for row in rows)]  # spreadsheets' empty columns
        rows = [[row[j] for j in filled] for row in rows]
        header = [field.lower() for field in rows[0]]
        if len(filled) == 1:
            names = [row[0] for row in rows[1:]] if header[0] in _NAME_COLUMNS else [row[0] for row in rows]
            return [n for n in names if n]
        named = next((header.index(column) for column in _NAME_COLUMNS if column in header), None)
        if named is not None:
            warnings.warn(f"{path} is a table: {what} names read from its column {rows[0][named]!r}", UserWarning,
                          stacklevel=3)
            return [row[named] for row in rows[1:] if row[named]]
        body = rows if rows[0][0].isdigit() else rows[1:]
        first = [row[0] for row in body]
        if len(filled) == 2 and first in ([str(i) for i in range(len(body))], [str(i + 1) for i in range(len(body))]):
            return [row[1] for row in body if row[1]]  # pandas' index, R's row names
        if all(field.isdigit() for field in first):  # a numbered table that is neither: say so, never guess
            raise ValueError(f"{path} looks like a table ({len(filled)} columns, the first numbering its rows): give "
                             f"one {what} name per line (pandas: series.to_csv(path, index=False, header=False)), "
                             f"or name its column of names one of {', '.join(_NAME_COLUMNS[:3])}")
    return None


def _read_protein_names(path: Path, what: str = "protein") -> list[str]:
    """Names from a text file: one per line, or a single line of comma-separated names; ``#`` starts a
    comment (a whole line or after a space); a UTF-8 BOM is ignored.

    Several lines mean one name per line with commas kept: panel names such as ``HLA-A,B,C`` contain them."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} list {path} does not exist")
    lines = [_COMMENT.sub("", line).strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [line for line in lines if line]
    table = _names_from_table(lines, path, what)
    names = table if table is not None else _split_names(lines[0]) if len(lines) == 1 else lines
    if not names:
        raise ValueError(f"{path} lists no {what} names (one per line, or one line of comma-separated names)")
    return names


def _looks_like_a_name(word: str) -> bool:
    """A gene or protein name rather than a file's name: short, upper case or with a digit (CD4, HLA-DR, PTPRC, Cd19;
    not 'panel' or 'markers')."""
    return len(word) <= 15 and "," not in word and (word.upper() == word or any(c.isdigit() for c in word))


def names_argument(value: str | None, what: str) -> Any:
    """Names from ``A,B,C``, a text file (:func:`_read_protein_names`) or, for proteins, an ``.h5ad``, ``.h5mu``
    or Cell Ranger ``.h5`` file or matrix folder (its var_names; of a CITE-seq file, its antibodies)."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix in CELL_FILE_SUFFIXES or (path.exists() and is_matrix_market(path)):
        return read_cells(path, "RNA file" if what == "gene" else "protein file")
    if path.is_file():
        names = _read_protein_names(path, what)
        if not path.suffix and len(path.parts) == 1 and _looks_like_a_name(value):
            # a bare word is also a name (--proteins CD4 beside an output file called CD4): say which reading won
            warnings.warn(f"--{what}s {value} is read as the file {value} in this folder ({len(names)} {what} names); "
                          f"to ask for the {what} {value} itself, write it as '{value},'", UserWarning, stacklevel=2)
        return names
    if path.suffix in (".txt", ".tsv", ".csv", ".list"):
        raise FileNotFoundError(f"{what} list {path} does not exist")
    names = _split_names(value)
    if not names:
        raise ValueError(f"no {what} names in {value!r}")
    return names


def use_layer(adata: Any, layer: str, path: Path, hint: str = "") -> None:
    """Put ``adata.layers[layer]`` in X (``--layer`` of --rna, ``--protein-layer``); a missing layer is named."""
    if layer not in adata.layers:
        raise ValueError(f"{path} has no layer {layer!r}; its layers are {sorted(adata.layers)}{hint}")
    adata.X = adata.layers[layer]


def rna_argument(args: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """``--rna`` as a path (read backed, in chunks), or with ``--layer`` / ``--gene-column`` an AnnData
    whose X is that layer, and the gene names from that column (every command that reads --rna: predict,
    evaluate, attention, knockout)."""
    if args.layer is None and args.gene_column is None:
        return args.rna, None
    adata = read_cells(args.rna, "RNA file")
    if args.layer == "raw":
        if adata.raw is None:
            raise ValueError(f"{args.rna} has no .raw; its layers are {sorted(adata.layers)}")
        main_var = adata.var
        adata = adata.raw.to_adata()
        if args.gene_column in main_var.columns and args.gene_column not in adata.var.columns:
            # .raw keeps no columns: take the names of the genes var has, and .raw's own names for the others
            # (an HVG-subset var names a few thousand of .raw's genes; the rest must not become NaN names)
            names = main_var[args.gene_column].astype(object).reindex(adata.var_names)
            unnamed = names.isna().to_numpy()
            if unnamed.any():
                names[unnamed] = adata.var_names[unnamed]
                warnings.warn(
                    f"var[{args.gene_column!r}] names {int((~unnamed).sum())} of the {adata.n_vars} genes of .raw "
                    f"(.raw keeps no var columns); the other {int(unnamed.sum())} are read by their .raw var_names "
                    f"(e.g. {adata.var_names[unnamed][0]!r})",
                    UserWarning, stacklevel=2,
                )
            adata.var[args.gene_column] = names.astype(str)
    elif args.layer is not None:
        use_layer(adata, args.layer, args.rna, " (and .raw: --layer raw)" if adata.raw is not None else "")
    gene_names = None
    if args.gene_column is not None:
        if args.gene_column not in adata.var.columns:
            raise ValueError(f"{args.rna} has no var column {args.gene_column!r}; its var columns are "
                             f"{list(adata.var.columns)}")
        gene_names = [str(g) for g in adata.var[args.gene_column]]
    return adata, gene_names


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="model folder or hub id (default: the pre-trained sctranslator-base in the package)")
    parser.add_argument("--rna", type=Path, required=True,
                        help="cells x genes .h5ad (read backed, in chunks), .h5mu (its rna modality), "
                             "Cell Ranger .h5 or matrix folder")
    parser.add_argument("--layer", default=None,
                        help="read the expression from this layer of --rna instead of X (e.g. counts), or 'raw' "
                             "for adata.raw; the file is then read into memory")
    parser.add_argument("--gene-column", default=None,
                        help="the var column of --rna that holds gene names (e.g. gene_symbols; default var_names)")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="cells per forward pass, any number memory allows (default: 1 to 8, chosen by model size: 1 for the "
             "full-size model on CPU, where it is fastest; 8 on a GPU)",
    )
    parser.add_argument("--chunk-size", type=int, default=256, help="cells read and tokenized at once")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="compute precision (default float32)")


# modeling_sctranslator.inference.PROTEIN_CONTEXTS and SMALL_PANEL, written out: the parser is built without torch
# (a test keeps the two in step)
PROTEIN_CONTEXT_CHOICES, CONTEXT_BELOW = ("auto", "model", "none"), 10


def add_protein_context(parser: argparse.ArgumentParser) -> None:
    """``--protein-context`` (predict, evaluate, knockout)."""
    parser.add_argument(
        "--protein-context", choices=PROTEIN_CONTEXT_CHOICES, default="auto",
        help="a protein is predicted best inside a panel like the training ones: auto (default) asks proteins of "
        "the model's fine-tuning panel inside that panel, else fewer than "
        f"{CONTEXT_BELOW} proteins together with the model's training proteins, and keeps those asked; model does "
        "so for any number; none asks exactly the proteins given",
    )


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 protein``, ``2 proteins``, ``1,024 cells`` (``plural``: where it is not ``noun`` + s): the summary lines'
    counts."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
