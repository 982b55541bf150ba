"""Shared constants and helpers of the training tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_STAGE = REPO / "training" / "run_stage.py"

# a model small enough for seconds-long runs on 2 CPU cores
TINY_MODEL = [
    "--hidden_size", "16", "--num_attention_heads", "2", "--attention_head_dim", "8",
    "--num_encoder_layers", "1", "--num_decoder_layers", "1", "--max_genes", "128", "--max_proteins", "160",
    "--nb_random_features", "16",
]
QUIET = ["--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


