"""Forward time of the full-size model: ours vs a naive performer-pytorch wiring, same weights.

    python benchmarks/inference.py [--threads 2] [--batch-sizes 1 4] [--repeats 3] [--json PATH]

Both models hold identical weights and random features; the script checks that their predictions
agree (max abs difference) before timing them in alternation, and prints seconds per cell and the
ratio. Inputs are synthetic tokenized cells (20,000 genes, 1,000 proteins, as the released model).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction

try:
    from benchmarks.naive_reference import naive_copy_of
except ImportError:  # run as a script from the benchmarks folder
    from naive_reference import naive_copy_of


def synthetic_batch(config: SCTranslatorConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(batch, config.max_genes, generator=generator)
    values[torch.rand(batch, config.max_genes, generator=generator) > 0.1] = 1e-8  # ~10% expressed
    return dict(
        input_ids=torch.randint(1, 75000, (batch, config.max_genes), generator=generator),
        input_values=values,
        attention_mask=torch.ones(batch, config.max_genes, dtype=torch.bool),
        protein_ids=torch.randint(1, 75000, (batch, config.max_proteins), generator=generator),
        protein_attention_mask=torch.ones(batch, config.max_proteins, dtype=torch.bool),
    )


def time_call(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/inference.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = SCTranslatorConfig()
    ours = SCTranslatorForProteinPrediction(config).eval()
    naive = naive_copy_of(ours)

    rows = []
    for batch_size in args.batch_sizes:
        batch = synthetic_batch(config, batch_size)

        def run_ours(batch=batch):
            with torch.inference_mode():
                return ours(**batch).predictions

        def run_naive(batch=batch):
            with torch.inference_mode():
                return naive(
                    batch["input_values"], batch["input_ids"], batch["protein_ids"],
                    batch["attention_mask"], batch["protein_attention_mask"],
                )[1]

        difference = float((run_ours() - run_naive()).abs().max())  # also a warm-up for both
        ours_times, naive_times = [], []
        for _ in range(args.repeats):  # alternate so that machine noise hits both alike
            ours_times += time_call(run_ours, 1)
            naive_times += time_call(run_naive, 1)
        row = {
            "batch_size": batch_size,
            "ours_s_per_cell": statistics.median(ours_times) / batch_size,
            "naive_s_per_cell": statistics.median(naive_times) / batch_size,
            "max_abs_difference": difference,
        }
        row["speedup"] = row["naive_s_per_cell"] / row["ours_s_per_cell"]
        rows.append(row)
        print(
            f"batch {batch_size:>3}: ours {row['ours_s_per_cell']:.3f} s/cell, naive "
            f"{row['naive_s_per_cell']:.3f} s/cell, speed-up x{row['speedup']:.2f}, "
            f"max |diff| {difference:.2e}",
            flush=True,
        )
    result = {
        "benchmark": "forward pass, full default config (117.4 M parameters), fp32, CPU",
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
