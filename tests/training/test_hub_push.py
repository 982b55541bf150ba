"""--push_to_hub uploads the model folder's own files: never the cached corpora (every cell's values)."""

from __future__ import annotations

import concurrent.futures
import fnmatch
import os
import types

from training.run_stage import main

from ._training_helpers import QUIET, TINY_MODEL


class RecordingHub:
    """Stands in for the Hub API: records what each upload would send, sends nothing."""

    def __init__(self) -> None:
        self.uploads: list[list[str]] = []

    def create_repo(self, repo_id=None, *args, **kwargs):
        return types.SimpleNamespace(repo_id=repo_id or (args[0] if args else None))

    def upload_folder(self, folder_path=None, allow_patterns=None, ignore_patterns=None, run_as_future=False, **_):
        files = sorted(os.path.relpath(os.path.join(folder, name), folder_path)
                       for folder, _, names in os.walk(folder_path) for name in names)
        if allow_patterns is not None:
            files = [f for f in files if any(fnmatch.fnmatch(f, p) for p in allow_patterns)]
        if ignore_patterns is not None:
            files = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in ignore_patterns)]
        self.uploads.append(files)
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(None)
        return done

    def __getattr__(self, name):
        return lambda *args, **kwargs: types.SimpleNamespace()


def test_push_to_hub_uploads_the_model_not_the_cells(tmp_path, data_dir, vocab_dir, monkeypatch):
    import transformers.trainer

    hub = RecordingHub()
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: hub)
    out = tmp_path / "pushed"
    pair = f"{data_dir / 'eccite_ctcl_rna.h5ad'}:{data_dir / 'eccite_ctcl_adt.h5ad'}"
    main(["--stage", "finetune", "--corpora", pair, "--vocab_dir", str(vocab_dir), *TINY_MODEL, "--max_steps", "2",
          "--save_steps", "2", "--per_device_train_batch_size", "4", "--output_dir", str(out), "--log_example_ids",
          "true", "--push_to_hub", "true", "--hub_model_id", "me/tiny", "--max_eval_samples", "8",
          "--hub_token", "hf_SECRETprobe123", *QUIET])
    final = hub.uploads[-1]
    assert "model.safetensors" in final and "config.json" in final and "README.md" in final
    # one push, with the card: the Trainer's own push of the saved model came first, without it (a repo with no card)
    assert len(hub.uploads) == 1
    assert not [f for upload in hub.uploads for f in upload if f.startswith("corpora") or "parquet" in f
                or f in ("example_ids.tsv", "training_args.bin")]
    # the Trainer pickled its arguments, --hub_token included, into the folder and every checkpoint (and pushed them)
    saved = [path for path in out.rglob("*") if path.is_file() and b"hf_SECRETprobe123" in path.read_bytes()]
    assert saved == [] and (out / "training_args.bin").is_file()
    assert any(out.glob("corpora/*/train-*.parquet"))  # the cells were there to leak
    card = (out / "README.md").read_text()  # the stage's card, not the Trainer's generic one written over it
    assert "Predictions are on the training scale" in card and "## Model" in card
    # it travels: no path of this machine, no file stem posing as a Hub dataset, and the cells its metrics cover
    assert str(tmp_path) not in card and "datasets:" not in card
    assert "| eccite_ctcl | cells evaluated | 8 of 35 |" in card


def test_a_card_says_when_its_test_cells_were_in_the_base_models_pre_training():
    """Fine-tuned from sctranslator-base on a set it was pre-trained on with every cell (eccite_ctcl), the card called
    its evaluation cells held-out with no word that the base model had trained on them."""
    from model_cards import card_data, render_card
    from training.model_card import _sets_in_base_pretraining

    manifests = [{"name": "eccite_ctcl"}, {"name": "eccite"}, {"name": "my_own_set"}]
    seen = _sets_in_base_pretraining("sctranslator-base", manifests)
    assert seen == ["eccite_ctcl"]  # eccite's benchmark test cells were left out of pre-training; my_own_set is new
    assert _sets_in_base_pretraining(None, manifests) == [] and _sets_in_base_pretraining("me/other", manifests) == []
    from modeling_sctranslator import SCTranslatorConfig

    fields = {"config": SCTranslatorConfig(), "corpora": [], "eval_results": []}
    card = render_card("sctranslator_stage.md", card_data(model_name="x"), seen_in_pretraining=seen, **fields).text
    assert "**Not unseen cells:** eccite_ctcl is" in card
    assert "Not unseen cells" not in render_card("sctranslator_stage.md", card_data(model_name="x"), **fields).text
