"""Prediction quality on the shared paired sets: scTranslator (trained here) vs simple baselines.

    python benchmarks/quality.py [--budget small|full] [--sets eccite reapseq_pbmc ...] [--pretrain]
                                 [--data RNA.h5ad:PROTEIN.h5ad | --data FOLDER ...]   # your own pairs
                                 [--json benchmarks/results/quality.json] [--md benchmarks/results/quality.md]
                                 [--reuse_models]   # re-score models already in --workdir (same arguments)
                                 [--folds K]   # K-fold cross-validation, pooled held-out predictions

Per set (protocol in ``training/paired_data.py`` and ``benchmarks/README.md``): QC, controls
excluded, 80/20 split with seed 0 (the corpus builder's own split, checked), highly variable genes
(Seurat's rule) chosen on the training cells. Methods (``training.baselines``, scikit-learn): own
mRNA, ridge and k-NN on 50 PCs (selected genes), ridge on 50 PCs of all detected genes (reference),
totalVI when scvi-tools is importable and both sides are counts, and scTranslator trained from scratch
with stage 3 (``training.run_stage.main``) on the training cells. Metrics (``modeling_sctranslator.metrics``) on two
target scales: ``log1p`` (proteins on the log scale: log1p of counts, RPPA/mass-spec values as they
are) and ``scaled`` (per-cell max-min scaled, the model's training scale; baselines scaled per cell
with ``scale_rows``). Writes a JSON summary, a Markdown table and one scatter-grid PNG per set.

``--data`` runs the same protocol on any paired set: ``RNA.h5ad:PROTEIN.h5ad`` (same cells), ``<name>_rna.h5ad``
beside its protein file, one CITE-seq ``.h5ad`` / ``.h5`` / ``.h5mu`` holding both, or a folder of
``<name>_rna.h5ad`` + ``<name>_adt.h5ad`` / ``<name>_rppa.h5ad`` pairs. Combine with
``--sets`` (none by default then) and e.g. ``--base_model --no_scratch``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.machine import machine_facts
from benchmarks.output import write_result
from modeling_sctranslator.metrics import pearson_per_protein, protein_prediction_metrics
from tokenization.atomic_io import check_output_target
from tokenization.cell_files import is_matrix_market, set_name
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer, scale_rows
from training import baselines as bl
from training.model_card import sets_pretrained_with_every_cell
from training.paired_data import (
    DEFAULT_SETS,
    GENE_RULES,
    MAX_CELLS,
    SETS,
    VOCAB_DIR,
    PairedSet,
    load_set,
    pair_paths,
    select_genes,
    write_prepared,
)
from training.pretrain import SC_SETS

SCALES = {
    "log1p": "log1p protein counts (data README protocol); scTranslator's outputs stay on its per-cell scale, "
             "so only its Pearson (per protein, per cell) is meaningful here, not its MSE/cosine",
    "scaled": "per-cell max-min scaled log1p counts over the evaluated proteins (the model's training scale, "
              "tokenization.scale_rows); baseline predictions scaled per cell the same way",
}
BUDGETS = {
    # measured: small runs all four default sets in ~10-15 min on 2 shared CPU cores (see README)
    "small": {"max_cells": MAX_CELLS["small"], "n_genes": 1024, "steps": 400, "batch_size": 16,
              "learning_rate": 1e-3, "hidden_size": 32, "num_attention_heads": 2, "attention_head_dim": 16,
              "num_encoder_layers": 1, "num_decoder_layers": 1, "nb_random_features": 32},
    # not timed on the 2-core machine: expect several hours there; meant for a GPU or a bigger CPU
    "full": {"max_cells": MAX_CELLS["full"], "n_genes": 2048, "steps": 3000, "batch_size": 16, "learning_rate": 5e-4,
             "hidden_size": 64, "num_attention_heads": 4, "attention_head_dim": 16,
             "num_encoder_layers": 2, "num_decoder_layers": 2, "nb_random_features": 64},
}
METRIC_COLUMNS = ("pearson_per_protein_mean", "pearson_per_protein_median", "pearson_per_cell_mean", "mse",
                  "cosine_similarity")
logger = logging.getLogger("benchmarks.quality")


# ---------------------------------------------------------------------------------------------------- sctranslator
def _stage_argv(stage: str, corpora: list[str], out: Path, cfg: dict, extra: list[str]) -> list[str]:
    n_folds = cfg.get("folds") or 5  # the 80/20 split is fold 0 of 5
    argv = ["--stage", stage, "--corpora", *corpora, "--output_dir", str(out),
            "--max_steps", str(cfg["steps"]), "--per_device_train_batch_size", str(cfg["batch_size"]),
            "--learning_rate", str(cfg["learning_rate"]), "--truncation", "first", "--split_seed", "0",
            "--eval_fraction", str(1 / n_folds), "--num_shards", "1", "--stop_on_cosine", "false",
            "--logging_steps", "50", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true",
            "--seed", str(cfg.get("seed", 0))]
    if cfg.get("fold"):
        argv += ["--eval_fold", str(cfg["fold"])]
    return argv + _schedule_args(cfg) + extra


def _schedule_args(cfg: dict) -> list[str]:
    """A fixed number of steps, or selection on validation cells (never the test cells): evaluate every
    ``eval_steps``, keep the best step, optionally stop after ``early_stopping_patience`` evaluations."""
    if not cfg.get("validation_fraction"):
        return ["--eval_strategy", "no", "--save_strategy", "no"]
    every = str(cfg["eval_steps"])
    args = ["--validation_fraction", str(cfg["validation_fraction"]), "--eval_strategy", "steps",
            "--eval_steps", every, "--save_strategy", "steps", "--save_steps", every, "--save_total_limit", "2",
            "--load_best_model_at_end", "true", "--metric_for_best_model", "pearson_per_protein_mean",
            "--greater_is_better", "true"]
    if cfg.get("early_stopping_patience"):
        args += ["--early_stopping_patience", str(cfg["early_stopping_patience"])]
    return args


def _scratch_args(cfg: dict, n_genes: int, max_proteins: int, variant: bool = False) -> list[str]:
    """A new model's sizes; the variant differs only in its translator (and with it the gene encoding),
    and in its hidden size when ``variant_hidden_size`` is set (heads = hidden / ``attention_head_dim``)."""
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    if variant and cfg.get("variant_hidden_size"):
        hidden, heads = cfg["variant_hidden_size"], cfg["variant_hidden_size"] // cfg["attention_head_dim"]
    sizes = ["--vocab_dir", str(VOCAB_DIR), "--hidden_size", str(hidden), "--num_attention_heads", str(heads),
             "--attention_head_dim", str(cfg["attention_head_dim"]),
             "--num_encoder_layers", str(cfg["num_encoder_layers"]),
             "--num_decoder_layers", str(cfg["num_decoder_layers"]), "--max_genes", str(n_genes),
             "--max_proteins", str(max_proteins), "--nb_random_features", str(cfg["nb_random_features"])]
    return sizes + (["--translator_type", "cross_attention"] if variant else [])


def _run_stage(argv: list[str], reuse: bool = False) -> dict:
    from training.run_stage import main as run_stage

    out = Path(argv[argv.index("--output_dir") + 1])
    saved = out / "benchmark_argv.json"
    if reuse and saved.is_file() and json.loads(saved.read_text()) == argv and (out / "model.safetensors").is_file():
        logger.info("reusing the model trained earlier with the same arguments: %s", out)
        summary = json.loads((out / "training_summary.json").read_text())
        seconds = out / "benchmark_train_seconds.json"
        summary["benchmark_train_seconds"] = json.loads(seconds.read_text()) if seconds.is_file() else None
        return summary
    started = time.perf_counter()
    if out.exists():  # a fresh run every time (run_stage would resume from checkpoints)
        import shutil

        shutil.rmtree(out)
    try:
        summary = run_stage(argv)
    except Exception as err:
        # the model and training_summary.json are written before the model card: a failure in the card
        # (not part of what is benchmarked) must not throw away the trained model
        if not ((out / "model.safetensors").is_file() and (out / "training_summary.json").is_file()):
            raise
        logger.warning("run_stage failed after saving the model (%s: %s); using the saved model",
                       type(err).__name__, err)
        summary = json.loads((out / "training_summary.json").read_text())
    summary["benchmark_train_seconds"] = time.perf_counter() - started
    (out / "benchmark_train_seconds.json").write_text(json.dumps(summary["benchmark_train_seconds"]))
    saved.write_text(json.dumps(argv))
    return summary


def _check_split(summary: dict, data: PairedSet, out: Path) -> None:
    import pyarrow.parquet as pq

    from training.corpus import load_manifest

    m = load_manifest(out / summary["corpora"][0]["dir"])  # relative to the model folder (absolute before 12-04)
    rows = sorted(r for s in m["splits"]["eval"]["shards"]
                  for r in pq.read_table(f"{m['dir']}/{s['file']}", columns=["row"])["row"].to_pylist())
    if rows != data.eval.tolist():
        raise RuntimeError(f"{data.name}: the corpus builder's held-out cells differ from the benchmark's split")


def weight_counts(model_dir: Path) -> dict:
    """Weights of a saved model: all, and without the gene/protein embedding tables (85,500 rows of which a
    set uses ~1,000, so they say little about capacity)."""
    from safetensors import safe_open

    counts = {"all": 0, "without_embedding_tables": 0}
    with safe_open(str(Path(model_dir) / "model.safetensors"), "pt") as f:
        for key in f.keys():
            n = int(np.prod(f.get_slice(key).get_shape()))
            counts["all"] += n
            counts["without_embedding_tables"] += 0 if key.endswith("gene_embedding.weight") else n
    return counts


def predict_sctranslator(model_dir: Path, rna_path: str, data: PairedSet) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's per-cell scaled predictions of the held-out cells, and its log1p-count ones when it has the
    protein scale part (else None)."""
    import anndata as ad

    from modeling_sctranslator import SCTranslatorForProteinPrediction
    from modeling_sctranslator.inference import predict_proteins

    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    rna = ad.read_h5ad(rna_path)[data.eval].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = predict_proteins(model, tokenizer, rna, data.proteins, batch_size=64, device="cpu")
    names = list(result.var_names)
    if names != data.proteins:
        raise RuntimeError(f"{data.name}: predicted proteins {names[:5]}... differ from the evaluated panel")
    if "scaled" in result.layers:
        return np.asarray(result.layers["scaled"], np.float64), np.asarray(result.X, np.float64)
    return np.asarray(result.X, np.float64), None


def predict_into(preds: dict, log1p_preds: dict, method: str, model_dir: Path, rna_path: str,
                 data: PairedSet) -> None:
    """``method``'s held-out predictions: the scaled ones into ``preds``, the log1p-count ones (models with the
    protein scale part) into ``log1p_preds``."""
    preds[method], log1p = predict_sctranslator(model_dir, rna_path, data)
    if log1p is not None:
        log1p_preds[method] = log1p


# ---------------------------------------------------------------------------------------------------- evaluation
def measured_proteins(y: np.ndarray) -> np.ndarray:
    """(proteins,) True where the measured log1p values vary over the held-out cells. Decided on the log1p
    scale for both scales: per-cell scaling turns a constant column into 1e-8 plus rounding noise."""
    return np.nanstd(y, axis=0) > 0


def on_model_scale(method: str) -> bool:
    """Whether ``method`` predicts on the per-cell scaled scale already (scTranslator models and the peers
    fitted on that target); the other baselines predict log1p counts and are scaled per cell to compare."""
    return method.startswith("sctranslator") or method.endswith(SCALED_TARGET)


def evaluate(pred: np.ndarray, y: np.ndarray, model_scale: bool, pred_log1p: np.ndarray | None = None) -> dict:
    """Metrics on both scales; ``pred_log1p``: a model's own log1p-count predictions (the protein scale part),
    scored on the log1p scale instead of ``pred``. Proteins whose measured log1p values are constant over the
    held-out cells (e.g. never detected) are masked on both scales: per-cell scaling turns such a column into 1e-8 plus
    float rounding noise (std ~1e-24), whose Pearson r would be noise. Likewise a baseline column that is
    constant on the log1p scale (own mRNA of a gene never detected) stays undefined (NaN) after scaling."""
    mask = np.broadcast_to(measured_proteins(y), y.shape)
    y_scaled = scale_rows(y)[0]
    if model_scale:
        pred_scaled = pred
    else:
        pred_scaled = scale_rows(pred)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no gene)
            pred_scaled[:, ~(np.nanstd(pred, axis=0) > 0)] = np.nan
    return {
        "log1p": protein_prediction_metrics(pred if pred_log1p is None else pred_log1p, y, mask),
        "scaled": protein_prediction_metrics(pred_scaled, y_scaled, mask),
    }


def by_training_panels(pred: np.ndarray, y: np.ndarray, proteins: list[str], tokens: np.ndarray,
                       panel_tokens: set[int], pred_log1p: np.ndarray | None = None) -> dict:
    """Per-protein r of a left-out set's zero-shot predictions, split by whether a single-cell panel of the
    pre-training measured the protein (``panel_tokens``): proteins on none have only an untrained embedding to go
    on, so the two groups answer different questions. Masked as :func:`evaluate` masks; scaled ``pred`` as the
    model's own output, ``pred_log1p`` (models with the scale part) or ``pred`` on the log1p scale."""
    keep = measured_proteins(y)
    on_panel = np.asarray([int(t) in panel_tokens for t in tokens], bool)
    per_scale = {"scaled": pearson_per_protein(pred, scale_rows(y)[0]),
                 "log1p": pearson_per_protein(pred if pred_log1p is None else pred_log1p, y)}
    out: dict = {}
    for group, members in (("on_other_single_cell_panels", on_panel & keep),
                           ("on_no_other_single_cell_panel", ~on_panel & keep)):
        out[group] = {"proteins": int(members.sum()),
                      **{scale: float(np.nanmean(r[members])) if members.any() else None
                         for scale, r in per_scale.items()}}
    out["per_protein"] = {name: {"on_other_single_cell_panels": bool(on_panel[i]),
                                 **{scale: float(r[i]) if keep[i] else None for scale, r in per_scale.items()}}
                          for i, name in enumerate(proteins)}
    return out


def paired_bootstrap(pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray, keep: np.ndarray, n: int = 1000,
                     seed: int = 0) -> dict:
    """Mean per-protein Pearson of ``a`` minus that of ``b`` on the held-out cells, with a 95 % interval
    from resampling the cells (the same resample for both, so cell-to-cell noise cancels).

    Only the ``keep`` proteins count (:func:`measured_proteins`, as in :func:`evaluate`); a resample where
    a protein is constant gives it NaN, which the mean skips."""
    a, b, y = pred_a[:, keep], pred_b[:, keep], y[:, keep]

    def gap(rows: np.ndarray) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(np.nanmean(pearson_per_protein(a[rows], y[rows]))
                         - np.nanmean(pearson_per_protein(b[rows], y[rows])))

    rng = np.random.default_rng(seed)
    draws = np.array([gap(rng.integers(0, len(y), len(y))) for _ in range(n)])
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return {"difference": gap(np.arange(len(y))), "ci95": [float(low), float(high)], "resamples": n}


def compare_variant(preds: dict, y_eval: np.ndarray) -> dict | None:
    """The variant against the compatible model trained the same way (from scratch; after stage 2 when
    both were pre-trained), on both target scales (bootstrap over held-out cells)."""
    targets = {"log1p": y_eval, "scaled": scale_rows(y_eval)[0]}
    pairs = {"scratch": ("sctranslator_variant", "sctranslator"),
             "pretrained": ("sctranslator_variant_pretrained", "sctranslator_pretrained")}
    keep = measured_proteins(y_eval)
    out = {how: {scale: paired_bootstrap(preds[a], preds[b], y, keep) for scale, y in targets.items()}
           for how, (a, b) in pairs.items() if a in preds and b in preds}
    return out or None


def run_baselines(data: PairedSet, args) -> tuple[dict, dict]:
    y = data.targets
    y_train = y[data.train]
    log_all = data.rna_log
    preds, info = {}, {}
    t = time.perf_counter()
    pred, genes = bl.own_mrna(log_all[data.eval], data.gene_tokens, data.protein_tokens)
    preds["own_mrna"] = pred
    info["own_mrna"] = {"seconds": time.perf_counter() - t, "proteins_with_gene": int((genes >= 0).sum()),
                        "gene_of_protein": {p: (data.genes[g] if g >= 0 else None)
                                            for p, g in zip(data.proteins, genes, strict=True)}}
    t = time.perf_counter()
    x_sel = log_all[:, data.selected]
    z_train, z_eval = bl.principal_components(x_sel[data.train], x_sel[data.eval], args.pcs)
    preds["ridge_pca"] = bl.ridge(z_train, y_train, z_eval, args.alpha)
    info["ridge_pca"] = {"seconds": time.perf_counter() - t, "pcs": z_train.shape[1], "alpha": args.alpha,
                         "genes": len(data.selected)}
    t = time.perf_counter()
    preds["knn_pca"] = bl.knn(z_train, y_train, z_eval, args.k)
    info["knn_pca"] = {"seconds": time.perf_counter() - t, "k": args.k, "pcs": z_train.shape[1]}
    t = time.perf_counter()
    detected = np.flatnonzero(np.diff(log_all[data.train].tocsc().indptr) >= 3)
    x_all = log_all[:, detected]
    z_train_all, z_eval_all = bl.principal_components(x_all[data.train], x_all[data.eval], args.pcs)
    preds["ridge_pca_allgenes"] = bl.ridge(z_train_all, y_train, z_eval_all, args.alpha)
    info["ridge_pca_allgenes"] = {"seconds": time.perf_counter() - t, "pcs": z_train_all.shape[1],
                                  "alpha": args.alpha,
                                  "genes": int(len(detected)), "genes_rule": "detected in >= 3 training cells"}
    # every fitted peer again on the model's own target (per-cell scaled log1p): those predictions are on the
    # scaled scale already, like scTranslator's (totalVI models counts and cannot take that target)
    y_train_scaled = scale_rows(y_train)[0]
    refits = {"ridge_pca": lambda: bl.ridge(z_train, y_train_scaled, z_eval, args.alpha),
              "knn_pca": lambda: bl.knn(z_train, y_train_scaled, z_eval, args.k),
              "ridge_pca_allgenes": lambda: bl.ridge(z_train_all, y_train_scaled, z_eval_all, args.alpha)}
    for peer, fit in refits.items():
        t = time.perf_counter()
        preds[peer + SCALED_TARGET] = fit()
        info[peer + SCALED_TARGET] = {**info[peer], "seconds": time.perf_counter() - t,
                                      "target": "per-cell max-min scaled log-scale proteins"}
    ok, why = bl.totalvi_available()
    if args.no_totalvi:
        ok, why = False, "--no_totalvi"
    if ok and data.counts_only:
        ok, why = False, f"totalVI models counts: {data.counts_only}"
    if ok:
        t = time.perf_counter()
        try:
            counts = data.rna_values[:, data.selected]  # the genes every other method gets
            preds["totalvi"] = bl.totalvi(counts[data.train], data.protein_values[data.train],
                                          counts[data.eval], data.protein_values[data.eval],
                                          max_epochs=args.totalvi_epochs)
            info["totalvi"] = {"seconds": time.perf_counter() - t, "genes": len(data.selected),
                               "max_epochs": args.totalvi_epochs}
        except Exception as err:  # optional extra: report, do not fail the benchmark
            info["totalvi"] = {"skipped": f"{type(err).__name__}: {err}"}
    else:
        info["totalvi"] = {"skipped": why}
    return preds, info


def run_set(name: str, cfg: dict, args, tokenizer, work: Path, pretrained: dict[str, Path] | None,
            paths: tuple[Path, Path] | None = None) -> dict:
    """One set through every method; ``paths``: (RNA, protein) files of a set given with ``--data``.

    With ``--folds K`` every method is run K times, round k holding out the k-th block of cells (round 0: the
    80/20 test cells when K is 5), and the held-out predictions of all rounds are scored together: every cell
    once, by models that never saw it."""
    t0 = time.perf_counter()
    folds = cfg.get("folds")  # None: the one 80/20 split, in ``work`` itself
    rounds = [run_fold(name, {**cfg, "fold": k}, args, tokenizer, work / f"fold{k}" if folds else work, pretrained,
                       paths) for k in range(folds or 1)]
    data, _, _, info = rounds[0]
    y_eval = np.concatenate([d.targets[d.eval] for d, *_ in rounds])
    preds = {m: np.concatenate([p[m] for _, p, _, _ in rounds]) for m in rounds[0][1]}
    log1p_preds = {m: np.concatenate([lp[m] for _, _, lp, _ in rounds]) for m in rounds[0][2]}
    per_fold = None
    if folds:
        per_fold = [{"fold": k, "n_train": len(d.train), "n_eval": len(d.eval),
                     "genes_model_first10": [d.genes[g] for g in d.selected[:10]], "methods": i}
                    for k, (d, _, _, i) in enumerate(rounds)]
        if sorted(o for d, *_ in rounds for o in np.asarray(d.obs_names)[d.eval]) != sorted(data.obs_names):
            raise RuntimeError(f"{name}: the {folds} folds do not hold out every cell exactly once")

    # own mRNA predicts nothing where no protein's gene is among the file's genes: no row for it, said in the notes
    unscored = [m for m, p in preds.items() if not np.isfinite(p).any()]
    for m in unscored:
        data.notes.append(f"{m}: not scored (it predicts none of the proteins: no protein's gene is in the file)")
        preds.pop(m)
    results = {m: evaluate(p, y_eval, on_model_scale(m), log1p_preds.get(m)) for m, p in preds.items()}
    plot_path = Path(args.plots) / f"quality_{name}.png"
    shown = next(m for m in (BASE_METHODS["finetuned_scale"], BASE_METHODS["finetuned"], "sctranslator", *preds)
                 if m in preds)
    scatter_grid(plot_path, name, data, y_eval, {**preds, **log1p_preds}, shown, shown in log1p_preds)
    return {
        "n_cells": len(data.obs_names), "n_train": len(data.train), "n_eval": len(y_eval),
        "proteins": data.proteins, "n_genes_model": len(data.selected),
        "genes_model_first10": [data.genes[g] for g in data.selected[:10]], "notes": data.notes,
        "methods": info, "metrics": results, "plot": str(plot_path), "seconds": time.perf_counter() - t0,
        "variant_minus_compatible": compare_variant(preds, y_eval),
        "base_minus_best_peer": compare_with_peers(preds, results, y_eval, log1p_preds),
        "scale_part_minus_without": compare_scale_part(preds, log1p_preds, y_eval),
        **({"folds": per_fold} if per_fold else {}),
    }


def run_fold(name: str, cfg: dict, args, tokenizer, work: Path, pretrained: dict[str, Path] | None,
             paths: tuple[Path, Path] | None = None) -> tuple[PairedSet, dict, dict, dict]:
    """Every method on one split of the set (``cfg['fold']`` of ``cfg['folds']``; the 80/20 split by default):
    the set, held-out predictions (per-cell scaled / log1p counts of models with the scale part), run details."""
    rna_path, protein_path = paths or (None, None)
    try:
        data = load_set(name, tokenizer, cfg["max_cells"].get(name), rna_path=rna_path, protein_path=protein_path,
                        fold=cfg.get("fold", 0), n_folds=cfg.get("folds") or 5)
    except (ValueError, OSError) as err:  # unpaired cells, unreadable or swapped files: one line naming the fix
        raise SystemExit(f"quality.py: error: {err}") from None
    select_genes(data, cfg["n_genes"], args.gene_rule)
    base = write_prepared(data, work / "data", args.rna_values)
    fold = f" fold {cfg['fold']} of {cfg['folds']}:" if cfg.get("folds") else ""
    logger.info("%s:%s %d cells (%d train / %d eval), %d proteins, %d genes; %s", name, fold, len(data.obs_names),
                len(data.train), len(data.eval), len(data.proteins), len(data.selected), " | ".join(data.notes))
    preds, info = run_baselines(data, args)
    log1p_preds: dict[str, np.ndarray] = {}  # models with the protein scale part: their log1p-count output

    variants = [] if args.no_scratch else [("sctranslator", None)]
    if pretrained:
        variants.append(("sctranslator_pretrained", pretrained["compatible"]))
    if args.variant:
        variants.append(("sctranslator_variant", None))
        if pretrained:
            variants.append(("sctranslator_variant_pretrained", pretrained["variant"]))
    if args.zero_shot_only:  # no fine-tuning: only the stage-2 models' zero-shot scores below
        variants = []
    if args.scale_head:  # each scTranslator model again, trained the same way with the protein scale part
        variants += [(f"{method}{SCALE_SUFFIX}", start) for method, start in variants]
    for method, start in variants:
        suffix = "_variant" if method.startswith("sctranslator_variant") else ""
        scale_part = method.endswith(SCALE_SUFFIX)
        folder = f"{name}{suffix}" if start is None else f"{name}{suffix}_from_stage2"
        out = work / "models" / (folder + (SCALE_SUFFIX if scale_part else ""))
        if start is None:
            extra = _scratch_args(cfg, len(data.selected), args.max_proteins_common or len(data.proteins),
                                  variant=bool(suffix))  # same genes, steps and sizes
        else:
            extra = ["--model_name_or_path", str(start)]  # the stage-2 model's sizes
        extra += ["--predict_protein_scale", "true" if scale_part else "false"]
        summary = _run_stage(_stage_argv("finetune", [str(base)], out, cfg, extra), args.reuse_models)
        _check_split(summary, data, out)
        train_seconds = summary["benchmark_train_seconds"]  # of the run that trained it (also when reused)
        t = time.perf_counter()
        predict_into(preds, log1p_preds, method, out, f"{base}_rna.h5ad", data)
        info[method] = {"train_seconds": train_seconds, "predict_seconds": time.perf_counter() - t,
                        "steps": summary["global_step"], "final_train_loss": summary["train_loss"],
                        "best_step": summary.get("best_step"), "best_validation": summary.get("best_metric"),
                        "stopped_early_at": summary.get("stopped_early_at"),
                        "run_stage_eval": summary["eval"], "model_dir": str(out), "weights": weight_counts(out),
                        "start": str(start) if start else "scratch"}

    for method, key in (("sctranslator_zero_shot", "compatible"), ("sctranslator_variant_zero_shot", "variant")):
        if pretrained and key in pretrained:  # the stage-2 model on this (unseen) set, without fine-tuning
            t = time.perf_counter()
            predict_into(preds, log1p_preds, method, pretrained[key], f"{base}_rna.h5ad", data)
            info[method] = {"predict_seconds": time.perf_counter() - t, "model_dir": str(pretrained[key]),
                            "start": "stage 2 on the other sets; no fine-tuning on this set"}

    if args.base_model:
        base_all = write_prepared(data, work / "data", "counts", all_genes=True)
        preds_base, info_base, log1p_base = run_base_model(name, data, base_all, cfg, args, work)
        preds.update(preds_base)
        info.update(info_base)
        log1p_preds.update(log1p_base)
    return data, preds, log1p_preds, info


SCALE_SUFFIX = "_scale"  # a method trained again with the protein scale part (--scale_head)
SCALED_TARGET = "_scaled_target"  # a peer fitted on the per-cell scaled target instead of log1p
PEERS = ("own_mrna", "ridge_pca", "knn_pca", "ridge_pca_allgenes", "totalvi",
         *(peer + SCALED_TARGET for peer in ("ridge_pca", "knn_pca", "ridge_pca_allgenes")))
BASE_METHODS = {"zero_shot": "sctranslator_base_zero_shot", "finetuned": "sctranslator_base_finetuned",
                "finetuned_scale": "sctranslator_base_finetuned" + SCALE_SUFFIX,
                "lodo_zero_shot": "sctranslator_base_lodo_zero_shot"}


def base_finetune_recipe(args) -> dict:
    """How (b) fine-tunes the pre-trained model: training/configs/finetune.yaml's recipe, best step on validation."""
    return {"steps": args.finetune_steps, "learning_rate": args.finetune_lr, "validation_fraction": 0.1,
            "eval_steps": 100, "early_stopping_patience": 5}


def run_base_model(name: str, data: PairedSet, base_all: Path, cfg: dict, args,
                   work: Path) -> tuple[dict, dict, dict]:
    """The pre-trained model on the set's held-out cells: (a) as it is, (b) fine-tuned on the set's training
    cells (stage 3, best step on validation cells), (c) with ``--lodo``: pre-trained without this set.

    It reads raw counts of all the set's genes (its tokenizer log-normalises them and keeps the expressed
    ones), not the selected genes the scratch models get. With ``--scale_head`` (b) is also fine-tuned with
    the protein scale part added. Returns predictions, run details and the log1p-count predictions of models
    with the scale part."""
    from modeling_sctranslator.default_model import resolve_model_name

    model = Path(resolve_model_name(args.base_model))
    rna_path = f"{base_all}_rna.h5ad"
    preds, info, log1p_preds = {}, {}, {}
    t = time.perf_counter()
    predict_into(preds, log1p_preds, BASE_METHODS["zero_shot"], model, rna_path, data)
    info[BASE_METHODS["zero_shot"]] = {"predict_seconds": time.perf_counter() - t, "model_dir": str(model),
                                       "start": "the pre-trained model as shipped; no training on this set"}
    finetune = {**cfg, **base_finetune_recipe(args)}
    fine_tunings = ((False, True) if args.scale_head else (False,)) if args.finetune_steps else ()
    for scale_part in fine_tunings:
        method = BASE_METHODS["finetuned"] + (SCALE_SUFFIX if scale_part else "")
        out = work / "models" / f"{name}_base_finetuned{SCALE_SUFFIX if scale_part else ''}"
        extra = ["--model_name_or_path", str(model), "--predict_protein_scale", "true" if scale_part else "false"]
        summary = _run_stage(_stage_argv("finetune", [str(base_all)], out, finetune, extra), args.reuse_models)
        _check_split(summary, data, out)
        t = time.perf_counter()
        predict_into(preds, log1p_preds, method, out, rna_path, data)
        info[method] = {
            "train_seconds": summary["benchmark_train_seconds"], "predict_seconds": time.perf_counter() - t,
            "steps": summary["global_step"], "best_step": summary.get("best_step"),
            "best_validation": summary.get("best_metric"), "stopped_early_at": summary.get("stopped_early_at"),
            "model_dir": str(out), "start": str(model), "learning_rate": args.finetune_lr,
            "scale_loss_history": summary.get("scale_loss_history")}
    if args.lodo and name not in SC_SETS:
        info[BASE_METHODS["lodo_zero_shot"]] = {"skipped": f"{name} is not in the pre-training corpus: (a) is "
                                                           "already zero-shot on a set the model never saw"}
    elif args.lodo:
        from training.pretrain import main as pretrain

        lodo_dir = work / "lodo" / f"without_{name}"
        t = time.perf_counter()
        lodo = pretrain(["--out", str(lodo_dir), "--exclude", name, "--bulk_steps", str(args.lodo_bulk_steps),
                         "--sc_steps", str(args.lodo_sc_steps), "--cosine_min_steps", str(args.lodo_sc_steps),
                         "--sc_cycle2_steps", "0"])
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        predict_into(preds, log1p_preds, BASE_METHODS["lodo_zero_shot"], lodo_dir / "stage2_sc", rna_path, data)
        method = BASE_METHODS["lodo_zero_shot"]
        split = lodo_panel_split(lodo_dir, preds[method], log1p_preds.get(method), data)
        info[method] = {
            "predict_seconds": time.perf_counter() - t, "pretrain_seconds": seconds,
            "model_dir": str(lodo_dir / "stage2_sc"), "stage2_steps": lodo["stage2"]["global_step"],
            "start": f"pre-trained as the shipped model but without {name} (and with --bulk_steps "
                     f"{args.lodo_bulk_steps} --sc_steps {args.lodo_sc_steps}); no training on this set",
            "by_training_panels": split}
        for group in ("on_other_single_cell_panels", "on_no_other_single_cell_panel"):
            g = split[group]
            print(f"{name}: (c) left out, {g['proteins']} proteins {group.replace('_', ' ')}: "
                  + ", ".join(f"{scale} r {g[scale]:.3f}" for scale in ("scaled", "log1p") if g[scale] is not None),
                  flush=True)
    return preds, info, log1p_preds


def sets_trained_on(model: str) -> set[str]:
    """Names of the corpora a model folder says it was trained on: the pre-training summary of the shipped model
    (``pretrain_summary.json``) and the last stage's (``training_summary.json``); empty when it says nothing."""
    from modeling_sctranslator.default_model import resolve_model_name

    folder = Path(resolve_model_name(model))
    names: set[str] = set()
    pretrain = folder / "pretrain_summary.json"
    if pretrain.is_file():
        names.update(json.loads(pretrain.read_text()).get("corpus", {}))
    stage = folder / "training_summary.json"
    if stage.is_file():  # this benchmark's own fine-tuning corpora carry the set's name (+ "_allgenes")
        names.update(c["name"].removesuffix("_allgenes") for c in json.loads(stage.read_text()).get("corpora", []))
    return names


def compare_with_peers(preds: dict, results: dict, y_eval: np.ndarray, log1p_preds: dict) -> dict | None:
    """Each pre-trained-model result minus the best peer of its scale (by mean per-protein Pearson), with
    a paired bootstrap over held-out cells; the peers' predictions are scaled per cell as in :func:`evaluate`,
    models with the protein scale part give their log1p-count output on that scale."""
    base = [m for m in BASE_METHODS.values() if m in preds]
    if not base:
        return None
    keep = measured_proteins(y_eval)
    out: dict = {}
    for scale, y in (("log1p", y_eval), ("scaled", scale_rows(y_eval)[0])):
        peers = [p for p in PEERS if p in results]
        # a peer that predicts only some proteins (own_mRNA: those whose gene the file has) is no best peer over the
        # panel: its mean is over other proteins than the model's. Compared on the proteins both predict, always.
        covering = {p: keep & np.isfinite(preds[p]).all(axis=0) for p in peers}
        whole = [p for p in peers if (covering[p] == keep).all()]
        best = max(whole or peers, key=lambda p: results[p][scale]["pearson_per_protein_mean"])
        peer_pred = preds[best]
        if scale == "scaled" and not on_model_scale(best):
            peer_pred = scale_rows(peer_pred)[0]
        ours = {m: log1p_preds.get(m, preds[m]) if scale == "log1p" else preds[m] for m in base}
        out[scale] = {"best_peer": best, "proteins_compared": int(covering[best].sum()),
                      **{m: paired_bootstrap(ours[m], peer_pred, y, covering[best]) for m in base}}
    return out


def compare_scale_part(preds: dict, log1p_preds: dict, y_eval: np.ndarray) -> dict | None:
    """Each model trained with the protein scale part minus the same model trained the same way without it, on
    both scales (paired bootstrap over held-out cells): log1p counts are its own output there, against the
    other's per-cell scaled output (the only one it has; Pearson only)."""
    keep = measured_proteins(y_eval)
    targets = {"log1p": y_eval, "scaled": scale_rows(y_eval)[0]}
    out = {}
    for method in preds:
        without = method.removesuffix(SCALE_SUFFIX)
        if method.endswith(SCALE_SUFFIX) and without in preds and method in log1p_preds:
            out[without] = {scale: paired_bootstrap(log1p_preds[method] if scale == "log1p" else preds[method],
                                                    preds[without], y, keep) for scale, y in targets.items()}
    return out or None


def lodo_panel_split(lodo_dir: Path, pred: np.ndarray, pred_log1p: np.ndarray | None, data: PairedSet) -> dict:
    """:func:`by_training_panels` for a ``--lodo`` pre-training in ``lodo_dir``: the panels are those of its
    single-cell sets (its bulk panels count only where stage 1 ran, and the (c) recipe may skip it), without the
    columns it read as unmeasured, read with the tokenizer it trained with."""
    from training.pretrain import stage_left_out, trained_tokens

    sets = json.loads((lodo_dir / "data" / "cells.json").read_text())["sets"]
    single_cell = {n: info for n, info in sets.items() if info["kind"] == "single_cell"}
    trained_with = SCTranslatorTokenizer.from_pretrained(lodo_dir / "stage2_sc")
    left_out = stage_left_out(lodo_dir / "stage2_sc")  # antibodies at background taught nothing
    panel_tokens = set(trained_tokens(single_cell, trained_with, left_out)["proteins"])
    return by_training_panels(pred, data.targets[data.eval], list(data.proteins), data.protein_tokens, panel_tokens,
                              pred_log1p)


def pretrain_stage2(target: str, cfg: dict, args, tokenizer, work: Path, variant: bool = False) -> Path:
    """Stage 2 (sc) from scratch on every *other* shared single-cell set (leave-one-dataset-out).

    Each set keeps its own split and its own selected genes (chosen on its training cells); only their
    training shards are streamed. The target set's cells are never seen. Caveat: the MLP translator
    reads genes by *position*, and position k holds a different gene in each set, so what transfers
    is limited (the gene-id embeddings, the attention and decoder weights); the variant reads genes by
    identity, so all of it applies. A fixed ``pretrain_steps`` (no validation selection: the validation
    metric of several corpora has no single name)."""
    others = [s for s in SETS if s != target]
    bases = []
    for name in others:
        data = load_set(name, tokenizer, cfg["max_cells"].get(name))
        select_genes(data, cfg["n_genes"], args.gene_rule)
        bases.append(str(write_prepared(data, work / "data", args.rna_values)))
    out = work / "models" / f"stage2_without_{target}{'_variant' if variant else ''}"
    extra = _scratch_args(cfg, cfg["n_genes"], args.max_proteins_common, variant)
    fixed = {**cfg, "validation_fraction": 0.0, "steps": cfg.get("pretrain_steps") or cfg["steps"]}
    _run_stage(_stage_argv("sc", bases, out, fixed, extra), args.reuse_models)
    return out


# ---------------------------------------------------------------------------------------------------- outputs
def scatter_grid(path: Path, name: str, data: PairedSet, y_eval: np.ndarray, preds: dict, method: str,
                 log1p_output: bool = False, n: int = 6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n, y_eval.shape[1])
    chosen = np.argsort(-np.nanvar(y_eval, axis=0))[:n]  # most variable measured proteins (method-independent)
    shown = "log1p-count output" if log1p_output else "per-cell scaled output"
    rows = [(method, f"scTranslator ({shown})"), ("ridge_pca", "ridge on 50 PCs (log1p)")]
    fig, axes = plt.subplots(len(rows), n, figsize=(2.6 * n, 2.6 * len(rows)), squeeze=False)
    for r, (key, label) in enumerate(rows):
        r_all = pearson_per_protein(preds[key], y_eval)
        for c, j in enumerate(chosen):
            ax = axes[r, c]
            ax.scatter(y_eval[:, j], preds[key][:, j], s=4, alpha=0.5)
            ax.set_title(f"{data.proteins[j]}  r={r_all[j]:.2f}", fontsize=8)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
            if r == len(rows) - 1:
                ax.set_xlabel("measured log1p count", fontsize=7)
    fig.suptitle(f"{name}: held-out cells, predicted vs measured", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _weights_k(result: dict, method: str) -> str:
    weights = result["methods"].get(method, {}).get("weights")
    return f"{weights['without_embedding_tables'] / 1000:.0f} k" if weights else "?"


def markdown(report: dict) -> str:
    cfg = report["config"]
    patience = (f", stopped after {cfg['early_stopping_patience']} evaluations without improvement"
                if cfg.get("early_stopping_patience") else "")
    schedule = (f"models: best of at most {cfg['steps']} steps by mean per-protein Pearson on validation cells "
                f"({cfg['validation_fraction']:.0%} of all cells, taken from the training 80%; evaluated every "
                f"{cfg['eval_steps']} steps{patience}; the step kept is in brackets)" if cfg.get("validation_fraction")
                else f"models: {cfg['steps']} steps")
    if cfg.get("seed"):
        schedule += f"; training seed {cfg['seed']}"
    if cfg.get("variant_hidden_size"):
        schedule += f"; variant hidden size {cfg['variant_hidden_size']} (compatible {cfg['hidden_size']})"
    if not report.get("from_scratch", True):  # only the pre-trained model was trained: its recipe, not this budget
        schedule = ""
    recipe = report.get("base_finetune")
    if recipe and not recipe["steps"]:
        schedule += ("; " if schedule else "") + "pre-trained model zero-shot only (--finetune_steps 0: no (b))"
    elif recipe:
        schedule += ("; " if schedule else "") + (
            f"pre-trained model fine-tuned (b): best of at most {recipe['steps']} steps at learning rate "
            f"{recipe['learning_rate']:g} by mean per-protein Pearson on validation cells "
            f"({recipe['validation_fraction']:.0%} of the training cells; evaluated every {recipe['eval_steps']} "
            f"steps, stopped after {recipe['early_stopping_patience']} evaluations without improvement)")
    split = (f"{cfg['folds']}-fold cross-validation over the seed-0 permutation (every method run once per fold on "
             "the other folds' cells; the held-out predictions of all folds scored together, each cell once)"
             if cfg.get("folds") else "split 80/20 seed 0")
    lines = ["; ".join(part for part in (f"Budget `{report['budget']}`", split, schedule, report["gene_protocol"])
                       if part), ""]
    for scale, what in SCALES.items():
        lines += [f"**Target scale `{scale}`** — {what}.", "",
                  "| set | train/eval cells | proteins | method | Pearson/protein mean | median | Pearson/cell | "
                  "MSE | cosine |", "|---|---|---|---|---|---|---|---|---|"]
        for name, res in report["sets"].items():
            for method, m in res["metrics"].items():
                v = m[scale]
                best = res["methods"].get(method, {}).get("best_step")
                label = f"{method} [{best}]" if best else method
                lines.append(f"| {name} | {res['n_train']}/{res['n_eval']} | {v['proteins_evaluated']} | {label} | "
                             + " | ".join(f"{v[k]:.3f}" for k in METRIC_COLUMNS) + " |")
        lines.append("")
    gaps = {n: r["variant_minus_compatible"] for n, r in report["sets"].items() if r.get("variant_minus_compatible")}
    if gaps:
        lines += ["**Variant minus compatible model**, mean per-protein Pearson on the held-out cells (95 % "
                  "interval: the held-out cells resampled 1,000 times, the same resample for both models).", "",
                  "| set | " + " | ".join(SCALES) + " |", "|---|" + "---|" * len(SCALES)]
        for name, by_start in gaps.items():
            for how, gap in by_start.items():
                label = name if how == "scratch" else f"{name} (both pre-trained)"
                lines.append(f"| {label} | " + " | ".join(
                    f"{gap[k]['difference']:+.3f} [{gap[k]['ci95'][0]:+.3f}, {gap[k]['ci95'][1]:+.3f}]"
                    for k in SCALES) + " |")
        lines += ["", "Weights without the embedding tables (compatible / variant, from scratch): " + "; ".join(
            f"{name} {_weights_k(report['sets'][name], 'sctranslator')} / "
            f"{_weights_k(report['sets'][name], 'sctranslator_variant')}" for name in gaps) + ".", ""]
    base = {n: r["base_minus_best_peer"] for n, r in report["sets"].items() if r.get("base_minus_best_peer")}
    if base:
        lines += ["**Pre-trained model vs the best peer** of each set and scale (mean per-protein Pearson; "
                  "(a) zero-shot as shipped, (b) fine-tuned on the set's training cells, (c) pre-trained without "
                  "the set, zero-shot; in brackets: minus the best peer, 95 % interval over held-out cells).", "",
                  "| set | scale | best peer | (a) zero-shot | (b) fine-tuned | (b) with the protein scale part "
                  "(--scale_head) | (c) leave-one-out zero-shot |", "|---|---|---|---|---|---|---|"]
        for name, by_scale in base.items():
            metrics = report["sets"][name]["metrics"]
            for scale, gap in by_scale.items():
                peer = gap["best_peer"]
                cells = []
                for method in BASE_METHODS.values():
                    if method not in gap:
                        cells.append("–")
                        continue
                    d = gap[method]
                    cells.append(f"{metrics[method][scale]['pearson_per_protein_mean']:.3f} "
                                 f"({d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}])")
                compared = (f" (differences on {gap['proteins_compared']} proteins)" if "proteins_compared" in gap
                            else "")
                lines.append(f"| {name} | {scale} | {peer} {metrics[peer][scale]['pearson_per_protein_mean']:.3f}"
                             f"{compared} | " + " | ".join(cells) + " |")
        lines.append("")
    with_part = {n: r["scale_part_minus_without"] for n, r in report["sets"].items()
                 if r.get("scale_part_minus_without")}
    if with_part:
        lines += ["**With the protein scale part minus without**, each model trained the same way (mean per-protein "
                  "Pearson on the held-out cells; on log1p the part's log1p-count output against the other's "
                  "per-cell scaled output; 95 % interval over held-out cells).", "",
                  "| set | model | " + " | ".join(SCALES) + " |", "|---|---|" + "---|" * len(SCALES)]
        for name, by_model in with_part.items():
            for model, gap in by_model.items():
                lines.append(f"| {name} | {model} | " + " | ".join(
                    f"{gap[k]['difference']:+.3f} [{gap[k]['ci95'][0]:+.3f}, {gap[k]['ci95'][1]:+.3f}]"
                    for k in SCALES) + " |")
        lines.append("")
    skipped = {n: r["methods"]["totalvi"]["skipped"] for n, r in report["sets"].items()
               if "skipped" in r["methods"].get("totalvi", {})}
    if skipped:
        lines.append(f"totalVI: {next(iter(skipped.values()))}.")
    return "\n".join(lines) + "\n"


def user_pairs(items: list[str]) -> dict[str, tuple[Path, Path]]:
    """``--data`` values -> {set name: (RNA file, protein file)}; the name is the RNA file's stem less ``_rna``."""
    pairs: dict[str, tuple[Path, Path]] = {}
    for item in items:
        folder = Path(item)
        if folder.suffix in (".h5", ".h5mu") or (folder.exists() and is_matrix_market(folder)):
            found = [(folder, folder)]  # a CITE-seq file or matrix folder: both sides, told apart by feature type
        elif folder.is_dir():
            found = [pair_paths(r.name[: -len("_rna.h5ad")], folder) for r in sorted(folder.glob("*_rna.h5ad"))]
            found = [(r, q) for r, q in found if q.exists()]
            if not found:
                raise ValueError(f"--data {item}: no <name>_rna.h5ad with a <name>_adt.h5ad or _rppa.h5ad beside it")
        elif folder.suffix == ".h5ad" and folder.is_file() and ":" not in item:
            sibling = pair_paths(folder.name[: -len("_rna.h5ad")], folder.parent)[1] \
                if folder.name.endswith("_rna.h5ad") else None
            # NAME_rna.h5ad beside its protein file, else one CITE-seq file holding both (feature_types, .raw)
            found = [(folder, sibling if sibling is not None and sibling.exists() else folder)]
        else:
            parts = item.split(":")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"--data {item!r}: give RNA.h5ad:PROTEIN.h5ad, a CITE-seq .h5, .h5mu or matrix "
                                 "folder, or a folder of pairs")
            found = [(Path(parts[0]), Path(parts[1]))]
        for rna, protein in found:
            for path in (rna, protein):
                if not path.exists():
                    raise ValueError(f"--data: {path} does not exist")
            name = set_name(rna)
            if name in pairs:
                raise ValueError(f"--data: two pairs are named {name!r}; rename one RNA file")
            pairs[name] = (rna, protein)
    return pairs


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    p.add_argument("--sets", nargs="*", choices=SETS,
                   help=f"built-in sets (default: {' '.join(DEFAULT_SETS)}; none when --data is given)")
    p.add_argument("--data", action="append", default=[], metavar="RNA.h5ad:PROTEIN.h5ad | CITE.h5 | FOLDER",
                   help="a paired set of your own (same cells in both files; one CITE-seq file: Cell Ranger's .h5 or "
                        "matrix folder, a .h5mu), "
                        "or a folder of <name>_rna.h5ad + <name>_adt.h5ad (or _rppa.h5ad) pairs; repeatable")
    p.add_argument("--pretrain", action="store_true",
                   help="also pre-train stage 2 (sc) on the other shared sets, then fine-tune (leave-one-out)")
    p.add_argument("--zero_shot_only", action="store_true",
                   help="with --pretrain: only stage 2 on the other sets and its zero-shot predictions of the "
                        "target (no fine-tuning), beside the peers")
    p.add_argument("--gene_rule", choices=GENE_RULES, default="seurat",
                   help="how the model input genes are chosen on the training cells: Seurat's dispersion rule "
                        "(default, the field's usual one) or highest variance of the log-scale RNA (keeps genes most "
                        "cells express; benchmarks/gene_selection.py compares them). Not seurat: models and "
                        "prepared files go to WORKDIR/gene_rule_<rule>")
    p.add_argument("--json", default="benchmarks/results/quality.json")
    p.add_argument("--md", default="benchmarks/results/quality.md")
    p.add_argument("--plots", default="benchmarks/results")
    p.add_argument("--workdir", default="outputs/benchmarks/quality", help="prepared files, corpora, models")
    p.add_argument("--rna_values", choices=["lognorm", "counts"], default="lognorm",
                   help="RNA values the model's tokenizer scales per cell: log1p(CP10k) or raw counts")
    p.add_argument("--n_genes", type=int, help="override the budget's number of selected genes")
    p.add_argument("--steps", type=int, help="override the budget's training steps")
    p.add_argument("--learning_rate", type=float, help="override the budget's learning rate")
    p.add_argument("--validation_fraction", type=float, default=0.0,
                   help="keep this fraction of the cells (taken from the training 80%%) as validation cells; every "
                        "model is then evaluated on them every --eval_steps and the best step's weights are "
                        "kept (mean per-protein Pearson); the test cells stay the same")
    p.add_argument("--eval_steps", type=int, default=100, help="validation interval with --validation_fraction")
    p.add_argument("--early_stopping_patience", type=int,
                   help="with --validation_fraction: stop a model after N evaluations without improvement")
    p.add_argument("--reuse_models", action="store_true",
                   help="reuse a model in --workdir trained earlier with exactly the same run_stage arguments")
    p.add_argument("--variant", action="store_true",
                   help="also train the order-invariant cross-attention variant the same way (sctranslator_variant)")
    p.add_argument("--pretrain_steps", type=int, help="fixed steps of the --pretrain stage 2 (default: --steps)")
    p.add_argument("--variant_hidden_size", type=int,
                   help="hidden size of the variant (default: the budget's, as the compatible "
                        "model's); a multiple of the attention head dimension. The compatible model's translator "
                        "has ~10x the variant's weights at the same size: this compares at matched parameter counts")
    p.add_argument("--seed", type=int, help="training seed of the scTranslator models (default 0); the split, the "
                   "genes and the baselines do not change with it: rerun with other seeds to see training variance")
    p.add_argument("--base_model", nargs="?", const="sctranslator-base",
                   help="also score a pre-trained model (default when the flag is given alone: the shipped "
                        "sctranslator-base): (a) zero-shot on the held-out cells, (b) fine-tuned on the training cells")
    p.add_argument("--finetune_steps", type=int, default=800,
                   help="at most this many fine-tuning steps for (b) (training/configs/finetune.yaml's recipe); 0: "
                        "no (b), only the zero-shot scores (e.g. to compare two pre-trained models)")
    p.add_argument("--finetune_lr", type=float, default=1e-4,
                   help="learning rate of the (b) fine-tuning (finetune.yaml's; measured against 5e-4: "
                        "+0.006 / +0.043 / +0.002 / -0.004 on neurips / tenx / eccite / reapseq)")
    p.add_argument("--lodo", action="store_true",
                   help="with --base_model: (c) pre-train again without each set (training/pretrain.py --exclude) "
                        "and predict it zero-shot")
    p.add_argument("--lodo_bulk_steps", type=int, default=1000, help="stage-1 steps of each --lodo pre-training")
    p.add_argument("--lodo_sc_steps", type=int, default=6000, help="stage-2 steps of each --lodo pre-training")
    p.add_argument("--folds", type=int,
                   help="K-fold cross-validation instead of the one 80/20 split: every method is run K times, round "
                        "k holding out the k-th of K blocks of the seed-0 permutation (round 0 of 5 = the 80/20 test "
                        "cells), and the pooled held-out predictions (every cell once) are scored; for small sets, "
                        "whose 20%% test split is a few dozen cells. A pre-trained --base_model must not have been "
                        "trained on the set (training/pretrain.py --exclude NAME)")
    p.add_argument("--scale_head", action="store_true",
                   help="train every scTranslator model a second time the same way with the protein scale part "
                        "(method suffix _scale; outputs in log1p counts) and compare the two on both scales")
    p.add_argument("--no_scratch", action="store_true",
                   help="skip the scTranslator model trained from scratch on each set (saves its training time)")
    p.add_argument("--no_totalvi", action="store_true", help="leave totalVI out (it takes minutes per set)")
    p.add_argument("--totalvi_epochs", type=int,
                   help="totalVI training epochs (default: scvi-tools' own rule, up to 400 for small data sets)")
    p.add_argument("--pcs", type=int, default=50)
    p.add_argument("--alpha", type=float, default=1.0, help="ridge penalty")
    p.add_argument("--k", type=int, default=15, help="neighbours of the k-NN baseline")
    args = p.parse_args(argv)
    try:
        sources = user_pairs(args.data)
    except ValueError as err:
        p.error(str(err))
    user_sets = set(sources)
    inputs = [path for pair in sources.values() for path in pair]
    for option, target in (("--json", args.json), ("--md", args.md)):  # the results replace only earlier results
        try:
            Path(target).parent.mkdir(parents=True, exist_ok=True)  # as write_result makes it
            check_output_target(Path(target), overwrite=True, inputs=inputs)
        except (FileExistsError, ValueError, OSError) as err:
            p.error(f"{option}: {err}")
    sets = args.sets if args.sets is not None else ([] if sources else list(DEFAULT_SETS))
    clash = sorted(set(sets) & set(sources))
    if clash:
        p.error(f"--data names {clash} clash with built-in sets; rename the files")
    sources = {**{name: None for name in sets}, **sources}
    if not sources:
        p.error("nothing to run: give --sets and/or --data")
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    cfg = dict(BUDGETS[args.budget])
    for key in ("n_genes", "steps", "learning_rate", "validation_fraction", "eval_steps", "early_stopping_patience",
                "pretrain_steps", "seed", "variant_hidden_size", "folds"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    size = cfg.get("variant_hidden_size")
    if size is not None and (size <= 0 or size % cfg["attention_head_dim"]):
        p.error(f"--variant_hidden_size must be a positive multiple of the attention head dimension "
                f"({cfg['attention_head_dim']}), got {size}")
    if args.folds is not None:
        if args.folds < 2:
            p.error(f"--folds needs at least 2 folds, got {args.folds}")
        if args.lodo:
            p.error("--lodo with --folds would pre-train once per fold: pre-train without the set once "
                    "(training/pretrain.py --exclude NAME --out DIR) and pass DIR/stage2_sc as --base_model")
        if args.base_model:
            seen = sorted(set(sources) & sets_trained_on(args.base_model))
            if seen:
                p.error(f"--folds: the model {args.base_model} was trained on {seen} (all but the 80/20 test cells), "
                        "so other folds would test it on its training cells; cross-validate from a model "
                        "pre-trained without them (training/pretrain.py --exclude NAME)")
    if args.base_model:  # a set of one's own named as one the model pre-trained on with every cell: is it that set?
        for name in sorted(user_sets & sets_pretrained_with_every_cell(args.base_model)):
            warnings.warn(f"--data {name}: the model {args.base_model} was pre-trained on every cell of a set of "
                          "that name (its pretrain_summary.json): if these are its cells, (a) zero-shot is scored on "
                          "training cells, not held-out ones", UserWarning, stacklevel=2)
    if args.finetune_steps < 0:
        p.error(f"--finetune_steps must be 0 (no fine-tuning) or more, got {args.finetune_steps}")
    if args.finetune_steps == 0 and args.scale_head:
        p.error("--scale_head fine-tunes (b) with and without the scale part; --finetune_steps 0 leaves no (b)")
    if args.zero_shot_only and not args.pretrain:
        p.error("--zero_shot_only scores the stage-2 model of --pretrain on the unseen set: add --pretrain")
    torch.manual_seed(0)
    tokenizer = SCTranslatorTokenizer.from_original_tables(VOCAB_DIR)
    work = Path(args.workdir)
    if args.gene_rule != "seurat":  # other genes, same argv: kept apart so --reuse_models never mixes them
        work = work / f"gene_rule_{args.gene_rule}"
    args.max_proteins_common = 0
    if args.pretrain:
        args.max_proteins_common = max(len(load_set(s, tokenizer, 1).proteins) for s in SETS)
    report = {
        "budget": args.budget, "config": cfg, "rna_values": args.rna_values, "scales": SCALES,
        "from_scratch": not (args.no_scratch or args.zero_shot_only),
        "base_finetune": base_finetune_recipe(args) if args.base_model else None,
        "gene_rule": args.gene_rule,
        "gene_protocol": f"model input and PCA baselines: the {cfg['n_genes']} highly variable vocabulary genes "
                         + ("(Seurat's dispersion rule, as scanpy's flavor='seurat')" if args.gene_rule == "seurat"
                            else "(highest variance)")
                         + f" of log-scale RNA over the training cells (RNA only), best first; model RNA values: "
                         f"{args.rna_values}",
        "machine": machine_facts(),
        "sets": {},
    }
    t0 = time.perf_counter()
    for name, paths in sources.items():
        pre = None
        if args.pretrain:
            pre = {"compatible": pretrain_stage2(name, cfg, args, tokenizer, work)}
            if args.variant:
                pre["variant"] = pretrain_stage2(name, cfg, args, tokenizer, work, variant=True)
        report["sets"][name] = run_set(name, cfg, args, tokenizer, work, pre, paths)
        report["seconds_total"] = time.perf_counter() - t0
        write_result(args.json, report, indent=1, inputs=inputs)  # after every set
        write_result(args.md, markdown(report), inputs=inputs)
    print(markdown(report))
    print(f"total {report['seconds_total']:.0f} s; JSON {args.json}; table {args.md}")
    return report


if __name__ == "__main__":
    main()
