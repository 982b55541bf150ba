"""Is model size the quality lever at the pre-training budget? Stage 2 of ``make pretrain`` for several model
sizes and lengths, held-out per-protein Pearson side by side.

    python benchmarks/model_size.py [--runs outputs/model_size] [--arms h64_3000 h128_3000 h64_4750]
                                    [--json benchmarks/results/model_size.json]

Each arm is ``training/pretrain.py --bulk_steps 0 --sc_steps N --bf16 [--model KEY=VALUE ...]`` (the single-cell
stage only, from scratch, bfloat16 products: about 20-60 min each on 2 CPU cores with AVX512-BF16), written to
``RUNS/<arm>``; an arm whose ``pretrain_summary.json`` is there is read, not run again. The held-out cells are the
ones ``make pretrain`` holds out of each set (10 %, at most 200); the table gives each set's mean per-protein
Pearson after the last step, the mean over sets, the run's wall time (shared machines: compare the steps, and
read the seconds as a rough cost; ``h64_4750`` costs about what ``h128_3000`` does, step time x1.6) and the float32
checkpoint size (the shipped folder keeps the id tables in float16, half that: its 30 MB limit allows hidden 64).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_facts
from benchmarks.output import write_result
from training.pretrain import model_settings

ROOT = Path(__file__).resolve().parents[1]
# arm -> (single-cell steps, model settings other than the shipped model's)
ARMS: dict[str, tuple[int, list[str]]] = {
    "h64_3000": (3000, []),
    "h128_3000": (3000, ["hidden_size=128", "attention_head_dim=32"]),
    "h64_4750": (4750, []),
    "h64_4layers_3000": (3000, ["num_encoder_layers=4", "num_decoder_layers=4"]),
}


def run_arm(arm: str, folder: Path) -> dict:
    steps, settings = ARMS[arm]
    summary_path = folder / "pretrain_summary.json"
    if not summary_path.is_file():
        command = [sys.executable, str(ROOT / "training" / "pretrain.py"), "--out", str(folder), "--bulk_steps", "0",
                   "--sc_steps", str(steps), "--cosine_min_steps", str(steps), "--sc_cycle2_steps", "0", "--bf16"]
        if settings:
            command += ["--model", *settings]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    summary = json.loads(summary_path.read_text())
    if summary["stage2"]["global_step"] != steps or summary["model"] != model_settings(settings):
        raise SystemExit(f"{folder} holds another run ({summary['stage2']['global_step']} steps, model "
                         f"{summary['model']}) than the arm {arm}: give another --runs folder")
    metrics = summary["stage2"]["eval"]
    suffix = "_pearson_per_protein_mean"
    per_set = {key[len("eval_"):-len(suffix)]: value for key, value in metrics.items() if key.endswith(suffix)}
    if not per_set:
        raise SystemExit(f"{summary_path} has no held-out metrics after stage 2")
    weights = folder / "stage2_sc" / "model.safetensors"
    return {
        "model": summary["model"], "steps": summary["stage2"]["global_step"],
        "seconds": summary["seconds"]["stage2"],
        "checkpoint_mb_float32": round(weights.stat().st_size / 2**20, 1) if weights.is_file() else None,
        "pearson_per_protein_mean": dict(sorted(per_set.items())),
        "mean_over_sets": sum(per_set.values()) / len(per_set),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "outputs" / "model_size")
    parser.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=["h64_3000", "h128_3000", "h64_4750"])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "model_size.json")
    args = parser.parse_args()
    rows = {arm: run_arm(arm, args.runs / arm) for arm in args.arms}
    sets = sorted({name for row in rows.values() for name in row["pearson_per_protein_mean"]})
    print(f"{'held-out mean per-protein r':28}" + "".join(f"{arm:>18}" for arm in rows))
    for name in sets:
        print(f"{name:28}" + "".join(f"{row['pearson_per_protein_mean'].get(name, float('nan')):18.3f}"
                                     for row in rows.values()))
    print(f"{'mean over sets':28}" + "".join(f"{row['mean_over_sets']:18.3f}" for row in rows.values()))
    print(f"{'wall time, min':28}" + "".join(f"{(row['seconds'] or float('nan')) / 60:18.0f}" for row in rows.values()))
    result = {"benchmark": "stage 2 of make pretrain (single-cell sets, from scratch, bf16) per model size and "
                           "length: held-out mean per-protein Pearson per set", "machine": machine_facts(),
              "arms": rows}
    write_result(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
