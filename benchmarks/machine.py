"""What a benchmark's timings depend on, recorded in every JSON: the same code ran 2.5x slower in float32 and
13x slower in bfloat16 on an AVX2-only EPYC than on an AVX512-BF16 one (benchmarks/inference.py --padding)."""

from __future__ import annotations

import os
import platform

import numpy as np
import torch

from modeling_sctranslator.inference import low_precision_in_hardware


def machine_facts() -> dict:
    """CPU model and the instruction sets that decide matrix-product speed, threads and versions."""
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # older PyTorch
        capabilities = {}
    return {
        "cpu": capabilities.get("cpu_name") or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "avx512": bool(capabilities.get("avx512_f")),
        "bfloat16_in_hardware": low_precision_in_hardware("cpu", torch.bfloat16),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
