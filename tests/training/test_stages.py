"""Stages 1 -> 2 -> 3 on the shared data: the loss falls and every output folder loads."""

from __future__ import annotations

import json

import numpy as np
import torch

from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from training.run_stage import main

from ._training_helpers import QUIET, TINY_MODEL


def _run(argv):
    summary = main([*argv, *QUIET])
    losses = [loss for _, loss in summary["loss_history"]]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses  # the loss decreases
    return summary


def _check_folder(folder, n_proteins):
    from transformers import AutoModel

    import modeling_sctranslator  # noqa: F401
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    model = AutoModel.from_pretrained(folder)
    tok = SCTranslatorTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "SCTranslatorForProteinPrediction"
    # its defaults encode what the model reads (the original's 20,000 genes and 1,000 proteins were kept)
    assert (tok.max_length, tok.protein_max_length) == (model.config.max_genes, model.config.max_proteins)
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    card = (folder / "README.md").read_text()
    for needle in ("library_name: transformers", "single-cell", "CITE-seq", "proteomics", "Intended use"):
        assert needle in card
    x = tok(rna=np.array([[1.0, 0, 5], [2, 3, 0]]), gene_names=["CD4", "CD8A", "PTPRC"], proteins=["CD3", "CD4"],
            max_length=model.config.max_genes, protein_max_length=model.config.max_proteins, padding="longest")
    with torch.no_grad():
        assert model(**x).predictions.shape == (2, 2)
    return json.loads((folder / "training_summary.json").read_text())


def test_bulk_then_sc_then_finetune(tmp_path, corpora, vocab_dir):
    common = [*TINY_MODEL, "--logging_steps", "2", "--save_steps", "100", "--per_device_train_batch_size", "4",
              "--learning_rate", "1e-3"]
    bulk = tmp_path / "stage1_bulk"
    _run(["--stage", "bulk", "--corpora", str(corpora["tcga_brca_bulk"]), "--vocab_dir", str(vocab_dir),
          "--output_dir", str(bulk), "--max_steps", "24", *common])
    _check_folder(bulk, 114)

    sc = tmp_path / "stage2_sc"
    summary = _run(["--stage", "sc", "--model_name_or_path", str(bulk),
                    "--corpora", str(corpora["tenx_pbmc10k_s200"]), str(corpora["eccite_ctcl"]),
                    "--corpus_weights", "1", "1", "--output_dir", str(sc), "--max_steps", "24",
                    "--eval_strategy", "steps", "--eval_steps", "12", *common])
    assert set(summary["eval"]) >= {"eval_tenx_pbmc10k_s200_cosine_similarity", "eval_eccite_ctcl_cosine_similarity"}
    _check_folder(sc, 14)

    ft = tmp_path / "stage3_finetune"
    summary = _run(["--stage", "finetune", "--model_name_or_path", str(sc), "--corpora", str(corpora["eccite"]),
                    "--output_dir", str(ft), "--max_steps", "24", *common])
    assert summary["eval"]["eval_cells_evaluated"] == 100  # the 20% held out
    _check_folder(ft, 44)


def test_sc_stops_at_cosine_threshold(tmp_path, corpora, vocab_dir):
    out = tmp_path / "sc"
    summary = main(["--stage", "sc", "--corpora", str(corpora["eccite_ctcl"]), "--vocab_dir", str(vocab_dir),
                    "--output_dir", str(out), "--max_steps", "40", "--eval_strategy", "steps", "--eval_steps", "2",
                    "--cosine_threshold", "-1", "--per_device_train_batch_size", "2", "--max_eval_samples", "8",
                    *TINY_MODEL, *QUIET])
    assert summary["stopped_on_cosine_at"] == 2 and summary["global_step"] == 2


def test_yaml_config_with_overrides(tmp_path, corpora, vocab_dir):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "stage: finetune\n"
        f"corpora: [{corpora['eccite_ctcl']}]\n"
        f"vocab_dir: {vocab_dir}\n"
        f"output_dir: {tmp_path / 'out'}\n"
        "max_steps: 100\nper_device_train_batch_size: 2\nmax_eval_samples: 4\n"
        "hidden_size: 16\nnum_attention_heads: 2\nattention_head_dim: 8\nnum_encoder_layers: 1\n"
        "num_decoder_layers: 1\nmax_genes: 64\nmax_proteins: 64\nnb_random_features: 8\nfix_projections: true\n"
    )
    summary = main([str(cfg), "--max_steps", "2", *QUIET])
    assert summary["global_step"] == 2
    # logging_steps (10) is longer than the run: the last step's loss is still on record (it was empty)
    assert [step for step, _ in summary["loss_history"]] == [2] and np.isfinite(summary["loss_history"][0][1])
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["max_genes"] == 64 and config["feature_redraw_interval"] is None
    args = torch.load(tmp_path / "out" / "training_args.bin", weights_only=False)
    assert args.learning_rate == 2e-4 and args.per_device_train_batch_size == 2


def test_shipped_configs_parse():
    from pathlib import Path

    from training.run_stage import parse_args

    # bulk and sc: the paper's lr; finetune: sctranslator-base's measured recipe (lr 1e-4, best validation step)
    for stage, lr in (("bulk", 2e-4), ("sc", 2e-4), ("finetune", 1e-4)):
        cfg = Path(__file__).resolve().parents[2] / "training" / "configs" / f"{stage}.yaml"
        model_args, data_args, args = parse_args([str(cfg), "--use_cpu", "true"])
        assert data_args.stage == stage and args.learning_rate == lr and args.max_steps > 0
    assert model_args.model_name_or_path == "sctranslator-base" and args.load_best_model_at_end


def test_trained_models_record_their_gene_layout_and_fine_tuning_keeps_it(tmp_path, corpora, vocab_dir, data_dir):
    """A position-reading model trained on one gene list records it in order; fine-tuning on a set with other
    genes aligns that set to it (the positions keep their genes); the variant records the set of its genes."""
    from modeling_sctranslator import SCTranslatorForProteinPrediction
    from training.corpus import load_manifest

    common = [*TINY_MODEL, "--max_steps", "2", "--save_steps", "100", "--per_device_train_batch_size", "4",
              "--stop_on_cosine", "false", *QUIET]
    first = tmp_path / "first"
    main(["--stage", "sc", "--corpora", str(corpora["eccite_ctcl"]), "--vocab_dir", str(vocab_dir),
          "--truncation", "first", "--output_dir", str(first), *common])
    layout = SCTranslatorForProteinPrediction.from_pretrained(first).gene_layout
    tokenizer = SCTranslatorTokenizer.from_pretrained(first)
    expected = tokenizer.resolve(load_manifest(corpora["eccite_ctcl"])["genes"], kind="gene").kept_token_ids[:128]
    assert layout.kind == "ordered" and layout.token_ids == [int(t) for t in expected]

    tuned = tmp_path / "tuned"
    main(["--stage", "finetune", "--model_name_or_path", str(first), "--corpora", str(corpora["tenx_pbmc10k_s200"]),
          "--output_dir", str(tuned), *common])
    assert SCTranslatorForProteinPrediction.from_pretrained(tuned).gene_layout.token_ids == layout.token_ids
    # #17's acceptance 1 on a trained model: its own file (exactly its genes, in order), the full file and a
    # column-shuffled copy give the same predictions
    import warnings

    import anndata as ad

    from modeling_sctranslator.inference import predict_proteins

    full = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")[:30].copy()
    columns = tokenizer.resolve(list(full.var_names), kind="gene")
    column_of = dict(zip(columns.kept_token_ids.tolist(), columns.columns.tolist(), strict=True))
    own = full[:, [column_of[t] for t in layout.token_ids]].copy()
    shuffled = full[:, np.random.default_rng(0).permutation(full.n_vars)].copy()
    model = SCTranslatorForProteinPrediction.from_pretrained(tuned)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = [predict_proteins(model, tokenizer, x, ["CD4", "CD19", "CD14"]).X for x in (own, full, shuffled)]
    np.testing.assert_allclose(predicted[1], predicted[0], atol=1e-5)
    np.testing.assert_allclose(predicted[2], predicted[0], atol=1e-5)

    random_subsets = tmp_path / "random"
    main(["--stage", "sc", "--corpora", str(corpora["eccite_ctcl"]), "--vocab_dir", str(vocab_dir),
          "--output_dir", str(random_subsets), *common])  # truncation random over more genes than max_genes
    assert SCTranslatorForProteinPrediction.from_pretrained(random_subsets).gene_layout.kind == "unknown"

    variant = tmp_path / "variant"
    main(["--stage", "sc", "--corpora", str(corpora["eccite_ctcl"]), "--vocab_dir", str(vocab_dir),
          "--translator_type", "cross_attention", "--output_dir", str(variant), *common])
    genes = SCTranslatorForProteinPrediction.from_pretrained(variant).gene_layout
    assert genes.kind == "set" and set(expected.tolist()) <= set(genes.token_ids)
    # the card names the model it describes (it said "MLP translator" for every model)
    assert "cross-attention translator, the order-invariant variant" in (variant / "README.md").read_text()
    assert "MLP translator" in (random_subsets / "README.md").read_text()
