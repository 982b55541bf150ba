"""The pre-training corpus: no benchmark test cell in it, bulk values on one scale, large panels sampled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from tokenization.tokenization_sctranslator import scale_rows


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, data_dir, vocab_dir):
    from training.pretrain import prepare

    out = tmp_path_factory.mktemp("pretrain") / "data"
    return out, prepare(data_dir, vocab_dir, out, exclude=set())


def _split_of_qc_cells(name, data_dir, cap):
    """The benchmark's test cells, re-derived here from its protocol (QC, optional cap, 80/20 seed 0)."""
    import anndata as ad

    from training.paired_data import qc_keep

    rna = ad.read_h5ad(data_dir / f"{name}_rna.h5ad")
    rows = np.flatnonzero(qc_keep(name, rna.X, rna.var_names))
    if cap is not None and len(rows) > cap:
        rows = np.sort(np.random.default_rng(0).choice(rows, cap, replace=False))
    order = np.random.default_rng(0).permutation(len(rows))
    test = rows[order[: int(round(len(rows) * 0.2))]]
    return set(map(str, rna.obs_names[test])), set(map(str, rna.obs_names[rows]))


@pytest.mark.parametrize("name", ["eccite", "reapseq_pbmc", "neurips_bmmc", "tenx_pbmc10k_s200"])
def test_no_benchmark_test_cell_reaches_the_corpus(prepared, tokenizer, data_dir, tmp_path, name):
    import anndata as ad

    from benchmarks.quality import BUDGETS
    from training.corpus import build_corpus, find_source

    out, cells = prepared
    corpus = build_corpus(find_source(out / "sc" / name), tmp_path / name, tokenizer, num_shards=2,
                          eval_fraction=0.1)
    corpus_cells = set()
    for split in corpus["splits"].values():
        for shard in split["shards"]:
            corpus_cells.update(pq.read_table(tmp_path / name / shard["file"], columns=["cell_id"])["cell_id"]
                                .to_pylist())
    test_cells, qc_cells = set(), set()
    for cap in {budget["max_cells"].get(name) for budget in BUDGETS.values()}:
        test, kept = _split_of_qc_cells(name, data_dir, cap)
        test_cells |= test
        qc_cells |= kept
    assert test_cells and not corpus_cells & test_cells
    # and nothing else was dropped: every training cell that passed QC is there
    all_qc = set(map(str, ad.read_h5ad(out / "sc" / f"{name}_rna.h5ad").obs_names))
    assert corpus_cells == all_qc == qc_cells - test_cells
    assert cells["sets"][name]["benchmark_test_cells_left_out"] == len(test_cells)


def test_other_sets_are_used_whole(prepared):
    _, cells = prepared
    for name in ("pbmc10k_protein_v3", "pbmc5p_totalseqc_mme", "cite_cd8_gse100866", "pbmc1k_protein_v3",
                 "eccite_ctcl", "cptac_ucec", "tcga_rppa_mrna"):
        assert cells["sets"][name]["cells_used"] == cells["sets"][name]["cells_source"]


def test_bulk_rna_on_one_non_negative_scale_keeps_the_per_sample_scaling():
    from training.pretrain import bulk_rna_on_log_scale

    logged = np.array([[-2.0, 0.5, np.nan, 3.0], [1.0, 2.0, 4.0, 5.0]])
    out = bulk_rna_on_log_scale(logged, logged=True)
    assert np.isfinite(out).all() and out.min() >= 0
    assert out[0, 2] == out[0, 0] == 0  # NaN = the sample's minimum = not expressed
    finite = np.isfinite(logged[0])
    np.testing.assert_allclose(scale_rows(out[:1, finite])[0], scale_rows(logged[:1, finite])[0], atol=1e-6)
    np.testing.assert_array_equal(out[1], logged[1])  # already non-negative: unchanged
    counts = np.array([[0.0, 9.0, 99.0]])
    np.testing.assert_allclose(bulk_rna_on_log_scale(counts, logged=False), np.log1p(counts))


def test_large_protein_panels_are_sampled_per_example_from_measured_proteins(tokenizer, tmp_path):
    import anndata as ad
    import pandas as pd

    from training.corpus import build_corpus, find_source, load_manifest
    from training.data import CorpusCollator

    rng = np.random.default_rng(0)
    genes = ["CD4", "CD8A", "CD19", "MS4A1", "CD3E", "GAPDH", "ACTB", "PTPRC", "CD14", "LYZ"]
    proteins = ["CD4", "CD8A", "CD19", "MS4A1", "CD3E", "PTPRC", "CD14", "LYZ", "NKG7", "GNLY", "IL7R", "CCR7"]
    values = rng.normal(size=(20, len(proteins))).astype(np.float32)
    values[rng.random(values.shape) < 0.3] = np.nan
    obs = pd.DataFrame(index=[f"s{i}" for i in range(20)])
    rna = ad.AnnData(X=sp.csr_matrix(rng.random((20, len(genes))).astype(np.float32) * 5), obs=obs,
                     var=pd.DataFrame(index=genes))
    prot = ad.AnnData(X=values, obs=obs.copy(), var=pd.DataFrame(index=proteins))
    rna.write_h5ad(tmp_path / "big_rna.h5ad")
    prot.write_h5ad(tmp_path / "big_rppa.h5ad")
    build_corpus(find_source(tmp_path / "big"), tmp_path / "corpus", tokenizer, num_shards=1, eval_fraction=0.0)
    manifest = load_manifest(tmp_path / "corpus")
    assert manifest["rna_values_kind"] == "log"
    examples = [{"example_id": i, "corpus": 0, "pass": 0, "rna_indices": list(range(len(genes))),
                 "rna_values": rna.X[i].toarray().ravel().tolist(), "protein_values": values[i].tolist()}
                for i in range(8)]
    with pytest.raises(Exception, match="protein_sampling"):
        CorpusCollator(tokenizer, [manifest], max_genes=16, max_proteins=5)
    collator = CorpusCollator(tokenizer, [manifest], max_genes=16, max_proteins=5, protein_sampling=True,
                              encoder_inputs="expressed", pad_to_longest=True)
    batch = collator(examples)
    again = collator(examples)
    np.testing.assert_array_equal(batch["protein_ids"].numpy(), again["protein_ids"].numpy())
    token_of = dict(zip(tokenizer.resolve(proteins, kind="protein").token_ids, proteins, strict=True))
    chosen_sets = set()
    for i in range(8):
        mask = batch["protein_attention_mask"][i].numpy()
        ids = batch["protein_ids"][i].numpy()[mask]
        labels = batch["labels"][i].numpy()[mask]
        measured = {p for p, v in zip(proteins, values[i], strict=True) if not np.isnan(v)}
        assert len(ids) == min(5, len(measured)) and len(set(ids)) == len(ids)
        assert {token_of[t] for t in ids} <= measured  # only measured proteins: no NaN label
        assert np.isfinite(labels).all()
        chosen_sets.add(tuple(ids))
    assert len(chosen_sets) > 1  # each example draws its own subset

    # held-out cells are all asked one seeded set of proteins: a column is one protein, as metrics per protein read it
    held_out = collator([{**e, "augment": False} for e in examples])
    ids = held_out["protein_ids"].numpy()
    assert (ids == ids[:1]).all() and len(set(ids[0])) == 5
    np.testing.assert_array_equal(collator([{**e, "augment": False} for e in examples[3:]])["protein_ids"][0], ids[0])
    labels = held_out["labels"].numpy()
    for i in range(8):  # unmeasured proteins are NaN labels (left out), measured ones scaled
        measured = np.array([not np.isnan(values[i][proteins.index(token_of[t])]) for t in ids[i]])
        assert (np.isfinite(labels[i]) == measured).all()


def test_raw_count_corpora_get_the_tokenizers_rna_transform(tokenizer, corpora):
    from training.corpus import load_manifest
    from training.data import CorpusCollator

    manifest = load_manifest(corpora["tenx_pbmc10k_s200"])
    assert manifest["rna_values_kind"] == "counts"
    assert load_manifest(corpora["tcga_brca_bulk"])["rna_values_kind"] == "log"
    rows = pq.read_table(next(corpora["tenx_pbmc10k_s200"].glob("train-*.parquet"))).to_pylist()[:4]
    examples = [{"example_id": i, "corpus": 0, "pass": 0, **{k: r[k] for k in
                 ("rna_indices", "rna_values", "protein_values")}} for i, r in enumerate(rows)]
    transformed = tokenizer.__class__.from_dict({**tokenizer.to_dict(), "vocab": tokenizer.vocab,
                                                 "rna_transform": "log1p_cp10k"})
    plain = CorpusCollator(tokenizer, [manifest], 4096, 20, truncation="first")
    logged = CorpusCollator(transformed, [manifest], 4096, 20, truncation="first")(examples)
    # the same cells log-normalised by hand (library size over all genes), then scaled as they are
    by_hand = []
    for e in examples:
        values = np.asarray(e["rna_values"], np.float64)
        by_hand.append({**e, "rna_values": np.log1p(values * 1e4 / values.sum()).tolist()})
    expected = plain(by_hand)
    assert not np.allclose(plain(examples)["input_values"].numpy(), logged["input_values"].numpy())
    np.testing.assert_allclose(logged["input_values"].numpy(), expected["input_values"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(logged["input_ids"].numpy(), expected["input_ids"].numpy())


def test_cosine_rule_waits_for_min_steps():
    from transformers import TrainerControl, TrainerState

    from training.trainer import CosineSimilarityStopCallback

    rule = CosineSimilarityStopCallback(0.85, min_steps=3000)
    state, control = TrainerState(), TrainerControl()
    metrics = {"eval_a_cosine_similarity": 0.9, "eval_b_cosine_similarity": 0.86}
    state.global_step = 500
    assert not rule.on_evaluate(None, state, control, metrics=metrics).should_training_stop
    state.global_step = 3000
    assert rule.on_evaluate(None, state, control, metrics=metrics).should_training_stop
    assert rule.stopped_at == 3000


def test_the_card_does_not_pass_a_resumed_stages_last_sitting_off_as_its_cost():
    """A stage relaunched from a checkpoint timed only its last sitting: the card gives that sitting's pace and
    the whole stage at that pace, and no total."""
    from training.pretrain import wall_time_text

    summary = {"seconds": {"stage1": 600.0, "stage2": 750.0, "total": 1351.0},
               "stage1": {"global_step": 1000, "resumed_from": None},
               "stage2": {"global_step": 16000, "resumed_from": "out/stage2_sc/checkpoint-14500"}}
    text = wall_time_text(summary)
    assert "stage 1 10 min" in text
    assert "1,500 steps in 12 min (0.50 s per step" in text and "about 133 min for its 16,000 steps" in text
    assert "23 min" not in text  # 1351 s is not what pre-training cost

    # a checkpoint path whose step cannot be read still says the stage was resumed, and gives no total
    summary["stage2"]["resumed_from"] = "out/stage2_sc/last/"
    text = wall_time_text(summary)
    assert "stage 2 resumed from out/stage2_sc/last: its last sitting took 12 min, the stage more" in text
    assert "23 min" not in text

    # a stage that had finished before the launch that shipped it was not timed: no "0 min"
    summary["stage2"]["resumed_from"] = None
    summary["seconds"].update(stage2=None, total=None)
    text = wall_time_text(summary)
    assert "stage 2 not timed" in text and "stage 2 0 min" not in text

    summary["seconds"].update(stage2=750.0, total=1351.0)
    whole = wall_time_text(summary)
    assert whole == "Wall time 23 min on 2 CPU cores (`make pretrain`: stage 1 10 min, stage 2 12 min)"


def test_pretraining_takes_other_model_settings_and_refuses_unknown_ones(monkeypatch):
    """``--model KEY=VALUE`` reaches the stage-1 arguments with JSON-typed values; a misspelt key or a value
    without a key stops before any training, naming the problem."""
    import argparse

    from training.pretrain import MODEL, model_settings, stage_argv

    settings = model_settings(["hidden_size=128", "attention_head_dim=32", "translator_type=cross_attention"])
    assert settings["hidden_size"] == 128 and settings["attention_head_dim"] == 32
    assert settings["num_encoder_layers"] == MODEL["num_encoder_layers"] and MODEL["hidden_size"] == 64
    with pytest.raises(SystemExit, match="'hiden_size' is not a model setting; these are: .*hidden_size"):
        model_settings(["hiden_size=128"])
    with pytest.raises(SystemExit, match="'ff_mult' is not a model setting"):  # a config field stage 1 cannot set
        model_settings(["ff_mult=2"])
    assert model_settings(["fix_projections=true"])["fix_projections"] is True
    with pytest.raises(SystemExit, match="give KEY=VALUE"):
        model_settings(["128"])

    args = argparse.Namespace(eval_fraction=0.1, max_eval_samples=200, batch_size=16, learning_rate=1e-3,
                              lr_scheduler_type="cosine", warmup_steps=200, eval_steps=500, seed=0,
                              vocab_dir="vocab", model=["hidden_size=128"], bf16=True, bulk_steps=10,
                              use_cpu=False, dataloader_num_workers=0)
    argv = stage_argv("bulk", ["c"], [1.0], Path("out"), args, None)
    assert argv[argv.index("--hidden_size") + 1] == "128" and argv[argv.index("--bf16") + 1] == "true"
    args.bf16 = False
    assert "--bf16" not in stage_argv("bulk", ["c"], [1.0], Path("out"), args, None)
    # the CPU where there is no NVIDIA GPU (the Trainer would take an Apple GPU, and refuse bf16 there), or when asked
    monkeypatch.setattr("training.pretrain._cuda_available", lambda: True)
    assert "--use_cpu" not in stage_argv("bulk", ["c"], [1.0], Path("out"), args, None)
    args.use_cpu = True
    assert "--use_cpu" in stage_argv("bulk", ["c"], [1.0], Path("out"), args, None)
    monkeypatch.setattr("training.pretrain._cuda_available", lambda: False)
    args.use_cpu = False
    assert "--use_cpu" in stage_argv("bulk", ["c"], [1.0], Path("out"), args, None)
    # the scale part asked of the model is added where counts teach it (stage 2): stage 1's bulk corpora hold none,
    # and run_stage refuses the part there
    args.model = ["predict_protein_scale=true"]
    assert "--predict_protein_scale" not in stage_argv("bulk", ["c"], [1.0], Path("out"), args, None)


def test_the_second_cycle_continues_stage_2_on_the_same_held_out_cells_and_the_card_says_so(tmp_path):
    """Stage 2's second cycle starts from the first cycle's end with its own length, peak learning rate and data
    order, on the same held-out cells; the card and the comparison with the shipped model read its metrics."""
    import argparse

    from training.pretrain import _cycle2_text, final_stage, main, second_cycle_args, stage_argv, wall_time_text

    args = argparse.Namespace(eval_fraction=0.1, max_eval_samples=200, batch_size=16, learning_rate=1e-3,
                              lr_scheduler_type="cosine", warmup_steps=200, eval_steps=500, seed=0, vocab_dir="v",
                              model=[], bf16=True, sc_steps=16000, cosine_min_steps=16000, sc_cycle2_steps=8000,
                              sc_cycle2_learning_rate=3e-4, gene_panel_probability=0.5,
                              use_cpu=True, dataloader_num_workers=1)
    first = stage_argv("sc", ["c"], [1.0], Path("out/stage2_sc"), args, Path("out/stage1_bulk"))
    second = stage_argv("sc", ["c"], [1.0], Path("out/stage2_cycle2"), second_cycle_args(args), Path("out/stage2_sc"))

    def value(argv, flag):
        return argv[argv.index(flag) + 1]

    assert [value(second, f) for f in ("--model_name_or_path", "--max_steps", "--learning_rate", "--seed")] == [
        "out/stage2_sc", "8000", "0.0003", "1"]
    assert value(first, "--max_steps") == "16000" and value(first, "--learning_rate") == "0.001"
    assert value(first, "--gene_panel_probability") == value(second, "--gene_panel_probability") == "0.5"
    args.gene_panel_probability = 0.0  # off: not in argv, so stage folders finished before the option still match
    assert "--gene_panel_probability" not in stage_argv("sc", ["c"], [1.0], Path("out/stage2_sc"), args, None)
    args.gene_panel_probability = 0.5
    for flag in ("--split_seed", "--eval_fraction", "--max_eval_samples", "--corpora"):
        assert value(second, flag) == value(first, flag)  # the same held-out cells are compared
    assert args.seed == 0 and args.learning_rate == 1e-3  # the first cycle's settings are untouched

    summary = {"args": {"sc_cycle2_learning_rate": "0.0003", "warmup_steps": "200", "seed": "0", "bf16": "True"},
               "stage2_from": "shipped/sctranslator-base", "stage2_from_args": {"seed": "0"},
               "seconds": {"stage1": 600.0, "stage2": 750.0, "stage2_cycle2": 3000.0, "total": 4351.0},
               "stage1": {"global_step": 1000}, "stage2": {"global_step": 16000, "eval": {"eval_a": 0.5}},
               "stage2_cycle2": {"global_step": 8000, "eval": {"eval_a": 0.6}}}
    assert final_stage(summary)["eval"] == {"eval_a": 0.6}
    text = _cycle2_text(summary)
    assert "8,000 more steps" in text and "peaking at 0.0003" in text and "seed 1" in text
    assert "with bfloat16 matrix products" in text  # the first cycle ran in float32: the difference is said
    assert "started from `shipped/sctranslator-base`, a finished first cycle trained earlier." in text
    summary["stage2_from_args"] = None  # one run, bf16 throughout: the stages' own sentence says so, not this one
    assert "bfloat16" not in _cycle2_text(summary) and "started from" not in _cycle2_text(summary.copy() | {
        "stage2_from": None})
    assert "stage 2's second cycle 50 min" in wall_time_text(summary)
    assert final_stage({"stage2": {"eval": {"eval_a": 0.5}}, "stage2_cycle2": None})["eval"] == {"eval_a": 0.5}

    more = ["--stage2_from", str(tmp_path), "--sc_cycle2_steps", "8000", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="no model folder there"):
        main(more)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="give --sc_cycle2_steps > 0"):  # the default recipe has no second cycle
        main(["--stage2_from", str(tmp_path), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="has no pretrain_summary.json, the record of the stages"):
        main(more)
    (tmp_path / "pretrain_summary.json").write_text(json.dumps({"stage2_cycle2": {"global_step": 8000}}))
    with pytest.raises(SystemExit, match="already ends with a second cycle"):
        main(more)
    assert not (tmp_path / "out").exists()  # refused before anything was prepared


def test_pretraining_chains_its_stages_and_records_each(tmp_path, monkeypatch):
    """Stage 1 -> stage 2 -> its second cycle, each started from the one before; the summary records every stage,
    and a second cycle started from a shipped folder keeps that folder's record of stages 1 and 2."""
    import training.pretrain as pretrain

    sets = {"sc_a": {"kind": "single_cell", "cells_used": 100}, "bulk_b": {"kind": "bulk", "cells_used": 9}}
    monkeypatch.setattr(pretrain, "SC_SETS", ("sc_a",))
    monkeypatch.setattr(pretrain, "BULK_SETS", ("bulk_b",))
    def fake_prepare(data_dir, vocab_dir, data_out, exclude):
        data_out.mkdir(parents=True)
        return {"sets": sets}

    monkeypatch.setattr(pretrain, "prepare", fake_prepare)
    launched = []

    def fake_run(argv):
        launched.append(argv)
        out = argv[argv.index("--output_dir") + 1]
        start = argv[argv.index("--model_name_or_path") + 1] if "--model_name_or_path" in argv else None
        steps = int(argv[argv.index("--max_steps") + 1])
        return {"global_step": steps, "eval": {"eval_sc_a_pearson_per_protein_mean": steps / 1e5},
                "started_from": start, "out": out}, 60.0

    monkeypatch.setattr(pretrain, "run", fake_run)
    out = tmp_path / "run"
    summary = pretrain.main(["--out", str(out), "--sc_steps", "300", "--sc_cycle2_steps", "200"])
    starts = [argv[argv.index("--model_name_or_path") + 1] if "--model_name_or_path" in argv else None
              for argv in launched]
    assert starts == [None, str(out / "stage1_bulk"), str(out / "stage2_sc")]
    assert summary["stage2"]["global_step"] == 300 and summary["stage2_cycle2"]["global_step"] == 200
    assert summary["seconds"]["total"] > 180 and summary["stage2_from"] is None
    assert json.loads((out / "pretrain_summary.json").read_text())["stage2_cycle2"]["global_step"] == 200

    launched.clear()
    assert pretrain.main(["--out", str(tmp_path / "one")])["stage2_cycle2"] is None
    assert len(launched) == 2  # no second cycle by default

    # Only the sets a stage trained on count as trained in the shipped folder: without stage 1 the bulk sets'
    # genes and proteins were prepared but never trained, so their embeddings must be zeroed and reported untrained.
    shipped_sets = {}
    monkeypatch.setattr(pretrain, "ship", lambda source, target, cells, summary, vocab_dir:
                        shipped_sets.update({target.name: list(cells["sets"])}))
    for name, extra in (("with_bulk", []), ("no_bulk", ["--bulk_steps", "0"])):
        summary = pretrain.main(["--out", str(tmp_path / name), "--ship", str(tmp_path / name / "model"), *extra])
        assert summary["trained_sets"] == shipped_sets["model"]
        assert shipped_sets.pop("model") == (["sc_a", "bulk_b"] if name == "with_bulk" else ["sc_a"])

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "config.json").write_text("{}")
    (shipped / "pretrain_summary.json").write_text(json.dumps({
        "args": {"seed": "0", "learning_rate": "0.001"}, "model": {"hidden_size": 64},
        "seconds": {"stage1": 2400.0, "stage2": 750.0}, "stage1": {"global_step": 1000},
        "stage2": {"global_step": 16000, "resumed_from": "x/checkpoint-14500"}}))
    launched.clear()
    summary = pretrain.main(["--out", str(tmp_path / "more"), "--stage2_from", str(shipped), "--bf16",
                             "--sc_cycle2_steps", "8000"])
    assert len(launched) == 1 and launched[0][launched[0].index("--model_name_or_path") + 1] == str(shipped)
    assert summary["stage1"]["global_step"] == 1000 and summary["stage2"]["global_step"] == 16000
    assert summary["stage2_from_args"]["learning_rate"] == "0.001" and summary["model"] == {"hidden_size": 64}
    assert summary["seconds"]["stage1"] == 2400.0 and summary["stage2_cycle2"]["global_step"] == 8000


def test_proteins_read_as_unmeasured_are_not_counted_as_trained(tmp_path, tokenizer):
    """A protein whose only columns training read as unmeasured (an antibody at background, as the stage's run
    signature records it) learnt nothing: the shipped folder must zero its row and report it untrained."""
    import anndata as ad
    import pandas as pd

    from training.pretrain import stage_left_out, trained_tokens

    rna = ad.AnnData(X=np.ones((3, 2), np.float32), var=pd.DataFrame(index=["PTPRC", "CD4"]))
    adt = ad.AnnData(X=np.ones((3, 2), np.float32), var=pd.DataFrame(index=["CD45", "CD4"]))
    rna.write_h5ad(tmp_path / "s_rna.h5ad")
    adt.write_h5ad(tmp_path / "s_adt.h5ad")
    sets = {"s": {"files": [str(tmp_path / "s_rna.h5ad"), str(tmp_path / "s_adt.h5ad")]}}
    cd45, cd4 = (int(t) for t in tokenizer.resolve(["CD45", "CD4"], kind="protein").token_ids)
    assert set(trained_tokens(sets, tokenizer)["proteins"]) == {cd45, cd4}
    stage = tmp_path / "stage2_sc"
    assert stage_left_out(stage) == {}  # no record: a run from before the check
    stage.mkdir()
    (stage / "run_signature.json").write_text(json.dumps({"proteins_left_at_background": {"s": ["CD45"]}}))
    assert trained_tokens(sets, tokenizer, stage_left_out(stage))["proteins"] == [cd4]


def test_a_stage_finished_on_another_device_or_with_a_background_reader_is_reused_but_not_one_trained_otherwise():
    """Where a stage ran (--use_cpu, the GPU) and whether a background process tokenized its cells change nothing it
    learnt: a relaunch reuses the finished folder (folders of earlier runs recorded ``--use_cpu true`` and 0 workers);
    any training setting that differs still refuses it."""
    from training.pretrain import same_training

    saved = ["--stage", "sc", "--learning_rate", "0.001", "--use_cpu", "true", "--seed", "0",
             "--dataloader_num_workers", "0"]
    on_gpu = ["--stage", "sc", "--learning_rate", "0.001", "--seed", "0", "--dataloader_num_workers", "1"]
    assert same_training(saved, on_gpu)
    assert not same_training(saved, [a.replace("0.001", "0.002") for a in on_gpu])
    assert not same_training(saved, on_gpu[:-2] + ["--seed", "1"])


def test_the_summary_published_with_the_model_names_no_folder_of_the_users_disk(tmp_path):
    """pretrain_summary.json ships with the model (and the card quotes --stage2_from): a path inside --out is given
    relative to it, any other by its last part; the shipped model's own summary keeps to that."""
    import argparse

    from training.pretrain import summary_args

    out = tmp_path / "runs" / "base"
    args = argparse.Namespace(out=str(out), data_dir=Path("/home/alice/private/cohort_7/data"),
                              vocab_dir=Path("/home/alice/tables/vocab"), stage2_from=out / "stage2_sc",
                              ship=None, seed=0, bf16=True)
    recorded = summary_args(args)
    assert recorded == {"out": "base", "data_dir": "data", "vocab_dir": "vocab", "stage2_from": "stage2_sc",
                        "ship": "None", "seed": "0", "bf16": "True"}
    shipped = (Path(__file__).resolve().parents[2] / "modeling_sctranslator" / "pretrained" / "sctranslator-base"
               / "pretrain_summary.json").read_text()
    assert "/work/" not in shipped and '"/' not in shipped
