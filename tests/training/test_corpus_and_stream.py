"""Corpus format, hold-out split, per-rank streams, resume skipping and the tokenizing collator."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from training.corpus import load_manifest
from training.data import CorpusCollator, EvalCells, build_train_stream, split_example_id

from ..conftest import one_piece, write_cellranger_h5, write_cellranger_mtx


def _ids(stream, n):
    return [e["example_id"] for e in itertools.islice(iter(stream), n)]


def test_manifest_and_split(corpora, data_dir):
    m = load_manifest(corpora["eccite"])
    assert m["name"] == "eccite" and m["n_cells"] == 500
    assert m["splits"]["train"]["n_cells"] == 400 and m["splits"]["eval"]["n_cells"] == 100
    assert [s["rows"] for s in m["splits"]["train"]["shards"]] == [100] * 4
    assert all(s["bytes"] > 0 for s in m["splits"]["train"]["shards"])
    assert len(m["genes"]) == 19521 and len(m["proteins"]) == 49 and m["protein_values_kind"] == "counts"
    assert m["source_files"][0]["path"].endswith("eccite_rna.h5ad")
    assert m["vocabulary"]["vocab_size"] == 85500
    rows = {}
    for split in ("train", "eval"):
        for s in m["splits"][split]["shards"]:
            t = pq.read_table(corpora["eccite"] / s["file"])
            assert set(t.column("split").to_pylist()) == {split}
            rows[split] = rows.get(split, set()) | set(t.column("row").to_pylist())
    assert not rows["train"] & rows["eval"] and len(rows["train"] | rows["eval"]) == 500


def test_stored_rows_are_the_raw_data(corpora, data_dir):
    import anndata as ad

    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    m = load_manifest(corpora["eccite_ctcl"])
    t = pq.read_table(corpora["eccite_ctcl"] / m["splits"]["train"]["shards"][0]["file"]).slice(0, 3).to_pylist()
    for r in t:
        dense = np.zeros(rna.n_vars, np.float32)
        dense[r["rna_indices"]] = r["rna_values"]
        np.testing.assert_array_equal(dense, rna.X[r["row"]].toarray()[0])
        np.testing.assert_array_equal(np.asarray(r["protein_values"]), adt.X[r["row"]].toarray()[0])
        assert r["cell_id"] == rna.obs_names[r["row"]]


def test_ranks_read_disjoint_whole_shards(corpora):
    ms = [load_manifest(corpora["tenx_pbmc10k_s200"])]
    seen = []
    for rank in range(2):
        ids = _ids(build_train_stream(ms, seed=0, rank=rank, world_size=2), 80)  # one pass = 2 shards x 40
        assert len(set(ids)) == 80
        seen.append(set(ids))
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == ms[0]["splits"]["train"]["n_cells"]


def test_stream_is_deterministic_and_skip_resumes_exactly(corpora):
    ms = [load_manifest(corpora["tenx_pbmc10k_s200"]), load_manifest(corpora["eccite_ctcl"])]
    full = _ids(build_train_stream(ms, [2, 1], seed=3), 300)
    assert full == _ids(build_train_stream(ms, [2, 1], seed=3), 300)
    assert _ids(build_train_stream(ms, [2, 1], seed=3, skip_examples=123), 177) == full[123:]
    assert full != _ids(build_train_stream(ms, [2, 1], seed=4), 300)
    corpus_of = [split_example_id(i)[0] for i in full]
    assert 0.5 < np.mean(np.asarray(corpus_of) == 0) < 0.8  # weights 2:1


def test_collator_mixes_corpora_and_masks_padding(corpora, tokenizer):
    ms = [load_manifest(corpora["tenx_pbmc10k_s200"]), load_manifest(corpora["eccite_ctcl"])]
    collate = CorpusCollator(tokenizer, ms, max_genes=128, max_proteins=64)
    examples = list(itertools.islice(iter(build_train_stream(ms, seed=0)), 8))
    batch = collate(examples)
    assert batch["input_ids"].shape == (8, 128) and batch["labels"].shape == (8, 64)
    assert batch["attention_mask"].all()  # both corpora have > 128 mapped genes
    for i, e in enumerate(examples):
        n_proteins = int(batch["protein_attention_mask"][i].sum())
        # eccite: 49 proteins less 2 isotype controls and 3 duplicates (CD77 maps to A4GALT)
        assert n_proteins == ms[e["corpus"]]["n_proteins_mapped"] == (14, 44)[e["corpus"]]
        assert np.isnan(batch["labels"][i, n_proteins:].numpy()).all()
        assert np.nanmax(batch["labels"][i].numpy()) == pytest.approx(1.0)  # per-cell max-min (tokenizer)
    again = collate(examples)
    assert (again["input_ids"] == batch["input_ids"]).all()  # random gene subsets are seeded per batch
    assert json.dumps(batch["example_ids"].tolist()) == json.dumps([e["example_id"] for e in examples])


def test_a_corpus_of_normalised_cells_reads_each_cell_alike_alone_or_in_a_batch(tmp_path, tokenizer, data_dir,
                                                                                caplog):
    """Each batch told its own normalisation: a lone cell (a batch of one, or an example of a sampled panel) shows no
    common total, and its log1p-normalised values were read as another scale than the same cell in a batch."""
    import copy

    import anndata as ad
    import scipy.sparse as sp

    from training.corpus import build_corpus, find_source

    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")
    dense = rna.X.toarray().astype(np.float64)
    library = dense.sum(1, keepdims=True)  # scanpy's normalize_total (to the median) then log1p
    rna.X = sp.csr_matrix(np.log1p(dense / library * np.median(library)).astype(np.float32))
    rna.write_h5ad(tmp_path / "normed_rna.h5ad")
    ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad").write_h5ad(tmp_path / "normed_adt.h5ad")
    log_tokenizer = copy.deepcopy(tokenizer)
    log_tokenizer.rna_transform = "log1p_cp10k"
    with caplog.at_level("WARNING"):
        build_corpus(find_source(tmp_path / "normed"), tmp_path / "corpus", log_tokenizer, num_shards=2)
    # without counts the check for antibodies at background cannot run: said, not skipped in silence
    assert "the check for antibodies at background needs counts on both sides (RNA: log" in caplog.text
    ms = [load_manifest(tmp_path / "corpus")]
    collate = CorpusCollator(log_tokenizer, ms, max_genes=128, max_proteins=64, truncation="first")
    examples = list(itertools.islice(iter(build_train_stream(ms, seed=0)), 8))
    batch = collate(examples)
    alone = collate(examples[:1])
    np.testing.assert_allclose(alone["input_values"][0].numpy(), batch["input_values"][0].numpy(), atol=1e-6)


def _assert_trained_on_counts(tmp_path, stem, adt, counts, tokenizer, data_dir):
    """Build a corpus of eccite_ctcl's RNA with ``adt`` as its protein file; its rows must hold ``counts``."""
    import anndata as ad

    from training.corpus import build_corpus, find_source

    adt.write_h5ad(tmp_path / f"{stem}_adt.h5ad")
    ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad").write_h5ad(tmp_path / f"{stem}_rna.h5ad")
    build_corpus(find_source(tmp_path / stem), tmp_path / "corpus", tokenizer, num_shards=1)
    m = load_manifest(tmp_path / "corpus")
    assert m["protein_values_kind"] == "counts"
    rows = pq.read_table(tmp_path / "corpus" / m["splits"]["train"]["shards"][0]["file"]).slice(0, 5).to_pylist()
    for r in rows:
        np.testing.assert_array_equal(np.asarray(r["protein_values"]), counts[r["row"]])


def test_a_corpus_of_clr_normalised_adt_trains_on_its_counts(tmp_path, tokenizer, data_dir):
    """Seurat's CLR ADT (log1p(x / geometric mean), never negative) was trained as if it were log1p counts: the
    scale part learnt another scale, and no background check ran. The corpus holds the counts it came from."""
    import anndata as ad

    from training.corpus import build_corpus, find_source

    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    counts = adt.X.toarray().astype(np.float32)
    adt.X = np.log1p(counts / np.exp(np.log1p(counts).mean(axis=0, keepdims=True)))
    _assert_trained_on_counts(tmp_path, "clr", adt, counts, tokenizer, data_dir)
    # the RNA file filtered to fewer cells, the CLR file in another order: its counts are read over all its cells (a
    # subset has other geometric means), then matched by name; reading the subset trained on the CLR values
    rna = ad.read_h5ad(tmp_path / "clr_rna.h5ad")
    keep = np.arange(rna.n_obs)[::3]
    rna[keep].copy().write_h5ad(tmp_path / "fewer_rna.h5ad")
    adt[::-1].copy().write_h5ad(tmp_path / "fewer_adt.h5ad")
    build_corpus(find_source(tmp_path / "fewer"), tmp_path / "fewer_corpus", tokenizer, num_shards=1)
    m = load_manifest(tmp_path / "fewer_corpus")
    assert m["protein_values_kind"] == "counts" and m["n_cells"] == len(keep)
    for split in m["splits"].values():
        for shard in split["shards"]:
            for r in pq.read_table(tmp_path / "fewer_corpus" / shard["file"]).to_pylist():
                np.testing.assert_array_equal(np.asarray(r["protein_values"]), counts[keep[r["row"]]])


@pytest.mark.parametrize("normalised", ["centred_clr", "log1p"])
def test_a_protein_file_with_its_counts_in_a_layer_trains_on_them(tmp_path, tokenizer, data_dir, normalised):
    """An ADT file as muon or Seurat writes it, X normalised (per-cell centred CLR: signed; or log1p) and the counts
    in layers['counts']: training read X alone, so the model lost its log1p-count output and the background check.
    The corpus holds the layer's counts, as the RNA side already took its counts layer."""
    import anndata as ad

    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    counts = adt.X.toarray().astype(np.float32)
    logged = np.log1p(counts)
    adt.X = logged - logged.mean(axis=1, keepdims=True) if normalised == "centred_clr" else logged
    adt.layers["counts"] = counts
    _assert_trained_on_counts(tmp_path, "layer", adt, counts, tokenizer, data_dir)


def test_cells_without_rna_or_with_no_antibody_counted_are_left_out_and_the_others_keep_their_split(
        tmp_path, tokenizer, data_dir, caplog):
    """Failed droplets (every ADT count 0) and cells with no RNA read were trained on and scored as all-floor
    profiles, without a word (training loss x3, the card's held-out r lower). They are left out with a warning, after
    the split, so every other cell keeps its split."""
    import anndata as ad
    import scipy.sparse as sp

    from training.corpus import build_corpus, find_source

    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    for name, a in (("clean", adt), ("empty", adt.copy())):
        if name == "empty":
            counts = a.X.toarray()
            counts[[3, 10, 40]] = 0
            a.X = sp.csr_matrix(counts)
            r = rna.copy()
            dense = r.X.toarray()
            dense[7] = 0
            r.X = sp.csr_matrix(dense)
        else:
            r = rna
        r.write_h5ad(tmp_path / f"{name}_rna.h5ad")
        a.write_h5ad(tmp_path / f"{name}_adt.h5ad")

    def split_rows(folder):
        m = load_manifest(folder)
        def rows(shard):
            return pq.read_table(folder / shard["file"], columns=["row"]).column("row").to_pylist()

        return {split: sorted(row for shard in info["shards"] for row in rows(shard))
                for split, info in m["splits"].items()}

    build_corpus(find_source(tmp_path / "clean"), tmp_path / "clean_corpus", tokenizer, num_shards=1)
    with caplog.at_level("WARNING"):
        build_corpus(find_source(tmp_path / "empty"), tmp_path / "empty_corpus", tokenizer, num_shards=1)
    assert "4 of 173 cells left out of training and held-out cells: 1 with no RNA read, 3 with every protein" in \
        caplog.text
    clean, empty = split_rows(tmp_path / "clean_corpus"), split_rows(tmp_path / "empty_corpus")
    for split in clean:
        assert empty[split] == [row for row in clean[split] if row not in (3, 7, 10, 40)]


def test_eval_cells_are_the_held_out_split(corpora):
    m = load_manifest(corpora["eccite"])
    held_out = EvalCells(m, 0)
    assert len(held_out) == 100
    train_rows = set()
    for s in m["splits"]["train"]["shards"]:
        train_rows |= set(pq.read_table(corpora["eccite"] / s["file"], columns=["row"]).column("row").to_pylist())
    assert not {split_example_id(e["example_id"])[1] for e in held_out.examples} & train_rows


def test_evaluate_module_loads_offline():
    from training.trainer import make_compute_metrics

    compute, backend = make_compute_metrics(True)
    assert backend == "evaluate"

    class P:
        predictions = np.random.default_rng(0).random((10, 4))
        label_ids = predictions + 0.01
    P.label_ids[:, 3] = np.nan
    out = compute(P)
    assert out["proteins_evaluated"] == 3 and out["pearson_per_protein_mean"] == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_mudata_source(tmp_path, tokenizer, data_dir):
    mudata = pytest.importorskip("mudata")
    import anndata as ad

    from training.corpus import build_corpus, find_source

    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    mudata.MuData({"rna": rna, "prot": adt}).write(tmp_path / "ctcl.h5mu")
    m = build_corpus(find_source(tmp_path / "ctcl.h5mu"), tmp_path / "corpus", tokenizer)
    assert m["name"] == "ctcl" and m["n_cells"] == 173 and len(m["proteins"]) == 52


def test_a_cite_seq_file_in_one_piece_builds_the_corpus_of_its_two_files(tmp_path, tokenizer, data_dir):
    import anndata as ad

    from training.corpus import build_corpus, find_source

    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    one_piece(rna, adt).write_h5ad(tmp_path / "cite.h5ad")
    write_cellranger_h5(tmp_path / "cite.h5", one_piece(rna, adt))
    with pytest.warns(UserWarning, match="'Antibody Capture' ones are read as the protein"):
        whole = build_corpus(find_source(f"{tmp_path}/cite.h5ad:{tmp_path}/cite.h5ad"), tmp_path / "whole", tokenizer)
    cellranger = build_corpus(find_source(tmp_path / "cite.h5"), tmp_path / "cellranger", tokenizer)
    write_cellranger_mtx(tmp_path / "donor7" / "outs" / "filtered_feature_bc_matrix", one_piece(rna, adt))
    folder = build_corpus(find_source(tmp_path / "donor7" / "outs" / "filtered_feature_bc_matrix"),
                          tmp_path / "folder", tokenizer)
    split = build_corpus(find_source(data_dir / "eccite_ctcl"), tmp_path / "split", tokenizer)
    rows = {}
    for corpus, m in (("whole", whole), ("cellranger", cellranger), ("folder", folder), ("split", split)):
        assert m["genes"] == split["genes"] and m["proteins"] == split["proteins"], corpus
        table = pq.read_table(tmp_path / corpus / m["splits"]["train"]["shards"][0]["file"]).slice(0, 5)
        rows[corpus] = table.to_pylist()
    assert rows["whole"] == rows["split"] == rows["cellranger"] == rows["folder"]
    assert cellranger["name"] == "cite" and folder["name"] == "donor7"
    # scaled in one piece, the counts in .raw (which keeps the antibodies too): the genes of .raw only
    scaled = one_piece(rna, adt)
    scaled.raw = scaled.copy()
    dense = scaled.X.toarray()
    scaled.X = (dense - dense.mean(0)) / (dense.std(0) + 1)
    scaled.write_h5ad(tmp_path / "scaled.h5ad")
    m = build_corpus(find_source(f"{tmp_path}/scaled.h5ad:{tmp_path}/scaled.h5ad"), tmp_path / "scaled", tokenizer)
    assert m["genes"] == split["genes"]
    table = pq.read_table(tmp_path / "scaled" / m["splits"]["train"]["shards"][0]["file"]).slice(0, 5)
    assert [{k: row[k] for k in ("rna_indices", "rna_values")} for row in table.to_pylist()] == [
        {k: row[k] for k in ("rna_indices", "rna_values")} for row in rows["split"]]
    # the cache checks the folder's files, whose changes the folder's own size and time do not show
    source = find_source(tmp_path / "donor7" / "outs" / "filtered_feature_bc_matrix")
    assert [f.name for f in source.files] == ["matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"] * 2
    from training.corpus import CorpusError

    rna.write_h5ad(tmp_path / "genes.h5ad")  # no feature types: it cannot be both sides
    with pytest.raises(CorpusError, match="corpus genes: .* does not tell genes from antibodies"):
        build_corpus(find_source(f"{tmp_path}/genes.h5ad:{tmp_path}/genes.h5ad"), tmp_path / "none", tokenizer)


def test_gene_panels_read_training_cells_through_a_random_panel_and_held_out_cells_whole(corpora, tokenizer):
    """A user's file of 1,000 highly variable genes gives the model fewer genes and its own library sizes: with
    gene_panel_probability the training cells sometimes come that way too (the corpus's top highly variable
    genes; seeded, so replays match), held-out cells never do."""
    ms = [load_manifest(corpora["eccite"])]
    options = dict(max_genes=4096, max_proteins=64, encoder_inputs="expressed", pad_to_longest=True,
                   cell_scale=True)
    whole = CorpusCollator(tokenizer, ms, **options)
    panels = CorpusCollator(tokenizer, ms, **options, gene_panel_probability=1.0)
    stream = iter(build_train_stream(ms, seed=0))
    examples = list(itertools.islice(stream, 4))
    full, panel = whole(examples), panels(examples)
    genes_full = full["attention_mask"].sum(dim=1)
    genes_panel = panel["attention_mask"].sum(dim=1)
    assert (genes_panel < genes_full).all() and (genes_panel >= 1).all()
    panel_genes = set(panel["input_ids"][panel["attention_mask"]].tolist())
    assert panel_genes <= set(full["input_ids"][full["attention_mask"]].tolist())
    ranking = panels.corpora[0]["panel_ranking"]  # the corpus's genes, most variable first
    variable = set(tokenizer.resolve([ms[0]["genes"][g] for g in ranking], kind="gene").token_ids)
    assert len(ranking) == 4000 and panel_genes <= variable
    # the library size (first covariate, log1p of the counts read) is the panel's
    assert (panel["cell_covariates"][:, 0] < full["cell_covariates"][:, 0]).all()
    torch.testing.assert_close(panel["labels"], full["labels"], equal_nan=True)  # proteins are untouched
    assert (panels(examples)["input_ids"] == panel["input_ids"]).all()  # seeded per batch
    held_out = [EvalCells(ms[0], 0)[i] for i in range(4)]
    torch.testing.assert_close(panels(held_out)["input_values"], whole(held_out)["input_values"])
    sometimes = CorpusCollator(tokenizer, ms, **options, gene_panel_probability=0.5)
    batches = [list(itertools.islice(stream, 2)) for _ in range(12)]
    read_whole = [bool((sometimes(b)["attention_mask"].sum() == whole(b)["attention_mask"].sum()).item())
                  for b in batches]
    assert 0 < sum(read_whole) < len(batches)  # some batches through a panel, some whole
    assert read_whole == [bool((sometimes(b)["attention_mask"].sum() == whole(b)["attention_mask"].sum()).item())
                          for b in batches]  # and the same ones again on replay
    with pytest.raises(ValueError, match="between 0 and 1"):
        CorpusCollator(tokenizer, ms, **options, gene_panel_probability=1.5)


def test_antibodies_at_background_are_trained_as_unmeasured_and_keep_their_protein(corpora, tokenizer):
    """ECCITE counts CD45 in 19 % of its training cells although PTPRC mRNA is in 95 % of them, and LAG3 in none
    (mRNA 7 %): failed antibodies. Trained on, they taught the CD45 embedding that CD45 is absent. They are read
    as unmeasured (NaN: out of the loss and the per-cell scaling), CD45 keeps its token (the panel's B220 stays a
    duplicate rather than standing in for total CD45), working antibodies are untouched, and a run may keep them."""
    m = load_manifest(corpora["eccite"])
    flagged = {e["protein"]: e for e in m["protein_background_evidence"]}
    assert set(flagged) == {"CD45", "CD223 (lag3)"}
    assert flagged["CD45"]["protein_shown"] < 0.25 * flagged["CD45"]["mrna_detected"]
    assert {p for p, at in zip(m["proteins"], m["protein_at_background"], strict=True) if at} == set(flagged)
    examples = list(itertools.islice(iter(build_train_stream([m], seed=0)), 8))
    cd45, cd3, lag3 = (int(tokenizer.resolve([n], kind="protein").token_ids[0]) for n in ("CD45", "CD3", "LAG3"))
    for keep, measured in ((False, False), (True, True)):
        batch = CorpusCollator(tokenizer, [m], max_genes=128, max_proteins=64, train_background_proteins=keep)(
            examples)
        ids, labels = batch["protein_ids"].numpy(), batch["labels"].numpy()
        assert (ids == cd45).sum(axis=1).tolist() == [1] * 8  # CD45's column, not B220's, holds the token
        for token, expected in ((cd45, measured), (lag3, measured), (cd3, True)):
            assert np.isfinite(labels[ids == token]).all() == expected
        assert np.nanmax(labels, axis=1) == pytest.approx(1.0)  # scaled over the measured proteins


def test_background_check_needs_the_mrna_to_be_common_and_the_antibody_to_miss_it():
    """The rule on a made-up panel: a protein counted in far fewer cells than its mRNA is flagged; one whose mRNA
    is rare, or absent from the RNA file, is not judged; a working antibody is kept."""
    import scipy.sparse as sp

    from tokenization.gene_ids import MappingReport
    from training.corpus import proteins_at_background

    rng = np.random.default_rng(0)
    n = 200
    rna = np.zeros((n, 3))
    rna[:, 0] = rng.random(n) < 0.6   # gene of protein A: common
    rna[:, 1] = rng.random(n) < 0.6   # gene of protein B: common
    rna[:, 2] = rng.random(n) < 0.02  # gene of protein C: rare, no evidence either way
    proteins = np.zeros((n, 4))
    proteins[:, 0] = np.where(rng.random(n) < 0.05, 10, 0)  # A: shown in 5 % of cells, mRNA in 60 %: failed
    proteins[:, 1] = rng.poisson(20, n)                      # B: working
    genes = MappingReport("gene", ["a", "b", "c"], np.array([11, 12, 13]), ["symbol"] * 3, ["mapped"] * 3)
    panel = MappingReport("protein", ["A", "B", "C", "D"], np.array([11, 12, 13, 14]), ["symbol"] * 4,
                          ["mapped"] * 4)
    found = proteins_at_background(sp.csr_matrix(rna), proteins, genes, panel)
    assert list(found) == [0] and found[0]["protein"] == "A" and found[0]["protein_shown"] < 0.1
