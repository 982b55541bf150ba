"""The ``sctranslator`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .convert_original_checkpoint import add_convert_command


def build_parser() -> argparse.ArgumentParser:
    from tokenization.cli import add_vocab_commands

    parser = argparse.ArgumentParser(
        prog="sctranslator", description="scTranslator: translate single-cell transcriptomes into proteomes"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convert_command(subparsers)
    add_vocab_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sub-command; user errors print one clear line and exit with status 2, not a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"sctranslator {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
