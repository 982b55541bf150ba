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
