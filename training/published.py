"""What a model folder publishes to the Hub, and what stays on the user's machine.

Light on purpose (no transformers, no torch): ``sctranslator push`` and the folder checks read it before any model
is loaded, and the Trainer's ``--push_to_hub`` uses the same list.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

__all__ = ["NOT_PUBLISHED", "PUBLISHED_CODE", "PUBLISHED_FILES", "RUN_SIGNATURE", "TRAINING_ARGS_FILE",
           "imported_code", "publishable_files"]

# files of a stage's output folder that stay local: the cells each step trained on, the resume record (it holds
# this machine's paths), the Trainer's pickled arguments (this machine's paths; a pickle the Hub flags as unsafe)
RUN_SIGNATURE = "run_signature.json"
TRAINING_ARGS_FILE = "training_args.bin"
NOT_PUBLISHED = ("example_ids.tsv", RUN_SIGNATURE, TRAINING_ARGS_FILE)
# what a model folder publishes, named one by one: the model, its tokenizer, the card and the run's summaries, with
# the code of both (PUBLISHED_CODE). Anything else a user keeps there (their cells, notes) stays on their machine.
PUBLISHED_FILES = frozenset({
    "config.json", "model.safetensors", "model.safetensors.index.json", "preprocessor_config.json",
    "tokenizer_config.json", "special_tokens_map.json", "gene_vocab.json", "gene_layout.json", "trained_tokens.json",
    "README.md", "pretrain_summary.json", "training_summary.json",
})
_WEIGHT_SHARD_RE = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")
# the modules save_pretrained copies beside the weights for trust_remote_code: those of the model and tokenizer
PUBLISHED_CODE = frozenset(
    path.name for package in ("modeling_sctranslator", "tokenization")
    for path in (Path(__file__).resolve().parents[1] / package).glob("*.py") if path.name != "__init__.py")


_RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.(\w*)\s+import\s+([\w, ()]+)", re.MULTILINE)


def imported_code(folder: str | os.PathLike[str], sources: Iterable[str] | None = None) -> set[str]:
    """The ``.py`` files that the code of a model folder imports relatively (``from .encoders import ...``,
    ``from . import a, b``), followed from file to file: what trust_remote_code loads beside the model and tokenizer
    modules. ``sources``: the files to start from (default: every ``.py`` file of the folder)."""
    folder = Path(folder)
    todo = list(sources if sources is not None else (p.name for p in folder.glob("*.py")))
    seen: set[str] = set()
    wanted: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or not (folder / name).is_file():
            continue
        seen.add(name)
        for module, names in _RELATIVE_IMPORT.findall((folder / name).read_text(encoding="utf-8", errors="replace")):
            imported = [f"{module}.py"] if module else [f"{n.strip()}.py" for n in names.strip("() ").split(",")
                                                        if n.strip()]
            wanted.update(imported)
            todo.extend(imported)
    return wanted


def _is_published(name: str, code: set[str] = frozenset()) -> bool:
    return name in PUBLISHED_FILES or name in PUBLISHED_CODE or name in code or bool(_WEIGHT_SHARD_RE.match(name))


def publishable_files(folder: str | os.PathLike[str]) -> list[str]:
    """The files of a model folder that go to the Hub: its top-level files that a saved model, tokenizer, card or
    run summary is made of (an allow-list: the folder's other files, such as a user's cells or notes, never go, and
    a warning names them; hidden files and the run's own logs go unnamed); the one list for run_stage's
    ``--push_to_hub`` and ``sctranslator push``."""
    names = sorted(p.name for p in Path(folder).iterdir() if p.is_file())
    # and what that code imports: a folder saved by an earlier version may import a module since renamed here
    code = imported_code(folder, [name for name in names if name in PUBLISHED_CODE])
    others = [name for name in names if not _is_published(name, code) and not name.startswith(".")
              and name not in NOT_PUBLISHED]
    if others:  # a user's cells or notes kept beside the model are not the model's to publish
        warnings.warn(f"{len(others)} file(s) in {folder} are not part of a model folder and are not uploaded: "
                      f"{', '.join(others)} (upload one on purpose with huggingface_hub's upload_file)",
                      UserWarning, stacklevel=3)
    return [name for name in names if _is_published(name, code)]
