"""Publishing to and loading from the Hub, against a stand-in for the Hub API (offline).

The stand-in ``HfApi`` writes uploads into a local Hugging Face cache laid out as the real client
lays out downloads, so loading the repo id afterwards goes through transformers' and
huggingface_hub's real offline resolution.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModel, pipeline

from sctranslator.cli import main as cli_main

from ..conftest import SECRET

REPO = "testorg/sctranslator-small"


@pytest.fixture()
def pushed(hub, fixtures_dir, vocab_dir, tmp_path, capsys):
    out = tmp_path / "converted"
    code = cli_main([
        "convert-original", str(fixtures_dir / "original_small_model.pt"), "--out", str(out),
        "--id-tables", str(vocab_dir), "--push-to-hub", REPO, "--token-env", "HF_TOKEN_FOR_TESTS",
    ])
    assert code == 0
    printed = capsys.readouterr()
    return hub, out, printed


def test_push_uploads_model_tokenizer_code_and_a_valid_card(pushed):
    hub, out, _ = pushed
    (_, repo, private, token), (_, repo2, files, token2) = hub.calls
    assert repo == repo2 == REPO and not private
    assert token == token2 == SECRET  # handed to the client, nowhere else
    assert set(files) >= {
        "config.json", "model.safetensors", "configuration_sctranslator.py", "modeling_sctranslator.py",
        "favor_attention.py", "preprocessor_config.json", "gene_vocab.json", "tokenization_sctranslator.py",
        "gene_ids.py", "vocab.py", "README.md",
    }
    card = ModelCard.load(hub.snapshot(REPO) / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "tabular-regression"
    assert {"single-cell", "proteomics", "CITE-seq", "converted-checkpoint"} <= set(card.data.tags)
    # the original weights carry no licence (its README: all rights reserved), not the package's Apache-2.0
    assert card.data.license == "other" and "All rights reserved" in card.text
    assert "original_small_model.pt" in card.text and "sha256" in card.text


def test_token_never_reaches_output_files_or_logs(pushed):
    hub, out, printed = pushed
    assert SECRET not in printed.out and SECRET not in printed.err
    for path in [*out.iterdir(), *hub.snapshot(REPO).iterdir()]:
        assert SECRET.encode() not in path.read_bytes(), path.name


def test_repo_id_loads_through_auto_model_pipeline_and_cli(pushed, fixtures_dir, data_dir, tmp_path):
    io = np.load(fixtures_dir / "original_small_io.npz")
    model = AutoModel.from_pretrained(REPO).eval()
    with torch.no_grad():
        predictions = model(
            input_ids=torch.from_numpy(io["rna_ids"]), input_values=torch.from_numpy(io["rna_values"]),
            attention_mask=torch.from_numpy(io["rna_mask"]), protein_ids=torch.from_numpy(io["protein_ids"]),
            protein_attention_mask=torch.from_numpy(io["protein_mask"]),
        ).predictions
    assert np.abs(predictions.numpy() - io["prediction"]).max() <= 1e-5

    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:6].copy()
    from_pipeline = pipeline("protein-prediction", model=REPO, device="cpu")(rna, proteins=["CD4", "CD19"])
    rna.write_h5ad(tmp_path / "rna.h5ad")
    (tmp_path / "proteins.txt").write_text("CD4\nCD19\n")
    assert cli_main(["predict", "--model", REPO, "--rna", str(tmp_path / "rna.h5ad"), "--proteins",
                     str(tmp_path / "proteins.txt"), "--out", str(tmp_path / "p.h5ad"), "--device", "cpu"]) == 0
    np.testing.assert_array_equal(ad.read_h5ad(tmp_path / "p.h5ad").X, from_pipeline.X)


@pytest.mark.parametrize("damage, message", [
    (lambda snap: (snap / "gene_vocab.json").unlink(), "gene_vocab.json"),
    (lambda snap: (snap / "model.safetensors").write_bytes((snap / "model.safetensors").read_bytes()[:1000]),
     "model.safetensors .*damaged"),
    (lambda snap: (snap / "config.json").write_text("{not json"), "config.json .*not valid JSON"),
    # a module the copied code imports: the fixed list of required files let such a folder pass
    (lambda snap: (snap / "encoders.py").unlink(), "lacks encoders.py: its code imports them"),
])
def test_missing_or_corrupt_repo_files_are_named(pushed, tmp_path, capsys, damage, message, data_dir):
    hub, _, _ = pushed
    damage(hub.snapshot(REPO))
    (tmp_path / "proteins.txt").write_text("CD4\n")
    code = cli_main(["predict", "--model", REPO, "--rna", str(data_dir / "eccite_ctcl_rna.h5ad"), "--proteins",
                     str(tmp_path / "proteins.txt"), "--out", str(tmp_path / "p.h5ad")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_folder_from_a_newer_release_is_refused(pushed, tmp_path, capsys, data_dir):
    import json

    hub, _, _ = pushed
    config_path = hub.snapshot(REPO) / "config.json"
    config = json.loads(config_path.read_text())
    config["sctranslator_format"] = 99
    config_path.write_text(json.dumps(config))
    (tmp_path / "p.txt").write_text("CD4\n")
    code = cli_main(["predict", "--model", REPO, "--rna", str(data_dir / "eccite_ctcl_rna.h5ad"), "--proteins",
                     str(tmp_path / "p.txt"),
                     "--out", str(tmp_path / "p.h5ad")])
    assert code == 2 and "newer sctranslator" in capsys.readouterr().err


def test_push_refuses_an_incomplete_folder(hub, tmp_path, capsys):
    folder = tmp_path / "incomplete"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert cli_main(["push", "--model", str(folder), "--repo-id", REPO]) == 2
    assert "model.safetensors" in capsys.readouterr().err
    assert hub.calls == []


def test_finetuned_variant_records_its_base_model_and_metrics(pushed, data_dir, tmp_path, capsys):
    from training.run_stage import main as run_stage

    hub, _, _ = pushed
    out = tmp_path / "finetuned"
    run_stage([
        "--stage", "finetune", "--model_name_or_path", REPO, "--corpora", str(data_dir / "eccite"),
        "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
        "--eval_strategy", "no", "--save_steps", "2", "--report_to", "none", "--use_cpu", "true",
        "--disable_tqdm", "true", "--max_cells_per_corpus", "60", "--num_shards", "2", "--protein_truncation", "true",
    ])
    assert cli_main(["push", "--model", str(out), "--repo-id", "testorg/sctranslator-eccite",
                     "--token-env", "HF_TOKEN_FOR_TESTS"]) == 0
    card = ModelCard.load(hub.snapshot("testorg/sctranslator-eccite") / "README.md")
    assert card.data.base_model == REPO
    metrics = {m["type"] for result in card.data.to_dict()["model-index"][0]["results"] for m in result["metrics"]}
    assert {"mse", "cosine_similarity", "pearson_per_protein_mean"} <= metrics
    assert SECRET not in capsys.readouterr().out


def test_the_shipped_default_model_is_pushed_as_it_is(hub, capsys):
    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR

    repo = "testorg/sctranslator-base"
    assert cli_main(["push", "--model", str(DEFAULT_MODEL_DIR), "--repo-id", repo,
                     "--token-env", "HF_TOKEN_FOR_TESTS"]) == 0
    (_, _, files, _) = hub.calls[-1]
    assert {"model.safetensors", "config.json", "gene_vocab.json", "preprocessor_config.json", "README.md",
            "trained_tokens.json", "pretrain_summary.json"} <= set(files)
    assert set(files) == {p.name for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}  # the allow-list covers it
    assert ModelCard.load(hub.snapshot(repo) / "README.md").data.model_name == "sctranslator-base"
    # the pushed repo id then loads like the folder
    model = AutoModel.from_pretrained(repo)
    assert model.config.translator_type == "cross_attention"


def test_a_users_own_files_in_the_model_folder_stay_local_and_the_card_names_the_repo(hub, tmp_path):
    """`push` uploaded every top-level file but a deny-list: cells a user kept beside the model (patient_cells.h5ad)
    and their notes went to the Hub with it. Only the files a model folder is made of go; the others are named. The
    card's usage lines named the local folder on the Hub."""
    import shutil

    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR

    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    (folder / "patient_cells.h5ad").write_bytes(b"cells")
    (folder / "notes.txt").write_text("private")
    (folder / "analysis.py").write_text("print('mine')")
    with pytest.warns(UserWarning, match=r"3 file\(s\) .* not uploaded: analysis.py, notes.txt, patient_cells.h5ad"):
        assert cli_main(["push", "--model", str(folder), "--repo-id", REPO, "--token-env", "HF_TOKEN_FOR_TESTS"]) == 0
    (_, _, files, _) = hub.calls[-1]
    assert set(files) == {p.name for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert not {"patient_cells.h5ad", "notes.txt", "analysis.py"} & {p.name for p in hub.snapshot(REPO).iterdir()}
    # the card's usage names the repository, not the local folder (model="sctranslator-base" loads nothing there);
    # the folder's own card is left as written
    card = (hub.snapshot(REPO) / "README.md").read_text()
    assert f'pipeline("protein-prediction", model="{REPO}")' in card and f"--model {REPO} --rna" in card
    assert f'AutoModel.from_pretrained("{REPO}", trust_remote_code=True)' in card and '"sctranslator-base"' not in card
    assert (folder / "README.md").read_bytes() == (DEFAULT_MODEL_DIR / "README.md").read_bytes()
    assert (hub.snapshot(REPO) / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


def test_the_cards_folder_name_is_replaced_only_where_it_loads_the_model():
    """A folder named like a word of the card ("scaled") became the repo id in layers["scaled"] too."""
    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR
    from sctranslator.hub import card_for_repo

    card = (DEFAULT_MODEL_DIR / "README.md").read_text().replace('"sctranslator-base"', '"scaled"')
    card = card.replace("--model sctranslator-base ", "--model scaled ")
    pushed = card_for_repo(card, "me/x")
    assert pushed.count('layers["scaled"]') == card.count('layers["scaled"]') > 0
    assert 'pipeline("protein-prediction", model="me/x")' in pushed and "--model me/x --rna" in pushed
    assert '"scaled", trust_remote_code' not in pushed


def test_the_default_models_card_loads_it_without_naming_it_and_names_the_repo_once_pushed():
    """The shipped card said pipeline("protein-prediction", model="sctranslator-base"), which transformers looks up
    on the Hub (no such repo): locally it loads the default with no model named; pushed, it names the repo."""
    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR
    from sctranslator.hub import card_for_repo

    card = (DEFAULT_MODEL_DIR / "README.md").read_text()
    assert 'pipeline("protein-prediction")  #' in card and 'model="sctranslator-base"' not in card
    pushed = card_for_repo(card, "lab/sctranslator-base")
    assert 'pipeline("protein-prediction", model="lab/sctranslator-base")' in pushed
    assert 'pipeline("protein-prediction")' not in pushed and "--model lab/sctranslator-base --rna" in pushed
    assert 'from_pretrained("lab/sctranslator-base", trust_remote_code=True)' in pushed


def test_a_token_in_place_of_its_variable_or_an_unset_variable_stops_before_anything_is_written(
        hub, fixtures_dir, vocab_dir, tmp_path, capsys, monkeypatch):
    """`push --token hf_...` is argparse's abbreviation of --token-env: the token became a variable name, unset, so
    the push went ahead as whoever was logged in. A named variable that is unset did the same."""
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    folder = tmp_path / "converted"
    convert = ["convert-original", str(fixtures_dir / "original_small_model.pt"), "--out", str(folder),
               "--push-to-hub", REPO]
    fake_token = "hf_" + "x" * 30
    for extra, message in ((["--id-tables", str(vocab_dir), "--token", fake_token], "not the token"),
                           (["--id-tables", str(vocab_dir), "--token-env", "NOT_SET_HERE"], "no such environment"),
                           ([], "add --id-tables DIR")):
        assert cli_main(convert + extra) == 2
        err = capsys.readouterr().err
        assert message in err and fake_token not in err
        assert not folder.exists() and hub.calls == []  # refused before converting, nothing pushed
    assert cli_main([*convert[:4], "--id-tables", str(vocab_dir)]) == 0
    assert cli_main(["push", "--model", str(folder), "--repo-id", REPO, "--token", fake_token]) == 2
    assert "not the token" in capsys.readouterr().err and hub.calls == []
    monkeypatch.setenv("hf_token_of_ci", SECRET)  # a variable whose name starts like a token is still a variable
    assert cli_main(["push", "--model", str(folder), "--repo-id", REPO, "--token-env", "hf_token_of_ci"]) == 0
    assert hub.calls[0][-1] == SECRET


def test_a_folder_from_a_newer_release_is_refused_by_automodel_too(tmp_path):
    """Only the CLI's folder check read the format: AutoModel.from_pretrained loaded a newer folder as this version's
    model (a part it does not know would be dropped or misread)."""
    import json
    import shutil

    from transformers import AutoModel

    import modeling_sctranslator  # noqa: F401 (registers the model)
    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR

    folder = shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "newer")
    config = json.loads((folder / "config.json").read_text())
    config["sctranslator_format"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"saved by a newer sctranslator \(folder format 99; this version reads "
                                         r"formats up to 3\): upgrade sctranslator"):
        AutoModel.from_pretrained(folder)


def test_a_module_the_folders_code_imports_is_published_even_when_this_version_has_no_such_module(tmp_path):
    """The code files published were this package's module names: a folder saved by a version whose module was since
    renamed (its modeling code imports .old_helpers) pushed without it and did not load from the Hub. What the
    folder's model and tokenizer code imports goes too; a user's script beside it (importing nothing) stays."""
    import shutil

    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR
    from training.published import publishable_files

    folder = tmp_path / "saved_by_an_earlier_version"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    modeling = folder / "modeling_sctranslator.py"
    modeling.write_text(modeling.read_text() + "\nfrom .old_helpers import helper  # noqa\n")
    (folder / "old_helpers.py").write_text("from .renamed_since import x  # noqa\n\nhelper = 1\n")
    (folder / "renamed_since.py").write_text("x = 2\n")
    (folder / "analysis.py").write_text("print('mine')\n")
    with pytest.warns(UserWarning, match=r"1 file\(s\) .* not uploaded: analysis.py"):
        files = publishable_files(folder)
    assert {"old_helpers.py", "renamed_since.py", "modeling_sctranslator.py"} <= set(files)
    assert "analysis.py" not in files


def test_a_pushed_cards_title_and_model_index_name_the_repo():
    """After `push --repo-id myorg/ft-eccite` the card's usage named the repo but its title and model-index entry
    still said the local folder (out_base)."""
    from sctranslator.hub import card_for_repo

    card = ("---\nmodel-index:\n- name: out_base\n  results: []\n---\n\n# out_base\n\nFine-tuned on out_base's cells.\n"
            '```python\npredictor = pipeline("protein-prediction", model="out_base")\n```\n')
    pushed = card_for_repo(card, "myorg/ft-eccite")
    assert "- name: ft-eccite\n" in pushed and "\n# ft-eccite\n" in pushed
    assert 'model="myorg/ft-eccite"' in pushed and "Fine-tuned on out_base's cells." in pushed
