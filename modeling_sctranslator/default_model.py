"""The package's pre-trained default model: a normal HF folder shipped inside the package.

``pipeline("protein-prediction")``, ``sctranslator predict`` / ``evaluate`` / ``attention`` /
``knockout`` without ``--model`` and the fine-tuning config (``model_name_or_path: sctranslator-base``)
use it. It is the order-invariant variant pre-trained by ``make pretrain`` (``training/pretrain.py``);
its model card (``README.md`` in the folder) says on what and how well.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_NAME = "sctranslator-base"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "pretrained" / DEFAULT_MODEL_NAME


def resolve_model_name(name_or_path: str | os.PathLike[str] | None) -> str:
    """``None`` or the default model's name (when no folder of that name exists here) → the shipped
    folder; anything else unchanged (a folder or a Hub id)."""
    if name_or_path is None or (str(name_or_path) == DEFAULT_MODEL_NAME and not Path(name_or_path).exists()):
        if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"the default model is missing from this installation ({DEFAULT_MODEL_DIR}); reinstall the package "
                "or name a model folder / Hub id explicitly"
            )
        return str(DEFAULT_MODEL_DIR)
    return str(name_or_path)
