"""What the library's messages ask Python users to pass, the command line can pass too."""

from __future__ import annotations

import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def layered(data_dir, tmp_path_factory):
    """Cells whose X is log-normalised, counts in a layer and in .raw, and Ensembl ids as var_names with
    the symbols in a column: a common shape of a processed AnnData."""
    counts = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:6].copy()
    symbols = list(counts.var_names)
    counts.var = pd.DataFrame({"gene_symbols": symbols}, index=[f"ENSG99{i:09d}" for i in range(len(symbols))])
    adata = counts.copy()
    adata.layers["counts"] = counts.X.copy()
    adata.raw = counts[:, :].copy()
    del adata.raw.var["gene_symbols"]  # .raw usually keeps only the names
    x = counts.X.toarray()
    adata.X = np.log1p(x / x.sum(axis=1, keepdims=True) * 1e4)
    path = tmp_path_factory.mktemp("layered") / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def _predict(model, rna, out, *extra):
    from sctranslator.cli import main

    return main(["predict", "--model", str(model), "--rna", str(rna), "--proteins", "CD4,CD19", "--out", str(out),
                 *extra])


def test_layer_and_gene_column_give_the_predictions_of_the_plain_file(tiny_model_dir, layered, data_dir, tmp_path):
    plain = tmp_path / "plain.h5ad"
    ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:6].copy().write_h5ad(plain)
    assert _predict(tiny_model_dir, plain, tmp_path / "a.h5ad") == 0
    for layer in ("counts", "raw"):
        args = ("--gene-column", "gene_symbols", "--layer", layer)
        assert _predict(tiny_model_dir, layered, tmp_path / f"{layer}.h5ad", *args) == 0
        np.testing.assert_allclose(ad.read_h5ad(tmp_path / f"{layer}.h5ad").X, ad.read_h5ad(tmp_path / "a.h5ad").X,
                                   atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--layer", "spliced"), "has no layer 'spliced'; its layers are ['counts'] (and .raw: --layer raw)"),
        (("--gene-column", "symbol"), "has no var column 'symbol'; its var columns are ['gene_symbols']"),
        ((), "[on the command line: --gene-column COLUMN]"),  # Ensembl ids only: the hint names the option
    ],
    ids=["unknown_layer", "unknown_column", "python_hint_translated"],
)
def test_cli_errors_name_cli_options(tiny_model_dir, layered, tmp_path, capsys, extra, message):
    assert _predict(tiny_model_dir, layered, tmp_path / "o.h5ad", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_command_prints_warnings_as_one_line_with_the_option(tiny_model_dir, layered, tmp_path):
    """X holds log-normalised values: the warning names --layer, not adata.layers[...] alone."""
    done = subprocess.run(
        [sys.executable, "-m", "sctranslator.cli", "predict", "--model", str(tiny_model_dir), "--rna",
         str(layered), "--gene-column", "gene_symbols", "--proteins", "CD4", "--out", str(tmp_path / "o.h5ad")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert any("look log-normalised" in line and "[on the command line: --layer raw, or --layer counts" in line
               for line in lines), done.stderr
    assert "UserWarning" not in done.stderr and "InputQualityWarning" not in done.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# my panel\nHLA-A,B,C\nCD19  # B cells\n\n", ["HLA-A,B,C", "CD19"]),  # lines: commas belong to names
        ("CD4, CD19 # T and B cells\n# end\n", ["CD4", "CD19"]),  # a single line may still list names
    ],
    ids=["one_per_line", "one_comma_separated_line"],
)
def test_a_protein_file_is_one_name_per_line_with_inline_comments(tiny_model_dir, layered, tmp_path, text, expected):
    """``HLA-A,B,C`` on its own line was split into HLA-A, B, C, and ``CD19 # B cells`` left unmapped."""
    from sctranslator.cli import main

    names = tmp_path / "panel.txt"
    names.write_text(text)
    out = tmp_path / "o.h5ad"
    assert main(["predict", "--model", str(tiny_model_dir), "--rna", str(layered), "--layer", "counts",
                 "--gene-column", "gene_symbols", "--proteins", str(names), "--out", str(out)]) == 0
    result = ad.read_h5ad(out)
    assert list(result.var_names) == expected
    assert list(result.uns["sctranslator"]["unmapped_proteins"]) == []
    assert list(result.uns["sctranslator"]["duplicate_proteins"]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (",0\n0,CD4\n1,CD8A\n2,CD19\n", ["CD4", "CD8A", "CD19"]),  # pandas Series.to_csv(path)
        ("0,CD4\n1,CD8A\n2,CD19\n", ["CD4", "CD8A", "CD19"]),  # ... with header=False
        ("id,name,read,pattern,sequence,feature_type\nCD4_TotalSeqB,CD4,R2,5PNNNNNNNNNN(BC),TGTTCCCGCTCAACT,"
         "Antibody Capture\nCD19_TotalSeqB,CD19,R2,5PNNNNNNNNNN(BC),CTGGGCAATTACTCG,Antibody Capture\n",
         ["CD4", "CD19"]),  # a 10x feature_reference.csv: its name column
        (',0\n0,CD3E\n1,"HLA-A,B,C"\n2,CD4\n', ["CD3E", "HLA-A,B,C", "CD4"]),  # pandas quotes a comma's name
        ('"","x"\n"1","CD4"\n"2","CD19"\n', ["CD4", "CD19"]),  # R's write.csv: row names from 1, all quoted
        ("protein\nCD4\n\"HLA-A,B,C\"\n", ["CD4", "HLA-A,B,C"]),  # one column with its header, quoted
        ("CD4,\nCD19,\nCD14,\n", ["CD4", "CD19", "CD14"]),  # a spreadsheet's trailing delimiter
        ("HLA-A,B,C\nHLA-DR,DP,DQ\n", ["HLA-A,B,C", "HLA-DR,DP,DQ"]),  # names with as many commas: no table
    ],
    ids=["pandas_with_index", "pandas_without_header", "feature_reference", "pandas_quoted", "r_write_csv",
         "one_column_with_header", "trailing_delimiter", "equal_commas_one_name_per_line"],
)
def test_a_protein_table_gives_its_name_column(tiny_model_dir, layered, tmp_path, text, expected):
    """Read line by line, ``1,CD8A`` was a panel label whose first part, 1, is Entrez gene A1BG: the output named
    columns '1,CD8A', '2,CD19' held other genes' predictions, and CD4 (row '0,CD4') was dropped."""
    from sctranslator.cli import main

    names = tmp_path / "panel.csv"
    names.write_text(text)
    out = tmp_path / "o.h5ad"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", "--model", str(tiny_model_dir), "--rna", str(layered), "--layer", "counts",
                     "--gene-column", "gene_symbols", "--proteins", str(names), "--out", str(out)]) == 0
    assert list(ad.read_h5ad(out).var_names) == expected
    said = any("names read from its column 'name'" in str(w.message) for w in caught)
    assert said == ("name" in text.splitlines()[0])


def test_a_table_without_a_name_column_gets_one_line_naming_the_fix(tiny_model_dir, layered, tmp_path, capsys):
    from sctranslator.cli import main

    names = tmp_path / "panel.csv"
    names.write_text("row,marker\n7,CD4\n9,CD19\n")  # numbered rows, but no index to tell from the names
    assert main(["predict", "--model", str(tiny_model_dir), "--rna", str(layered), "--proteins", str(names),
                 "--out", str(tmp_path / "o.h5ad")]) == 2
    err = capsys.readouterr().err
    assert "looks like a table (2 columns, the first numbering its rows)" in err and "one protein name per line" in err
    assert "Traceback" not in err and not (tmp_path / "o.h5ad").exists()


@pytest.mark.parametrize("names", ["", " , "])
def test_an_empty_protein_list_gets_one_line_not_a_traceback(tiny_model_dir, layered, tmp_path, capsys, names):
    from sctranslator.cli import main

    assert main(["predict", "--model", str(tiny_model_dir), "--rna", str(layered), "--proteins", names,
                 "--out", str(tmp_path / "o.h5ad")]) == 2
    err = capsys.readouterr().err
    assert f"no protein names in {names!r}" in err and "Traceback" not in err and "NoneType" not in err
    assert not (tmp_path / "o.h5ad").exists()


def test_a_bare_name_that_is_also_a_file_says_which_reading_won(tmp_path, monkeypatch):
    """``--proteins CD4`` beside a file called CD4 (an earlier output, a list) read the file's names in silence."""
    from sctranslator.options import names_argument

    monkeypatch.chdir(tmp_path)
    (tmp_path / "CD4").write_text("CD19\nCD14\n")
    with pytest.warns(UserWarning, match="read as the file CD4 in this folder .2 protein names.*write it as 'CD4,'"):
        assert names_argument("CD4", "protein") == ["CD19", "CD14"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the way out it names, and a name no file has, read as names
        assert names_argument("CD4,", "protein") == ["CD4"]
        assert names_argument("CD8A", "protein") == ["CD8A"]
        (tmp_path / "panel").write_text("CD19\n")  # a list file named as files are: read, and nothing to say
        assert names_argument("panel", "protein") == ["CD19"]


def test_raw_genes_the_name_column_lacks_keep_their_own_names(tiny_model_dir, data_dir, tmp_path):
    """An HVG-subset file names 300 genes in var['gene_symbols'] while .raw holds all of them: the others became
    NaN names, read as the text 'nan' (an alias of SCN11A), one gene standing for thousands of columns."""
    counts = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:6].copy()
    symbols = list(counts.var_names)
    adata = counts[:, :300].copy()
    adata.var = pd.DataFrame({"gene_symbols": symbols[:300]}, index=[f"ENSG99{i:09d}" for i in range(300)])
    raw = counts.copy()
    raw.var_names = [f"ENSG99{i:09d}" for i in range(150)] + symbols[150:]  # .raw: ids of the HVGs, symbols after
    adata.raw = raw
    path = tmp_path / "hvg.h5ad"
    adata.write_h5ad(path)
    plain = tmp_path / "plain.h5ad"
    counts.write_h5ad(plain)
    assert _predict(tiny_model_dir, plain, tmp_path / "plain_out.h5ad") == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _predict(tiny_model_dir, path, tmp_path / "raw_out.h5ad", "--layer", "raw", "--gene-column",
                        "gene_symbols") == 0
    said = [str(w.message) for w in caught]
    assert any(f"names 150 of the {counts.n_vars} genes of .raw" in m for m in said), said
    assert not any("'nan'" in m or "missing" in m for m in said), said
    np.testing.assert_allclose(ad.read_h5ad(tmp_path / "raw_out.h5ad").X, ad.read_h5ad(tmp_path / "plain_out.h5ad").X,
                               atol=1e-6)


LAUNCHER = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def test_a_world_size_left_in_the_environment_runs_one_process(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    """A job script's `export WORLD_SIZE=4` made a plain `sctranslator predict` wait for 3 processes (11 min, then
    killed): without the launcher's other variables it is one process, with a warning."""
    plain = tmp_path / "plain.h5ad"
    ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:4].copy().write_h5ad(plain)
    monkeypatch.setenv("WORLD_SIZE", "4")
    for name in LAUNCHER:
        monkeypatch.delenv(name, raising=False)
    with pytest.warns(UserWarning, match="WORLD_SIZE=4 is set but RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not"):
        assert _predict(tiny_model_dir, plain, tmp_path / "out.h5ad") == 0
    assert ad.read_h5ad(tmp_path / "out.h5ad").n_obs == 4


def test_evaluate_under_a_launcher_says_it_runs_as_one_process(tiny_model_dir, data_dir, tmp_path, monkeypatch,
                                                                capsys):
    from sctranslator.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    for name, value in zip(LAUNCHER, ("1", "1", "127.0.0.1", "29555"), strict=True):
        monkeypatch.setenv(name, value)
    code = main(["evaluate", "--model", str(tiny_model_dir), "--rna", str(data_dir / "eccite_rna.h5ad"),
                 "--protein", str(data_dir / "eccite_adt.h5ad")])
    assert code == 2
    assert "evaluate runs as one process" in capsys.readouterr().err
