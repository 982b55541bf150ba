"""The README's main job (``make demo``): the pre-trained model on new cells, then fine-tuned, next to ridge.

1. Real data: ECCITE-seq PBMC (500 cells, 19,521 genes, 49 antibodies) from ``../shared/data``, split
   80/20 with seed 0 — the benchmark's split, whose 100 held-out cells the shipped model never saw.
2. **Zero-shot**: ``pipeline("protein-prediction")`` with no model named loads the package's pre-trained
   ``sctranslator-base`` and predicts the held-out cells from their raw counts (all genes: the model reads
   genes by identity).
3. **Fine-tuned**: a short stage-3 run (``training/run_stage.py``) from ``sctranslator-base`` on the 400
   training cells; the saved folder is reloaded through the pipeline and predicts the same cells.
4. Both are compared with the measured proteins on two scales -- log1p counts (the model's output when it
   has the protein scale part) and per-cell max-min scaled log1p counts (the training scale) -- next to
   ridge regression on 50 PCs of log-normalised RNA fitted on the training cells (on log1p counts, scaled
   per cell for the second scale; and fitted on the scaled target directly). ``demo_output/report.md``,
   ``metrics.json`` and ``scatter.png`` are written.

    python -m sctranslator.demo [--steps 300] [--out demo_output] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

SCATTER_PROTEINS = ["CD3", "CD4", "CD8", "CD14", "CD19", "CD16", "CD45RA", "MHCII (HLA-DR)"]


def scatter_plot(path: Path, names: list[str], series: dict[str, np.ndarray], measured: np.ndarray):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modeling_sctranslator.metrics import pearson_per_protein

    shown = [n for n in SCATTER_PROTEINS if n in names][:8] or names[:8]
    r = {label: pearson_per_protein(values, measured) for label, values in series.items()}
    fig, axes = plt.subplots(2, (len(shown) + 1) // 2, figsize=(3.2 * ((len(shown) + 1) // 2), 6.4), squeeze=False)
    for ax, name in zip(axes.ravel(), shown, strict=False):
        j = names.index(name)
        for (label, values), marker in zip(series.items(), "o^x", strict=False):
            ax.scatter(measured[:, j], values[:, j], s=8, alpha=0.6, marker=marker,
                       label=f"{label} r={r[label][j]:.2f}")
        ax.set_title(name)
        ax.set_xlabel("measured (log1p count)")
        ax.set_ylabel("predicted")
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    fig.suptitle("ECCITE-seq PBMC, held-out cells: predicted vs measured protein")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


OUTPUT_NOTE = {
    "log1p": "the models' own output: per-cell scaled predictions brought back with each cell's predicted protein "
             "range",
    "scaled": "Pearson only: this model predicts per-cell scaled values, whose MSE on counts means nothing",
}


def model_outputs(result) -> dict[str, np.ndarray | None]:
    """A prediction AnnData's values on both scales: log1p counts (models with the protein scale part, else None)
    and per-cell scaled."""
    if "scaled" in result.layers:
        return {"log1p": np.asarray(result.X), "scaled": np.asarray(result.layers["scaled"])}
    return {"log1p": None, "scaled": np.asarray(result.X)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps (batch 16)")
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("SCTRANSLATOR_SHARED", "../shared")))
    args = parser.parse_args(argv)
    if not (args.shared / "data" / "eccite_rna.h5ad").is_file():
        print(f"the demo reads ECCITE-seq data from {args.shared}/data; it is not there (set SCTRANSLATOR_SHARED "
              "or --shared)", file=sys.stderr)
        return 2

    import anndata
    import torch
    from transformers import pipeline

    import modeling_sctranslator  # noqa: F401  (registers the pipeline and its default model)
    from modeling_sctranslator.metrics import protein_prediction_metrics
    from tokenization.tokenization_sctranslator import scale_rows
    from training.baselines import log_normalise, pca_ridge
    from training.corpus import held_out_rows
    from training.run_stage import fine_tune_shipped_model

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    if args.out.exists():
        shutil.rmtree(args.out)  # the demo's own folder, rebuilt on every run
    source = args.shared / "data" / "eccite"
    rna = anndata.read_h5ad(f"{source}_rna.h5ad")
    adt = anndata.read_h5ad(f"{source}_adt.h5ad")

    print(f"[1/4] fine-tuning the pre-trained sctranslator-base on the training cells ({args.steps} steps)",
          flush=True)
    model_dir = args.out / "model"
    summary = fine_tune_shipped_model(source, model_dir, args.steps, "sctranslator-base-eccite-demo")
    test = held_out_rows(model_dir / "corpora" / "eccite")
    train_rows = np.setdiff1d(np.arange(rna.n_obs), test)

    print("[2/4] as shipped: pipeline('protein-prediction') with no model (sctranslator-base, not fine-tuned)",
          flush=True)
    zero_shot = pipeline("protein-prediction", device="cpu")(rna[test], proteins=adt[test], protein_transform="log1p")
    print("[3/4] the fine-tuned folder, reloaded with pipeline('protein-prediction')", flush=True)
    tuned = pipeline("protein-prediction", model=str(model_dir), device="cpu")(
        rna[test], proteins=adt[test], protein_transform="log1p")
    names = list(tuned.var_names)

    columns = [list(adt.var_names).index(n) for n in names]
    counts = np.log1p(np.asarray(adt.X.toarray() if hasattr(adt.X, "toarray") else adt.X, dtype=np.float64))
    measured = {"log1p": counts[test][:, columns], "scaled": scale_rows(counts[test][:, columns])[0]}
    x = log_normalise(rna.X)
    ridge = pca_ridge(x[train_rows], counts[train_rows][:, columns], x[test])
    ridge_on_target = pca_ridge(x[train_rows], scale_rows(counts[train_rows][:, columns])[0], x[test])

    print("[4/4] writing the report", flush=True)
    predictions = {  # each method on each scale (None: it has no output on that scale)
        "sctranslator_base_zero_shot": model_outputs(zero_shot),
        "sctranslator_base_finetuned": model_outputs(tuned),
        "ridge": {"log1p": ridge, "scaled": scale_rows(ridge)[0]},
        "ridge_scaled_target": {"log1p": None, "scaled": ridge_on_target},
    }
    metrics = {scale: {method: protein_prediction_metrics(by_scale[scale], measured[scale])
                       for method, by_scale in predictions.items() if by_scale[scale] is not None}
               for scale in ("log1p", "scaled")}
    shown = "log1p" if predictions["sctranslator_base_finetuned"]["log1p"] is not None else "scaled"
    scatter_plot(args.out / "scatter.png", names,
                 {"as shipped": predictions["sctranslator_base_zero_shot"][shown],
                  "fine-tuned": predictions["sctranslator_base_finetuned"][shown],
                  "ridge": predictions["ridge"][shown]}, measured["log1p"])
    tuned.write_h5ad(args.out / "heldout_predictions.h5ad")
    elapsed = time.perf_counter() - started
    rows = ["pearson_per_protein_mean", "pearson_per_protein_median", "pearson_per_cell_mean", "mse",
            "cosine_similarity"]
    tables = {scale: "\n".join(
        f"| {k} | " + " | ".join(f"{by[method][k]:.3f}" if method in by else "–" for method in predictions) + " |"
        for k in rows) for scale, by in metrics.items()}
    info = tuned.uns["sctranslator"]
    report = f"""# sctranslator demo report

Data: ECCITE-seq PBMC (Mimitou et al. 2019), {rna.n_obs} cells, all {rna.n_vars} genes as raw counts;
{len(names)} proteins predicted ({', '.join(info['control_proteins'])} are isotype controls; not predicted:
{', '.join(info['unmapped_proteins']) or 'none'}). Split: {len(train_rows)} training / {len(test)} held-out cells
(seed 0, the benchmark's split: the pre-trained model never saw the held-out cells).

Models: `sctranslator-base`, the pre-trained model shipped with the package, as it is (not zero-shot: its
pre-training held these training cells, never the held-out ones), and
fine-tuned from it for {summary.get('global_step', args.steps)} steps on the training cells (batch 16,
Adam/amsgrad, lr 1e-4), saved to `{model_dir}` and reloaded with `pipeline("protein-prediction")`.
Ridge: 50 PCs of log-normalised RNA, fitted on the training cells, on log1p counts then scaled per
cell, or fitted on the scaled target.

Held-out metrics on log1p counts ({OUTPUT_NOTE[shown]}):

| metric | as shipped | fine-tuned | ridge | ridge (scaled target) |
|---|---|---|---|---|
{tables["log1p"]}

On the training scale (log1p counts, max-min scaled per cell):

| metric | as shipped | fine-tuned | ridge | ridge (scaled target) |
|---|---|---|---|---|
{tables["scaled"]}

![predicted vs measured](scatter.png)

A minutes-long demonstration on 400 training cells; the benchmark is `benchmarks/quality.py`.
Run time: {elapsed:.0f} s.
"""
    (args.out / "report.md").write_text(report)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(report)
    print(f"wrote {args.out / 'report.md'}, {args.out / 'scatter.png'}, {args.out / 'heldout_predictions.h5ad'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
