"""Kill a run after a checkpoint, relaunch the same command: same steps, same examples, same loss."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from training.run_stage import KILL_ENV, main
from training.trainer import COMPLETE_MARKER, find_resume_checkpoint

from ._training_helpers import QUIET, RUN_STAGE, TINY_MODEL, subprocess_env


def _steps(log):
    """step -> the ids of each micro-batch trained at that step (the killed run stops right after a checkpoint,
    so the relaunch logs only the steps after it)."""
    out = {}
    for line in log.read_text().splitlines():
        step, _rank, ids = line.split("\t")
        out.setdefault(int(step), []).append(ids)
    return out


def test_kill_and_resume_matches_uninterrupted_run(tmp_path, corpora, vocab_dir):
    """With gradient accumulation a step holds several batches: a resume must skip all of them. (Accumulation 2
    only: a resume that skipped steps instead of steps x batches would fail here, and accumulation 1 is the
    same code with a multiplier of 1; each case costs ~40 s of CI.)"""
    accumulation = 2
    args = ["--stage", "sc", "--corpora", str(corpora["tenx_pbmc10k_s200"]), str(corpora["eccite_ctcl"]),
            "--vocab_dir", str(vocab_dir), *TINY_MODEL, "--feature_redraw_interval", "3", "--max_steps", "12",
            "--save_steps", "4", "--logging_steps", "1", "--per_device_train_batch_size", "4",
            "--gradient_accumulation_steps", str(accumulation), "--log_example_ids", "true", *QUIET]
    reference = main([*args, "--output_dir", str(tmp_path / "a")])

    out = tmp_path / "b"
    command = [sys.executable, str(RUN_STAGE), *args, "--output_dir", str(out)]
    killed = subprocess.run(command, env={**subprocess_env(), KILL_ENV: "8"}, capture_output=True, text=True)
    assert killed.returncode == 17, killed.stderr[-3000:]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]
    assert not (out / "model.safetensors").exists()  # it never finished
    resumed = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "checkpoint-8" in resumed.stderr

    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_step"] == reference["global_step"] == 12
    assert summary["resumed_from"] == "checkpoint-8"  # relative to the model folder: the summary is published
    assert str(tmp_path) not in (out / "training_summary.json").read_text()  # with the model, naming no user folder
    # the whole run's mean loss (it was the mean of the steps after the checkpoint)
    assert summary["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-5)
    ref_losses = dict(reference["loss_history"])
    assert summary["loss_history"][-1][1] == pytest.approx(ref_losses[12], rel=1e-5, abs=1e-7)
    for step, loss in summary["loss_history"]:  # steps 9..12 after the resume
        assert loss == pytest.approx(ref_losses[step], rel=1e-5, abs=1e-7)
    # every step trained on exactly the cells of the uninterrupted run: none lost, none repeated
    trained = _steps(out / "example_ids.tsv")
    assert trained == _steps(tmp_path / "a" / "example_ids.tsv")
    assert all(len(batches) == accumulation for batches in trained.values())
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(out / "model.safetensors")
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-5


def _fake_checkpoint(folder, step, complete=True, weights=b"x"):
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / "optimizer.pt").write_bytes(b"0")
    if complete:
        (folder / COMPLETE_MARKER).write_text("{}")
    return folder


def test_corrupt_latest_checkpoint_falls_back(tmp_path, caplog):
    import torch
    from safetensors.torch import save_file

    good = _fake_checkpoint(tmp_path / "checkpoint-4", 4)
    save_file({"w": torch.zeros(2)}, good / "model.safetensors")
    bad = _fake_checkpoint(tmp_path / "checkpoint-8", 8)
    (bad / "model.safetensors").write_bytes(b"\x00garbage")  # truncated write
    partial = _fake_checkpoint(tmp_path / "checkpoint-12", 12, complete=False)  # killed while saving
    save_file({"w": torch.zeros(2)}, partial / "model.safetensors")
    with caplog.at_level("WARNING"):
        assert find_resume_checkpoint(tmp_path) == str(good)
    assert "checkpoint-12 is not usable" in caplog.text and "checkpoint-8 is not usable" in caplog.text
    assert (tmp_path / "checkpoint-8.corrupt").is_dir() and not bad.exists()
    assert find_resume_checkpoint(tmp_path / "nothing") is None


def _tiny_run(corpus, vocab_dir, out, steps, *extra):
    return main(["--stage", "sc", "--corpora", str(corpus), "--vocab_dir", str(vocab_dir), *TINY_MODEL,
                 "--max_steps", str(steps), "--save_steps", "2", "--logging_steps", "1",
                 "--per_device_train_batch_size", "4", "--output_dir", str(out), *QUIET, *extra])


def test_a_relaunch_on_other_data_is_refused_and_a_finished_run_is_not_trained_again(tmp_path, corpora, vocab_dir):
    """Relaunched into the same folder with another protein file, the Trainer resumed the old run's checkpoint,
    picked the best step across both runs' validation cells and shipped it under the new run's card. A finished
    run relaunched took one step past --max_steps."""
    out = tmp_path / "run"
    first = _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 4)
    weights = (out / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit, match=r"holds checkpoints of another run \(corpora: .*tenx_pbmc10k_s200.* there, "
                                         r".*eccite_ctcl.* now\).*new --output_dir"):
        _tiny_run(corpora["eccite_ctcl"], vocab_dir, out, 6)
    again = _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 4)  # the same command: nothing to do
    assert again["global_step"] == first["global_step"] == 4
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert (out / "model.safetensors").read_bytes() == weights
    # killed after its last checkpoint, before its final folder was written: the rerun finishes it (it was refused)
    for name in ("training_summary.json", "model.safetensors", "README.md"):
        (out / name).unlink()
    finished = _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 4)
    assert finished["global_step"] == 4 and finished["loss_history"] == first["loss_history"]
    assert finished["train_loss"] == pytest.approx(first["train_loss"], rel=1e-6)
    for metric in ("eval_loss", "eval_pearson_per_protein_mean", "eval_cells_evaluated"):
        assert finished["eval"][metric] == pytest.approx(first["eval"][metric], rel=1e-5)
    assert load_file(out / "model.safetensors").keys() == load_file(out / "checkpoint-4" / "model.safetensors").keys()
    assert all(torch.equal(tensor, load_file(out / "checkpoint-4" / "model.safetensors")[key])
               for key, tensor in load_file(out / "model.safetensors").items())
    assert (out / "README.md").is_file() and sorted(p.name for p in out.glob("checkpoint-*")) == [
        "checkpoint-2", "checkpoint-4"]
    (out / "training_summary.json").unlink()
    with pytest.raises(SystemExit, match=r"at step 4, and --max_steps is 3: the folder holds a longer run"):
        _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 3)
    more = _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 6)  # raising --max_steps trains on
    assert more["global_step"] == 6 and more["resumed_from"].endswith("checkpoint-4")
    # another learning rate, protein transform or truncation: the checkpoint's optimiser and schedule won (the new
    # rate was ignored while the card reported it) and the target or input changed mid-run, with no word
    for option, value, recorded in (("--learning_rate", "5e-4", "0.0002 there, 0.0005"),
                                    ("--protein_transform", "none", "auto there, none"),
                                    ("--truncation", "first", "random there, first")):
        with pytest.raises(SystemExit, match=rf"another run \({option[2:]}: {recorded} now\): resuming would "
                                             r"continue that run's weights and optimiser"):
            _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 8, option, value)


def test_a_run_stopped_by_its_rule_is_not_trained_again(tmp_path, data_dir, vocab_dir):
    """An early-stopped run relaunched with the same command (a pipeline rerun) resumed from its last checkpoint,
    not the best one kept, started its patience again and trained on, changing the shipped weights."""
    out = tmp_path / "stopped"
    stop = ("--validation_fraction", "0.2", "--eval_strategy", "steps", "--eval_steps", "2",
            "--load_best_model_at_end", "true", "--metric_for_best_model", "loss", "--greater_is_better", "true",
            "--early_stopping_patience", "1")
    first = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, out, 40, *stop)
    assert first["stopped_early_at"] is not None and first["global_step"] < 40
    weights = (out / "model.safetensors").read_bytes()
    again = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, out, 40, *stop)
    assert again["global_step"] == first["global_step"] and (out / "model.safetensors").read_bytes() == weights


def test_finishing_a_killed_run_keeps_its_best_step(tmp_path, data_dir, vocab_dir):
    """A run killed after its last checkpoint is finished by the rerun as the Trainer would have: with
    --load_best_model_at_end, the folder gets the best step's weights, not the last step's."""
    out = tmp_path / "best"
    select = ("--validation_fraction", "0.2", "--eval_strategy", "steps", "--eval_steps", "2",
              "--load_best_model_at_end", "true", "--metric_for_best_model", "loss", "--greater_is_better", "true")
    first = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, out, 4, *select)
    assert first["best_step"] == 2  # the highest loss: not the last step, whose weights a plain finish would keep
    best = f"checkpoint-{first['best_step']}"
    for name in ("training_summary.json", "model.safetensors"):
        (out / name).unlink()
    finished = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, out, 4, *select)
    assert finished["best_step"] == first["best_step"]
    kept, expected = load_file(out / "model.safetensors"), load_file(out / best / "model.safetensors")
    assert kept.keys() == expected.keys() and all(torch.equal(kept[k], expected[k]) for k in kept)
    assert finished["eval"]["eval_loss"] == pytest.approx(first["eval"]["eval_loss"], rel=1e-5)
    # review: with the best checkpoint gone, the last step's weights are kept, and neither the summary nor the card
    # names the best step any more
    import shutil

    shutil.rmtree(out / best)
    for name in ("training_summary.json", "model.safetensors"):
        (out / name).unlink()
    kept_last = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, out, 4, *select)
    assert "best_step" not in kept_last and "weights of step" not in (out / "README.md").read_text()
    kept, last = load_file(out / "model.safetensors"), load_file(out / "checkpoint-4" / "model.safetensors")
    assert all(torch.equal(kept[k], last[k]) for k in kept)


def test_evaluating_during_training_leaves_the_training_unchanged(tmp_path, data_dir, vocab_dir):
    """Each evaluation drew from the global random state (its DataLoader's seed): evaluating every N steps moved the
    dropout and random features of the steps after it, so --eval_steps or early stopping changed the weights."""
    split = ("--validation_fraction", "0.2", "--feature_redraw_interval", "1")
    plain = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, tmp_path / "plain", 4, *split, "--eval_strategy", "no")
    evaluated = _tiny_run(data_dir / "tenx_pbmc10k_s200", vocab_dir, tmp_path / "evaluated", 4, *split,
                          "--eval_strategy", "steps", "--eval_steps", "1")
    assert evaluated["loss_history"] == plain["loss_history"]
    a, b = load_file(tmp_path / "plain" / "model.safetensors"), load_file(tmp_path / "evaluated" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_model_folder_without_checkpoints_is_not_trained_over(tmp_path, corpora, vocab_dir):
    """A copy of a finished run's folder with its checkpoints deleted (or a model folder downloaded from the Hub,
    which has the run's training_summary.json but no signature) was trained over with other data, its weights and
    card replaced without a word. Refused now; the same run relaunched there still trains."""
    import shutil

    out = tmp_path / "run"
    _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 2)
    for checkpoint in out.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    weights = (out / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit, match=r"holds the model of another finished run \(corpora: .*tenx_pbmc10k_s200.* "
                                         r"there, .*eccite_ctcl.* now\).*new --output_dir"):
        _tiny_run(corpora["eccite_ctcl"], vocab_dir, out, 2)
    assert (out / "model.safetensors").read_bytes() == weights
    downloaded = tmp_path / "downloaded"
    shutil.copytree(out, downloaded, ignore=shutil.ignore_patterns("run_signature.json", "corpora"))
    with pytest.raises(SystemExit, match=r"holds files that no training run wrote and this one would replace"):
        _tiny_run(corpora["eccite_ctcl"], vocab_dir, downloaded, 2)
    assert (downloaded / "model.safetensors").read_bytes() == weights
    again = _tiny_run(corpora["tenx_pbmc10k_s200"], vocab_dir, out, 2)  # the same run: trains there again
    assert again["global_step"] == 2
