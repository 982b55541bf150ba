"""README.md model card of a finished stage, rendered from ``model_cards/sctranslator_stage.md``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard

from model_cards import card_data as make_card_data
from model_cards import render_card

TEMPLATE = "sctranslator_stage.md"
STAGE_DESCRIPTIONS = {
    "bulk": "stage 1: pre-training on bulk RNA + RPPA proteomes",
    "sc": "stage 2: pre-training on single-cell RNA + surface proteins, stopped at a cosine-similarity threshold",
    "finetune": "stage 3: fine-tuning on paired cells of the target panel",
}
CARD_METRICS = ("mse", "cosine_similarity", "pearson_per_protein_mean", "pearson_per_protein_median",
                "pearson_per_cell_mean", "log1p_pearson_per_protein_mean")


def _eval_rows(metrics: dict[str, float], manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    names = [m["name"] for m in manifests]
    for key, value in sorted(metrics.items()):
        for metric in sorted(CARD_METRICS, key=len, reverse=True):  # log1p_pearson_... before pearson_...
            if key.endswith("_" + metric):
                prefix = key[: -len(metric) - 1]
                set_name = prefix.removeprefix("eval_") if prefix != "eval" else names[0]
                if isinstance(value, float) and math.isfinite(value):
                    rows.append({"set": set_name, "metric": metric, "value": f"{value:.4f}"})
                break
    return rows


def _evaluated_rows(metrics: dict[str, float], manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many of each set's held-out cells the metrics cover (``--max_eval_samples`` may take fewer)."""
    rows = []
    for manifest in manifests:
        prefix = "eval" if len(manifests) == 1 else f"eval_{manifest['name']}"
        evaluated = metrics.get(f"{prefix}_cells_evaluated")
        if evaluated is not None:
            held_out = manifest["splits"]["eval"]["n_cells"]
            rows.append({"set": manifest["name"], "metric": "cells evaluated",
                         "value": f"{int(evaluated)} of {held_out}"})
    return rows


def sets_pretrained_with_every_cell(base: str | None) -> set[str]:
    """The sets a model was pre-trained on with every cell, none held out (its pretrain_summary.json): a set of
    that name evaluated later is not unseen. The benchmark's sets, whose test cells pre-training left out, are not
    among them."""
    if not base:
        return set()
    from modeling_sctranslator.default_model import DEFAULT_MODEL_NAME, resolve_model_name

    folder = Path(resolve_model_name(base) if str(base) == DEFAULT_MODEL_NAME else base)
    try:
        corpus = json.loads((folder / "pretrain_summary.json").read_text()).get("corpus", {})
    except (OSError, ValueError):
        return set()
    return {name for name, info in corpus.items() if not info.get("benchmark_test_cells_left_out")}


def _sets_in_base_pretraining(base: str | None, manifests: list[dict[str, Any]]) -> list[str]:
    """The corpora named as sets the base model was pre-trained on with every cell: their held-out cells were
    likely in pre-training, so the card's numbers are not on unseen cells."""
    every_cell = sets_pretrained_with_every_cell(base)
    return [m["name"] for m in manifests if m["name"] in every_cell]


def write_model_card(output_dir, model, manifests, data_args, model_args, training_args, metrics, summary) -> ModelCard:
    """Render the card to ``output_dir/README.md`` and return it."""
    output_dir = Path(output_dir)
    rows = _eval_rows(metrics, manifests)
    eval_results = [
        EvalResult(task_type="protein-abundance-prediction", dataset_type=r["set"], dataset_name=r["set"],
                   metric_type=r["metric"], metric_value=float(r["value"]))
        for r in rows
    ]
    base = model_args.model_name_or_path
    local_base = bool(base) and Path(base).exists()
    card_data = make_card_data(
        tags=[f"stage-{data_args.stage}"],
        base_model=base if base and not local_base else None,
        # corpus names are file stems, not Hub dataset ids: the Training data table names them instead
        datasets=None,
        model_name=data_args.model_card_name or output_dir.name,
        eval_results=eval_results or None,
    )
    weights = data_args.corpus_weights or [1.0] * len(manifests)
    corpora = [
        {"name": m["name"], "n_train": m["splits"]["train"]["n_cells"], "n_eval": m["splits"]["eval"]["n_cells"],
         "n_validation": m["splits"].get("validation", {}).get("n_cells", 0),
         "n_genes": len(m["genes"]), "n_genes_mapped": m["n_genes_mapped"], "n_proteins": len(m["proteins"]),
         "n_proteins_mapped": m["n_proteins_mapped"], "weight": w}
        for m, w in zip(manifests, weights, strict=True)
    ]
    optimizer = ("Adam (amsgrad)" if data_args.optimizer == "adam_amsgrad" else str(training_args.optim))
    schedule = getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)
    training_summary = (
        f"{summary['global_step']} steps of {training_args.per_device_train_batch_size} cells per process × "
        f"{summary['world_size']} process(es) × {training_args.gradient_accumulation_steps} accumulation; "
        f"{optimizer}, learning rate {training_args.learning_rate} ({schedule}), seed "
        f"{training_args.seed}; masked MSE on per-cell max-min scaled protein values; genes beyond "
        f"{model.config.max_genes} per cell sampled with truncation='{data_args.truncation}'"
        + (f"; stopped when held-out cosine similarity reached {data_args.cosine_threshold} (step "
           f"{summary['stopped_on_cosine_at']})" if summary.get("stopped_on_cosine_at") else "")
        + (f"; stopped early at step {summary['stopped_early_at']} (no validation improvement in "
           f"{data_args.early_stopping_patience} evaluations)" if summary.get("stopped_early_at") else "")
        + (f"; weights of step {summary['best_step']}, the best {summary['best_metric_name']} "
           f"({summary['best_metric']:.4g}) on the validation cells" if summary.get("best_step") else "")
        + (f". Mean training loss {summary['train_loss']:.4f}." if summary.get("train_loss") is not None else ".")
    )
    seen = _sets_in_base_pretraining(base, manifests)
    card = render_card(
        TEMPLATE,
        card_data,
        seen_in_pretraining=seen,
        model_name=card_data.model_name,
        stage=data_args.stage,
        stage_description=STAGE_DESCRIPTIONS[data_args.stage],
        base_model=Path(base).name if local_base else base,
        n_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        config=model.config,
        corpora=corpora,
        eval_fraction_pct=round(100 * manifests[0].get("eval_fraction", 0.2)),
        split_seed=manifests[0].get("split_seed", 0),
        eval_fold=manifests[0].get("eval_fold", 0),
        training_summary=training_summary,
        eval_results=rows + _evaluated_rows(metrics, manifests),
        # a card travels with the folder (to the Hub, to colleagues): no path of this machine in it
        repo_or_path=training_args.hub_model_id or output_dir.name,
    )
    card.save(output_dir / "README.md")
    return card
