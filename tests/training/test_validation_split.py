"""Validation cells for model selection: drawn apart from the test cells, used by --load_best_model_at_end."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from training.corpus import CorpusError, build_corpus, find_source, load_manifest
from training.run_stage import main

from ._training_helpers import QUIET, TINY_MODEL


def _rows(manifest, split):
    return {r for s in manifest["splits"][split]["shards"]
            for r in pq.read_table(f"{manifest['dir']}/{s['file']}", columns=["row"])["row"].to_pylist()}


def test_validation_cells_are_apart_and_test_cells_unchanged(tmp_path, corpora, data_dir, tokenizer):
    build_corpus(find_source(data_dir / "eccite"), tmp_path / "v", tokenizer, num_shards=4, validation_fraction=0.1)
    with_val, without = load_manifest(tmp_path / "v"), load_manifest(corpora["eccite"])
    train, val, test = (_rows(with_val, s) for s in ("train", "validation", "eval"))
    assert len(val) == 50 and len(test) == 100 and len(train) == 350
    assert not (train & val) and not (train & test) and not (val & test)
    assert test == _rows(without, "eval")  # the same seed gives the same test cells with or without validation
    assert with_val["validation_fraction"] == 0.1


def test_cross_validation_folds_hold_out_every_cell_once(tmp_path, corpora, data_dir, tokenizer):
    """--eval_fold k: the k-th block of the same permutation is held out; fold 0 is the usual split, the folds are
    disjoint and cover every cell, validation cells come from the rest, and the benchmark draws the same cells."""
    from training.paired_data import split_rows

    held_out = []
    for fold in range(5):
        manifest = build_corpus(find_source(data_dir / "eccite"), tmp_path / f"f{fold}", tokenizer, num_shards=1,
                                validation_fraction=0.1, eval_fold=fold)
        manifest = load_manifest(tmp_path / f"f{fold}")
        train, val, test = (_rows(manifest, s) for s in ("train", "validation", "eval"))
        assert len(test) == 100 and len(val) == 50 and len(train) == 350 and not (test & (train | val))
        assert sorted(test) == split_rows(500, fold=fold)[1].tolist()
        held_out.append(test)
    assert held_out[0] == _rows(load_manifest(corpora["eccite"]), "eval")
    assert sorted(r for t in held_out for r in t) == list(range(500))
    with pytest.raises(CorpusError, match="eval_fold must be in"):
        build_corpus(find_source(data_dir / "eccite"), tmp_path / "f5", tokenizer, eval_fold=5)
    with pytest.raises(CorpusError, match="1/K"):
        build_corpus(find_source(data_dir / "eccite"), tmp_path / "f6", tokenizer, eval_fraction=0.3, eval_fold=1)


def test_validation_fraction_leaving_no_training_cell_is_refused(tmp_path, data_dir, tokenizer):
    with pytest.raises(CorpusError, match="validation_fraction"):
        build_corpus(find_source(data_dir / "eccite"), tmp_path / "v", tokenizer, validation_fraction=0.8)


def _select_on_validation(out, data_dir, vocab_dir, max_steps: int, every: int, *extra: str) -> dict:
    """Fine-tune a tiny model on 200 eccite cells (140 train / 20 validation / 40 test), keeping the best step."""
    return main(["--stage", "finetune", "--corpora", str(data_dir / "eccite"), "--vocab_dir", str(vocab_dir),
                 "--output_dir", str(out), "--max_steps", str(max_steps), "--per_device_train_batch_size", "4",
                 "--learning_rate", "1e-3", "--validation_fraction", "0.1", "--max_cells_per_corpus", "200",
                 "--eval_strategy", "steps", "--eval_steps", str(every), "--save_steps", str(every),
                 "--load_best_model_at_end", "true", "--logging_steps", str(every), *extra, *TINY_MODEL, *QUIET])


def test_best_checkpoint_is_selected_on_validation_cells(tmp_path, data_dir, vocab_dir):
    out = tmp_path / "ft"
    summary = _select_on_validation(out, data_dir, vocab_dir, 12, 4)
    history = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())["log_history"]
    val_losses = {e["step"]: e["eval_loss"] for e in history if "eval_loss" in e}
    assert sorted(val_losses) == [4, 8, 12]
    assert all(e["eval_cells_evaluated"] == 20 for e in history if "eval_loss" in e)  # validation cells only
    best = min(val_losses, key=val_losses.get)
    assert summary["best_step"] == best and summary["best_metric"] == pytest.approx(val_losses[best])
    assert summary["eval"]["eval_cells_evaluated"] == 40  # final metrics on the test cells
    saved, kept = load_file(out / "model.safetensors"), load_file(out / f"checkpoint-{best}" / "model.safetensors")
    assert saved.keys() == kept.keys() and all((saved[k] == kept[k]).all() for k in saved)
    assert f"weights of step {best}" in (out / "README.md").read_text()


def test_early_stopping_stops_after_patience(tmp_path, data_dir, vocab_dir):
    out = tmp_path / "es"
    # metric_for_best_model=loss with greater_is_better: "improving" means a higher loss, so it stops soon
    summary = _select_on_validation(out, data_dir, vocab_dir, 40, 2, "--metric_for_best_model", "loss",
                                    "--greater_is_better", "true", "--early_stopping_patience", "2")
    assert summary["stopped_early_at"] is not None and summary["global_step"] < 40
    assert summary["global_step"] - summary["best_step"] == 2 * 2  # two evaluations without improvement
    assert "stopped early at step" in (out / "README.md").read_text()


def test_several_corpora_select_and_stop_on_their_mean_metric(tmp_path, data_dir, vocab_dir):
    """finetune.yaml's metric_for_best_model (pearson_per_protein_mean) was in no evaluation of several corpora (the
    Trainer names them eval_<corpus>_<metric>): a KeyError at the first evaluation, its steps lost."""
    out = tmp_path / "two"
    summary = main(["--stage", "finetune", "--corpora", str(data_dir / "eccite"), str(data_dir / "eccite_ctcl"),
                    "--vocab_dir", str(vocab_dir), "--output_dir", str(out), "--max_steps", "40",
                    "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--validation_fraction", "0.1",
                    "--max_cells_per_corpus", "120", "--eval_strategy", "steps", "--eval_steps", "2", "--save_steps",
                    "2", "--load_best_model_at_end", "true", "--logging_steps", "2", "--metric_for_best_model", "loss",
                    "--greater_is_better", "true", "--early_stopping_patience", "2", *TINY_MODEL, *QUIET])
    history = json.loads((out / f"checkpoint-{summary['global_step']}" / "trainer_state.json").read_text())
    evaluations: dict[int, dict] = {}  # each corpus's metrics and their mean, logged apart at one step
    for entry in history["log_history"]:
        if any(key.startswith("eval_") for key in entry):
            evaluations.setdefault(entry["step"], {}).update(entry)
    for step, e in evaluations.items():  # the mean of the two corpora's, each weighing one
        assert e["eval_loss"] == pytest.approx((e["eval_eccite_loss"] + e["eval_eccite_ctcl_loss"]) / 2), step
    assert summary["best_metric_name"] == "eval_loss"
    assert summary["best_metric"] == pytest.approx(evaluations[summary["best_step"]]["eval_loss"])
    # "improving" is a higher loss here, so it stops after two evaluations without one, as with one corpus
    assert summary["stopped_early_at"] is not None and summary["global_step"] - summary["best_step"] == 2 * 2


def test_early_stopping_without_evaluation_is_refused(tmp_path, data_dir, vocab_dir):
    with pytest.raises(SystemExit, match="--early_stopping_patience needs evaluation"):
        main(["--stage", "finetune", "--corpora", str(data_dir / "eccite"), "--vocab_dir", str(vocab_dir),
              "--output_dir", str(tmp_path / "x"), "--max_steps", "4", "--early_stopping_patience", "2",
              *TINY_MODEL, *QUIET])
