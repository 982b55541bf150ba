"""``sctranslator convert-original``: an original scTranslator checkpoint into a model folder (and the Hub)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modeling_sctranslator import convert_original_checkpoint as conversion
from modeling_sctranslator.configuration_sctranslator import SCTranslatorConfig
from modeling_sctranslator.convert_original_checkpoint import convert_original_checkpoint
from tokenization.hgnc import hgnc_option

from .hub import TOKEN_ENV_HELP, hub_token, push_model_folder

__all__ = ["add_convert_command"]


def add_convert_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-original",
        help="convert an original scTranslator checkpoint (.pt) into a safetensors model folder",
        description=conversion.__doc__,
    )
    parser.add_argument("checkpoint", type=Path, help="original checkpoint: pickled module or state dict")
    parser.add_argument("--out", type=Path, required=True, help="output model folder")
    parser.add_argument("--id-tables", type=Path, help="folder with the original id tables (writes the tokenizer)")
    parser.add_argument("--hgnc", default="none",
                        help="with --id-tables: 'none' (the default here) maps names as the original code does, so "
                             "the converted model reads what it was trained on; 'bundled' (the table sctranslator "
                             "ships) or a path to hgnc_complete_set.txt from genenames.org ranks names as HGNC does")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="also upload the converted folder to the Hub")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: a private repository")
    parser.add_argument("--token-env", metavar="NAME", help=TOKEN_ENV_HELP)
    parser.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    token = None
    # it was ignored: without the tables no tokenizer is written
    if args.hgnc.lower() != "none" and args.id_tables is None:
        raise ValueError(f"--hgnc {args.hgnc} names genes for the tokenizer, which only --id-tables DIR writes: add "
                         "--id-tables (the original id tables), or leave --hgnc out")
    if args.push_to_hub:  # both checked before converting: a failed push would leave the folder half-published
        if args.id_tables is None:
            raise ValueError("--push-to-hub uploads a complete model folder, tokenizer included: add --id-tables "
                             "DIR (the original id tables) to write the tokenizer")
        token = hub_token(args.token_env)
    out = convert_original_checkpoint(args.checkpoint, args.out, args.id_tables, args.overwrite,
                                     hgnc=hgnc_option(args.hgnc))
    config = SCTranslatorConfig.from_pretrained(out)
    print(
        f"converted {args.checkpoint} -> {out} (hidden {config.hidden_size}, {config.num_encoder_layers}+"
        f"{config.num_decoder_layers} layers, {config.max_genes} genes -> {config.max_proteins} proteins"
        f"{', with tokenizer' if args.id_tables else ''})"
        + ("; no tokenizer: predict, evaluate and the pipeline need one, so convert again with --id-tables DIR "
           "(the original id tables) to use it" if args.id_tables is None else "")
    )
    if args.push_to_hub:
        files = push_model_folder(out, args.push_to_hub, private=args.private, token=token)
        print(f"pushed {len(files)} files to {args.push_to_hub}")
    return 0
