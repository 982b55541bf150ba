"""``sctranslator vocab ...``: build a tokenizer folder from the original tables or NCBI gene_info.

Wire into a console script with :func:`add_vocab_commands` (adds the ``vocab`` command to an argparse
subparsers object); each sub-command sets ``func=run_vocab``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .atomic_io import atomic_output_dir
from .hgnc import HGNC_OPTION_HELP, hgnc_option

__all__ = ["add_vocab_commands", "run_vocab", "main"]


def add_vocab_commands(subparsers) -> argparse.ArgumentParser:
    vocab = subparsers.add_parser("vocab", help="build a gene vocabulary / tokenizer folder")
    sub = vocab.add_subparsers(dest="vocab_command", required=True)
    original = sub.add_parser(
        "from-original", help="from the original scTranslator id tables (TSV or pickles)"
    )
    original.add_argument("directory", help="folder with the four original tables")
    ncbi = sub.add_parser("from-ncbi", help="a fresh vocabulary from NCBI gene_info (optionally .gz)")
    ncbi.add_argument("file", help="NCBI gene_info file")
    ncbi.add_argument("--tax-id", type=int, default=9606, help="species (default 9606, human)")
    ncbi.add_argument("--gene-types", nargs="*", default=None, help="keep only these type_of_gene values")
    for parser in (original, ncbi):
        parser.add_argument("--hgnc", default="bundled", help=HGNC_OPTION_HELP)
        parser.add_argument("--out", required=True, help="tokenizer folder to write")
        parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
        parser.set_defaults(func=run_vocab)
    return vocab


def _write_atomically(tokenizer, out: Path, overwrite: bool, inputs: list[Path]) -> None:
    """Write the tokenizer folder through a staging folder. ``--overwrite`` replaces only a tokenizer folder: given a
    data file or another folder by mistake, it would have deleted it with everything in it."""
    from .tokenization_sctranslator import VOCAB_FILE_NAME

    replaceable = out.is_dir() and (not any(out.iterdir()) or (out / VOCAB_FILE_NAME).is_file())
    if overwrite and out.exists() and not replaceable:
        raise FileExistsError(f"{out} is not a tokenizer folder (no {VOCAB_FILE_NAME}); --overwrite replaces only a "
                              "tokenizer folder written before: choose another --out")
    # a model folder holds gene_vocab.json too: replacing it whole would delete the weights
    with atomic_output_dir(out, overwrite=overwrite, inputs=inputs, replaces_only_its_own=True) as staging:
        tokenizer.save_pretrained(staging)


def run_vocab(args: argparse.Namespace) -> int:
    from .tokenization_sctranslator import SCTranslatorTokenizer

    hgnc = hgnc_option(args.hgnc)
    source = Path(args.directory if args.vocab_command == "from-original" else args.file)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if args.vocab_command == "from-original":
        tokenizer = SCTranslatorTokenizer.from_original_tables(args.directory, hgnc=hgnc)
    else:
        tokenizer = SCTranslatorTokenizer.from_ncbi_gene_info(
            args.file, tax_id=args.tax_id, gene_types=args.gene_types, hgnc=hgnc
        )
    inputs = [source]
    if isinstance(hgnc, str):
        inputs.append(Path(hgnc))
    _write_atomically(tokenizer, Path(args.out), args.overwrite, inputs)
    vocab = tokenizer.vocab
    print(
        f"wrote {args.out}: {vocab.n_known} genes, {len(vocab.symbol_to_entrez)} symbols/aliases, "
        f"vocab_size {vocab.vocab_size}, reserved ids {vocab.reserved_start}..{vocab.vocab_size - 1} "
        f"({vocab.source})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sctranslator-vocab")
    add_vocab_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:  # user errors: one line and status 2, as the sctranslator command gives them
        return args.func(args)
    except (OSError, ValueError) as error:
        print(f"sctranslator-vocab: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
