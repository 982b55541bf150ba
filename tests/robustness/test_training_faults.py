"""Training faults: a NaN loss stops the run with the batch named, and nothing is saved as final."""

from __future__ import annotations

import pytest

from modeling_sctranslator import SCTranslatorForProteinPrediction
from training.run_stage import main as run_stage
from training.trainer import NonFiniteLossError

from ..training._training_helpers import QUIET, TINY_MODEL


def test_nan_loss_stops_with_a_message_naming_the_batch(tmp_path, data_dir, vocab_dir, monkeypatch):
    original = SCTranslatorForProteinPrediction.forward
    calls = {"training": 0}

    def forward_with_a_bad_third_step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self.training:
            calls["training"] += 1
            if calls["training"] == 3:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(SCTranslatorForProteinPrediction, "forward", forward_with_a_bad_third_step)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"NaN/inf at step 3 \(process 0\) on the batch of corpus 0 row \d+"):
        run_stage([
            "--stage", "finetune", "--corpora", str(data_dir / "tenx_pbmc10k_s200"), "--vocab_dir", str(vocab_dir),
            "--output_dir", str(out), "--max_steps", "5", "--per_device_train_batch_size", "4", "--save_steps", "5",
            *TINY_MODEL, *QUIET,
        ])
    assert not (out / "model.safetensors").exists()  # no final model from a diverged run


def _stage_argv(tmp_path, corpus, vocab_dir, *extra):
    return ["--stage", "sc", "--corpora", str(corpus), "--vocab_dir", str(vocab_dir), "--output_dir",
            str(tmp_path / "run"), "--max_steps", "2", "--per_device_train_batch_size", "4", *TINY_MODEL, *QUIET,
            *extra]


def test_a_stage_whose_start_model_is_not_written_yet_says_so(tmp_path, data_dir, vocab_dir):
    missing = tmp_path / "stage1_bulk"  # stage sc started before stage bulk wrote its folder
    with pytest.raises(SystemExit, match="does not exist: run the stage that writes it first"):
        run_stage(_stage_argv(tmp_path, data_dir / "tenx_pbmc10k_s200", vocab_dir,
                              "--model_name_or_path", str(missing)))
    missing.mkdir()  # the predecessor is still running: a folder without config.json
    with pytest.raises(SystemExit, match="has no config.json"):
        run_stage(_stage_argv(tmp_path, data_dir / "tenx_pbmc10k_s200", vocab_dir,
                              "--model_name_or_path", str(missing)))


def test_a_run_never_writes_into_its_start_model_or_a_folder_it_did_not_make(tmp_path, data_dir, vocab_dir):
    """Fine-tuning into the start model's folder replaced its weights and card without a word; so did any folder
    holding the user's files. Both are refused before any work, and nothing in them changes."""
    import shutil

    from modeling_sctranslator import DEFAULT_MODEL_DIR

    start = tmp_path / "mymodel"
    shutil.copytree(DEFAULT_MODEL_DIR, start)
    before = {p.name: p.read_bytes() for p in start.iterdir() if p.is_file()}
    argv = ["--stage", "finetune", "--corpora", str(data_dir / "tenx_pbmc10k_s200"), "--model_name_or_path",
            str(start), "--max_steps", "2", "--per_device_train_batch_size", "4", *QUIET]
    with pytest.raises(SystemExit, match="is the folder of --model_name_or_path"):
        run_stage([*argv, "--output_dir", str(start)])
    assert {p.name: p.read_bytes() for p in start.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in start.iterdir()) == sorted(before)

    mine = tmp_path / "analysis"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    (mine / "train.log").write_text("a log redirected here is no reason to refuse")
    with pytest.raises(SystemExit, match=r"holds files that no training run wrote and this one would replace "
                                         r"\(README.md\)"):
        run_stage([*argv, "--output_dir", str(mine)])
    assert sorted(p.name for p in mine.iterdir()) == ["README.md", "train.log"]
    assert (mine / "README.md").read_text() == "my notes"


def test_nan_in_the_rna_fails_when_the_corpus_is_built_in_one_line(tmp_path, data_dir, vocab_dir, monkeypatch,
                                                                    capsys):
    import sys

    import anndata as ad
    import numpy as np

    from training.run_stage import cli

    rna = ad.read_h5ad(data_dir / "tenx_pbmc10k_s200_rna.h5ad")
    rna.X = rna.X.toarray()
    rna.X[7, 3] = np.nan
    rna.write_h5ad(tmp_path / "bad_rna.h5ad")
    ad.read_h5ad(data_dir / "tenx_pbmc10k_s200_adt.h5ad").write_h5ad(tmp_path / "bad_adt.h5ad")
    monkeypatch.setattr(sys, "argv", ["run_stage.py", *_stage_argv(tmp_path, tmp_path / "bad", vocab_dir)])
    with pytest.raises(SystemExit) as stopped:
        cli()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"first in cell {rna.obs_names[7]!r}" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_run_that_would_take_days_says_so_after_three_steps(monkeypatch, caplog):
    """The released sizes on a 2-core CPU (~4 min per step) are named after the first steps, not days later."""
    import logging
    from types import SimpleNamespace

    import training.trainer as trainer_module
    from training.trainer import RunLengthCallback

    clock = iter(range(0, 10_000, 240))  # 240 s per step
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(clock)))
    callback = RunLengthCallback()
    with caplog.at_level(logging.INFO, logger="training.trainer"):
        for step in range(1, 6):
            callback.on_step_end(None, SimpleNamespace(global_step=step, max_steps=3000), None)
    assert callback.projected_hours == pytest.approx(240 * 2996 / 3600)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "240.00 s per step" in warned[0].getMessage()
    assert "far longer than a run is meant to take" in warned[0].getMessage()


def test_processes_that_did_not_join_one_job_are_refused_before_any_work(tmp_path, data_dir, vocab_dir):
    """``accelerate launch --multi_gpu`` on a machine without GPUs starts 2 processes that each train alone
    (and race to build the same corpora); refused with the launch that works on CPUs."""
    import subprocess
    import sys

    from ..training._training_helpers import subprocess_env

    out = tmp_path / "run"
    argv = _stage_argv(tmp_path, data_dir / "tenx_pbmc10k_s200", vocab_dir)
    i = argv.index("--use_cpu")
    del argv[i:i + 2]  # as a user types it: with --use_cpu true the two processes do form one job
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "training/run_stage.py", *argv],
        capture_output=True, text=True, timeout=600, env=subprocess_env(),
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert done.returncode != 0
    assert "did not join one training job" in done.stderr + done.stdout
    assert not out.exists()
