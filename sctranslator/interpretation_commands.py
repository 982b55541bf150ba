"""``sctranslator attention`` and ``sctranslator knockout``: the interpretation package on the command line."""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interpretation import RECIPES, attention_analysis, knockout_analysis, write_attention, write_knockout
from interpretation.attention import MAX_ALL_GENES, _parse_top
from interpretation.outputs import TABLE_FORMATS, _table_formats, attention_writes, check_top_n, knockout_writes
from modeling_sctranslator.inference import compute_precision
from tokenization.atomic_io import check_output_target

from .options import (
    add_model_options,
    add_protein_context,
    compute_dtype,
    counted,
    load_model_and_tokenizer,
    names_argument,
    rna_argument,
)

__all__ = ["add_interpretation_commands"]


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser)
    parser.add_argument("--proteins", required=True,
                        help="proteins: A,B,C, a text file (one per line) or a protein .h5ad (its var_names)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: a new or empty one (its parent must exist); written as a whole at the end")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier output folder of this command as a whole (its old files are "
                             "removed); a folder holding anything else is refused")
    parser.add_argument("--table-format", choices=TABLE_FORMATS, default="csv",
                        help="tables as CSV, Parquet (needs pyarrow) or both")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG heatmaps")


def _check_out(args: argparse.Namespace, writes: Callable[[str], bool]) -> None:
    """A file, a non-empty folder without --overwrite or a folder holding an input fail before the model loads
    (the writers check again when they publish the folder)."""
    # the files read (--proteins / --genes: names or a file), as cli._inputs names them for predict (importing cli
    # here would be an import circle)
    named = (args.rna, args.proteins, args.genes)
    inputs = [Path(p) for p in named if p is not None and Path(p).is_file()]
    check_output_target(Path(args.out).absolute(), args.overwrite, inputs, is_dir=True, writes=writes)


def _run_attention(args: argparse.Namespace) -> int:
    _check_out(args, attention_writes)
    check_top_n(args.top_n)
    proteins = names_argument(args.proteins, "protein")
    genes: Any = None
    if args.genes is not None:
        genes = args.genes if _parse_top(args.genes) is not None else names_argument(args.genes, "gene")
        number = args.genes.strip()
        if number.isdigit():  # "--genes 50" meant as top-50 would silently map one gene
            warnings.warn(f"--genes {number} is read as the gene whose Entrez id is {number}; for the {number} genes "
                          f"receiving most attention write --genes top-{number}", stacklevel=2)
    _table_formats(args.table_format)
    rna, gene_names = rna_argument(args)  # --layer / --gene-column, before the model loads
    model, tokenizer = load_model_and_tokenizer(args.model, args.device)
    started = time.perf_counter()
    with compute_precision(model.device, compute_dtype(args.dtype)):
        result = attention_analysis(
            model, tokenizer, rna, proteins, genes=genes, gene_names=gene_names, recipe=args.recipe,
            batch_size=args.batch_size,
            chunk_size=args.chunk_size, device=model.device, progress=True,
        )
    files = write_attention(result, args.out, args.table_format, plots=not args.no_plots, rank_by=args.rank_by,
                            top_n=args.top_n, overwrite=args.overwrite)
    print(f"attention maps ({result.recipe} recipe) of {counted(len(result.genes), 'gene')} x "
          f"{counted(len(result.proteins), 'protein')} over {counted(result.n_cells, 'cell')} in "
          f"{time.perf_counter() - started:.1f} s: {counted(len(files), 'file')} -> {args.out}")
    return 0


def _run_knockout(args: argparse.Namespace) -> int:
    _check_out(args, knockout_writes)
    proteins = names_argument(args.proteins, "protein")
    genes = names_argument(args.genes, "gene")
    _table_formats(args.table_format)
    rna, gene_names = rna_argument(args)  # --layer / --gene-column, before the model loads
    model, tokenizer = load_model_and_tokenizer(args.model, args.device)
    started = time.perf_counter()
    with compute_precision(model.device, compute_dtype(args.dtype)):
        result = knockout_analysis(
            model, tokenizer, rna, proteins, genes, gene_names=gene_names, groupby=args.groupby,
            tolerance=args.tolerance, protein_context=args.protein_context,
            batch_size=args.batch_size, chunk_size=args.chunk_size, device=model.device, progress=True,
        )
    files = write_knockout(result, args.out, args.table_format, plots=not args.no_plots, overwrite=args.overwrite)
    print(f"knocked out {counted(len(result.genes), 'gene')} for {counted(len(result.proteins), 'protein')} over "
          f"{counted(result.n_cells, 'cell')} in {time.perf_counter() - started:.1f} s; differences are "
          f"{result.scale_description}: {counted(len(files), 'file')} -> {args.out}")
    return 0


def add_interpretation_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``attention`` and ``knockout`` to the ``sctranslator`` command line."""
    attention = subparsers.add_parser(
        "attention", help="encoder, decoder and gene->protein attention maps aggregated over cells (by gene)"
    )
    _add_common(attention)
    attention.add_argument("--genes", default=None,
                           help="top-K (genes receiving most encoder attention), A,B,C or a text file; "
                                f"default: every gene the model sees; maps of more than {MAX_ALL_GENES:,} genes are "
                                "refused (the gene x gene map grows with the square)")
    attention.add_argument("--recipe", choices=RECIPES, default=None,
                           help="default: the model's own (corrected, or cross_attention for the variant). "
                                "corrected: what each layer attended over; original: the original "
                                "attention_matrix.py recipe (map from the post-attention residual stream); "
                                "cross_attention: the variant's translator attention, protein -> gene")
    attention.add_argument("--rank-by", choices=("mean", "normalized"), default="mean",
                           help="statistic ranking genes per protein in ranked_genes/")
    attention.add_argument("--top-n", type=int, default=100, help="genes in each ranked_genes/<protein>.txt")
    attention.set_defaults(func=_run_attention, batch_size=2)

    knockout = subparsers.add_parser("knockout", help="in-silico knockout: effect of removing genes on proteins")
    _add_common(knockout)
    knockout.add_argument("--genes", required=True, help="genes to knock out: A,B,C or a text file")
    knockout.add_argument("--groupby", default=None, help="obs column: effects per cell group too")
    knockout.add_argument("--tolerance", type=float, default=1e-3,
                          help="a cell's prediction counts as changed above this absolute difference")
    add_protein_context(knockout)
    knockout.set_defaults(func=_run_knockout)
