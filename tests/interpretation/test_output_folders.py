"""What ``sctranslator attention`` / ``knockout`` write: a whole folder or nothing, never mixed with an earlier
run's files; every-gene maps refused when too large; NaN for genes no cell expressed; the knockout's scale."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from interpretation import attention_analysis
from sctranslator.cli import main as cli_main

from ._variant import PROTEINS, counts_matrix, variant


@pytest.fixture(scope="module")
def cells(gene_names):
    return ad.AnnData(X=sp.csr_matrix(counts_matrix(16)), var=pd.DataFrame(index=gene_names))


@pytest.fixture(scope="module")
def setup(cells, tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("output_folders")
    variant().save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    cells.write_h5ad(folder / "cells.h5ad")
    return folder


def run(setup, command: str, out, *extra: str, proteins=PROTEINS, genes: str | None = None) -> int:
    if genes is None:
        expressed = ad.read_h5ad(setup / "cells.h5ad", backed="r").var_names[[2, 5]]
        genes = "top-5" if command == "attention" else ",".join(expressed)
    argv = [command, "--model", str(setup / "model"), "--rna", str(setup / "cells.h5ad"), "--proteins",
            ",".join(proteins), "--device", "cpu", "--no-plots", "--out", str(out), "--genes", genes, *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cli_main(argv)


def files_in(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["attention", "knockout"])
def test_an_existing_output_folder_is_refused_and_replaced_whole_with_overwrite(setup, tmp_path, capsys, command):
    out = tmp_path / "results"
    assert run(setup, command, out) == 0
    first = files_in(out)
    if command == "attention":
        assert "ranked_genes/CD19.rnk" in first
    capsys.readouterr()
    assert run(setup, command, out, proteins=["CD4"]) == 2
    err = capsys.readouterr().err
    assert "already holds files" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert files_in(out) == first  # untouched
    assert run(setup, command, out, "--overwrite", proteins=["CD4"]) == 0
    second = files_in(out)
    assert second and not any("CD19" in name for name in second)  # nothing stale
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # no staging folder left beside it


@pytest.mark.parametrize("command", ["attention", "knockout"])
def test_overwrite_refuses_a_folder_holding_anything_the_command_did_not_write(setup, tmp_path, capsys, command):
    """--overwrite aimed at the wrong folder (the current one, a project, the one holding the model in use) used
    to delete everything in it."""
    import shutil

    out = tmp_path / "results"
    assert run(setup, command, out) == 0
    (out / "notes.txt").write_text("mine")
    shutil.copytree(setup / "model", out / "my_model")
    before = files_in(out)
    capsys.readouterr()
    argv_model = ["--model", str(out / "my_model")]  # the later --model wins
    assert run(setup, command, out, "--overwrite", *argv_model, proteins=["CD4"]) == 2
    err = capsys.readouterr().err
    assert "holds 'my_model/' and 1 more, which this command does not write" in err
    assert "choose another output folder" in err and len(err.strip().splitlines()) == 1
    assert files_in(out) == before  # nothing deleted, the model included
    (out / "notes.txt").unlink()
    shutil.rmtree(out / "my_model")
    (out / ".DS_Store").write_bytes(b"")  # left by a file browser: not a reason to refuse
    assert run(setup, command, out, "--overwrite", proteins=["CD4"]) == 0  # an earlier run's output is replaced


def test_overwrite_finds_a_file_put_among_the_ranked_gene_lists(setup, tmp_path, capsys):
    """attention writes a ranked_genes/ folder: it was accepted by name, so a file someone put inside it was
    deleted with it. Every file the writer makes is still its own (plots and Parquet included)."""
    from interpretation.outputs import attention_writes

    out = tmp_path / "maps"
    assert run(setup, "attention", out, "--table-format", "both") == 0
    written = [p.relative_to(out).as_posix() + ("/" if p.is_dir() else "") for p in out.rglob("*")]
    assert "ranked_genes/" in written and any(name.endswith(".rnk") for name in written)
    assert all(attention_writes(name) for name in written)
    assert not attention_writes("ranked_genes")  # as a file (or a link) it is not the writer's
    (out / "ranked_genes" / "enrichr_notes.docx").write_bytes(b"mine")
    before = files_in(out)
    capsys.readouterr()
    assert run(setup, "attention", out, "--overwrite") == 2
    assert "holds 'ranked_genes/enrichr_notes.docx', which this command does not write" in capsys.readouterr().err
    assert files_in(out) == before
    (out / "ranked_genes" / "enrichr_notes.docx").unlink()
    (out / "ranked_genes" / "my_lists").symlink_to(tmp_path)  # a link among the lists: not the writer's either
    assert run(setup, "attention", out, "--overwrite") == 2
    assert "holds 'ranked_genes/my_lists'" in capsys.readouterr().err
    (out / "ranked_genes" / "my_lists").unlink()
    assert run(setup, "attention", out, "--overwrite") == 0


@pytest.mark.parametrize("command", ["attention", "knockout"])
def test_an_output_path_that_is_a_file_gets_one_clear_line(setup, tmp_path, capsys, command):
    target = tmp_path / "results.csv"
    target.write_text("mine")
    for extra in ((), ("--overwrite",)):
        assert run(setup, command, target, *extra) == 2
        err = capsys.readouterr().err
        assert "is an existing file" in err and "Errno" not in err and len(err.strip().splitlines()) == 1
        assert target.read_text() == "mine"


@pytest.mark.parametrize("existing", [False, True])
def test_a_run_failing_while_writing_leaves_no_partial_folder(setup, tmp_path, monkeypatch, existing):
    import interpretation.outputs

    out = tmp_path / "results"
    if existing:
        assert run(setup, "knockout", out) == 0
    before = files_in(out) if existing else None

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(interpretation.outputs, "_write_table", disk_full)
    assert run(setup, "knockout", out, *(("--overwrite",) if existing else ())) == 2
    assert (files_in(out) == before) if existing else not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["results"] if existing else [])


def test_attention_without_genes_refuses_a_map_of_thousands_of_genes(tokenizer, data_dir, tmp_path, capsys):
    variant(max_genes=2048).save_pretrained(tmp_path / "model")  # reads up to 2,048 genes a cell, as the default
    tokenizer.save_pretrained(tmp_path / "model")
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:20].copy()  # thousands of expressed genes
    rna.write_h5ad(tmp_path / "many.h5ad")
    argv = ["attention", "--model", str(tmp_path / "model"), "--rna", str(tmp_path / "many.h5ad"), "--proteins",
            "CD4", "--device", "cpu", "--out", str(tmp_path / "maps")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "gene x gene encoder map" in err and "GB" in err and "--genes top-500" in err
    assert not (tmp_path / "maps").exists()
    # top-K above the limit was mapped whatever its size (top-100000: 10,100 genes, 5.4 GB written, no word)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main([*argv, "--genes", "top-100000"]) == 2
    err = capsys.readouterr().err
    assert "top-100000 means up to 100,000 genes here" in err and "maps are made of at most 1,000 genes" in err
    assert not (tmp_path / "maps").exists()


def test_normalized_attention_is_nan_for_a_gene_in_no_cell_and_it_is_not_ranked(setup, cells, tokenizer, tmp_path):
    absent = str(cells.var_names[0])
    listed = [absent, *map(str, cells.var_names[[2, 5, 9]])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = attention_analysis(variant(), tokenizer, cells, PROTEINS, genes=listed)
    adata = result.to_anndata()
    assert np.isnan(adata.layers["normalized"][0]).all() and np.isnan(adata.layers["mean"][0]).all()
    assert np.isfinite(adata.layers["normalized"][1:]).all()
    assert np.nanmin(adata.layers["normalized"], axis=0).tolist() == [0.0] * len(PROTEINS)  # among real genes
    assert np.isnan(adata.obsm["encoder_normalized"][0]).all()
    assert absent not in result.ranked_genes("CD4", by="normalized").index
    assert run(setup, "attention", tmp_path / "maps", "--rank-by", "normalized", genes=",".join(listed)) == 0
    ranked = (tmp_path / "maps" / "ranked_genes" / "CD4.rnk").read_text().splitlines()
    assert len(ranked) == 3 and not any(line.startswith(absent + "\t") for line in ranked)


@pytest.mark.parametrize("genes", ["top-5", None])
def test_attention_over_cells_that_express_nothing_is_refused_in_words(cells, tokenizer, genes):
    """Cells with no count over the model's genes ended attention (top-K or every gene) in a RuntimeError from a
    reshape deep in the map code."""
    empty = ad.AnnData(X=sp.csr_matrix(cells[:3].shape, dtype=np.float32), var=cells.var.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no cell of the input expresses a gene the model reads"):
            attention_analysis(variant(), tokenizer, empty, PROTEINS, genes=genes)


def test_cells_of_constant_rna_are_counted_once_over_all_chunks(cells, tokenizer):
    """knockout and attention warned per chunk ('1 of 8 cells ...', '2 of 8 cells ...'); predict says the total."""
    from interpretation import knockout_analysis

    X = cells.X.toarray()
    X[[1, 9, 12]] = 0
    some_empty = ad.AnnData(X=sp.csr_matrix(X), var=cells.var)
    genes = list(map(str, cells.var_names[[2, 5]]))
    for analysis in (lambda: knockout_analysis(variant(), tokenizer, some_empty, PROTEINS, genes, chunk_size=8),
                     lambda: attention_analysis(variant(), tokenizer, some_empty, PROTEINS, genes=genes, chunk_size=8)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            analysis()
        said = [str(w.message) for w in caught if "cells have constant RNA" in str(w.message)]
        assert len(said) == 1 and said[0].startswith("3 of 16 cells"), said


def test_knockout_outputs_say_the_scale_of_the_differences(setup, tmp_path, capsys):
    assert run(setup, "knockout", tmp_path / "ko") == 0
    assert "differences are per-cell scaled predictions" in capsys.readouterr().out
    # --protein-context reaches the analysis (the CLI had none; this model records no training proteins)
    assert run(setup, "knockout", tmp_path / "ko_model", "--protein-context", "model") == 2
    assert "protein_context='model' needs a model that records" in capsys.readouterr().err
    effects = pd.read_csv(tmp_path / "ko" / "knockout_effects.csv")
    assert set(effects["scale"]) == {"per_cell_scaled"}


@pytest.mark.parametrize("command", ["attention", "knockout"])
def test_layer_and_gene_column_are_read_as_predict_reads_them(setup, cells, tmp_path, command):
    """attention and knockout offered --layer / --gene-column but read X and var_names: counts kept in a
    layer, under Ensembl var_names with the symbols in a column, gave maps of the wrong values or no gene."""
    ensembl_like = [f"ENSG9{i:010d}" for i in range(cells.n_vars)]  # ids no vocabulary has
    moved = ad.AnnData(X=sp.csr_matrix(cells.shape, dtype=np.float32), layers={"counts": cells.X},
                       var=pd.DataFrame({"symbol": cells.var_names}, index=ensembl_like))
    moved.write_h5ad(tmp_path / "moved.h5ad")
    assert run(setup, command, tmp_path / "plain") == 0
    argv = [command, "--model", str(setup / "model"), "--rna", str(tmp_path / "moved.h5ad"), "--layer", "counts",
            "--gene-column", "symbol", "--proteins", ",".join(PROTEINS), "--device", "cpu", "--no-plots",
            "--out", str(tmp_path / "moved"), "--genes", "top-5" if command == "attention" else
            ",".join(ad.read_h5ad(setup / "cells.h5ad", backed="r").var_names[[2, 5]])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main(argv) == 0
    assert files_in(tmp_path / "moved") == files_in(tmp_path / "plain")


def test_the_python_analyses_read_a_layer_as_the_cli_does(cells, tokenizer):
    """knockout_analysis(..., layer='counts') was a TypeError (attention_analysis had no layer= either), while the
    error for a scaled X told the user to pass layer='counts'."""
    from interpretation import knockout_analysis

    moved = ad.AnnData(X=sp.csr_matrix(cells.shape, dtype=np.float32), layers={"counts": cells.X}, var=cells.var)
    genes = list(map(str, cells.var_names[[2, 5]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = knockout_analysis(variant(), tokenizer, cells, PROTEINS, genes)
        layered = knockout_analysis(variant(), tokenizer, moved, PROTEINS, genes, layer="counts")
        maps = [attention_analysis(variant(), tokenizer, rna, PROTEINS, genes=genes, **extra).to_anndata()
                for rna, extra in ((cells, {}), (moved, {"layer": "counts"}))]
    np.testing.assert_array_equal(layered.matrix("mean_diff"), plain.matrix("mean_diff"))
    np.testing.assert_array_equal(maps[1].layers["mean"], maps[0].layers["mean"])


def test_knockout_warns_where_its_standardized_effect_is_undefined_and_names_cells_without_a_group(cells, tokenizer):
    """A group of one cell (or identical cells) has no sd, so no standardized effect: NaN in the tables, said; a
    cell whose --groupby value is missing is its own named group, said."""
    from interpretation import knockout_analysis

    few = cells[:3].copy()
    few.obs["batch"] = pd.Series(["a", "a", np.nan], index=few.obs_names, dtype=object)
    genes = list(cells.var_names[[2, 5]])
    with pytest.warns(UserWarning) as record:
        result = knockout_analysis(variant(), tokenizer, few, PROTEINS, genes, groupby="batch", device="cpu")
    messages = [str(w.message) for w in record]
    assert any("1 of 3 cells have no 'batch' value: they are the group '(missing)'" in m for m in messages)
    assert any(m.startswith("standardized_effect is undefined (NaN) for 4 of 12 (group, protein) pairs")
               and "'(missing)' (1 cells)" in m for m in messages)
    assert result.groups == ["all", "(missing)", "a"]
    alone = result.effects[result.effects["group"] == "(missing)"]
    assert alone["standardized_effect"].isna().all() and alone["mean_diff"].notna().all()
    assert result.effects.loc[result.effects["group"] == "all", "standardized_effect"].notna().all()
    same = ad.concat([cells[:1]] * 3, index_unique="-")  # identical cells: no spread, however they are summed
    with pytest.warns(UserWarning, match=r"standardized_effect is undefined \(NaN\) for 4 of 4"):
        copies = knockout_analysis(variant(), tokenizer, same, PROTEINS, genes, device="cpu")
    assert copies.effects["standardized_effect"].isna().all() and (copies.effects["sd_unperturbed"] == 0).all()


def test_attention_refuses_a_top_n_that_is_no_count_and_says_how_a_number_for_genes_is_read(setup, tmp_path,
                                                                                           capsys):
    for bad in ("0", "-5"):
        assert run(setup, "attention", tmp_path / "maps", "--top-n", bad) == 2
        assert f"give a whole number of at least 1, not {bad}" in capsys.readouterr().err
    assert not (tmp_path / "maps").exists()
    argv = ["attention", "--model", str(setup / "model"), "--rna", str(setup / "cells.h5ad"), "--proteins", "CD4",
            "--device", "cpu", "--no-plots", "--out", str(tmp_path / "maps"), "--genes", "50"]
    with pytest.warns(UserWarning, match=r"--genes 50 is read as the gene whose Entrez id is 50; for the 50 genes "
                                         r"receiving most attention write --genes top-50"):
        cli_main(argv)


def test_group_heatmaps_never_replace_each_other_and_overwrite_accepts_all_a_writer_wrote(cells, tokenizer, tmp_path):
    """'CD4+ T' and 'CD4 T' both cleaned to CD4_T: one group's heatmap replaced the other's. And every file the
    writers put in a folder (plots, Parquet) must count as theirs, or --overwrite would refuse their own output."""
    from interpretation import knockout_analysis, write_knockout
    from interpretation.outputs import knockout_writes

    few = cells[:6].copy()
    few.obs["kind"] = ["CD4+ T", "CD4+ T", "CD4 T", "CD4 T", "B", "B"]
    genes = list(cells.var_names[[2, 5]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = knockout_analysis(variant(), tokenizer, few, PROTEINS, genes, groupby="kind", device="cpu")
    files = write_knockout(result, tmp_path / "ko", table_format="both", plots=True)
    pngs = sorted(p.name for p in files if p.suffix == ".png")
    assert pngs == ["knockout_standardized_effect.png", "knockout_standardized_effect_B.png",
                    "knockout_standardized_effect_CD4_T.png", "knockout_standardized_effect_CD4_T_1.png"]
    assert all(knockout_writes(p.relative_to(tmp_path / "ko").as_posix()) for p in files)
    assert not knockout_writes("knockout_standardized_effect_B.png/holiday.png")  # a folder of that name is not its
    assert write_knockout(result, tmp_path / "ko", table_format="both", plots=True, overwrite=True) == files
