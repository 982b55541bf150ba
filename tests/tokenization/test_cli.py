"""The ``vocab`` CLI commands and the NCBI / pickle vocabulary sources."""

from __future__ import annotations

import gzip
import pickle

import pytest

GENE_INFO = (
    "#tax_id\tGeneID\tSymbol\tLocusTag\tSynonyms\tdbXrefs\tchromosome\tmap_location\tdescription\ttype_of_gene\n"
    "9606\t920\tCD4\t-\tCD4mut|T4\tMIM:186940|HGNC:HGNC:1678|Ensembl:ENSG00000010610\t12\t12p13.31\tCD4\tprotein-coding\n"
    "9606\t7157\tTP53\t-\tP53|LFS1\tEnsembl:ENSG00000141510\t17\t17p13.1\ttumor protein p53\tprotein-coding\n"
    "9606\t1\tA1BG\t-\tA1B|T4\tEnsembl:ENSG00000121410\t19\t19q13.43\talpha-1-B\tprotein-coding\n"
    "10090\t12504\tCd4\t-\t-\t-\t6\t-\tCD4 antigen\tprotein-coding\n"
)


def _run(argv):
    from tokenization.cli import main

    return main(argv)


def test_from_ncbi(tmp_path, capsys):
    path = tmp_path / "gene_info.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(GENE_INFO)
    out = tmp_path / "tok"
    assert _run(["vocab", "from-ncbi", str(path), "--out", str(out)]) == 0
    assert "3 genes" in capsys.readouterr().out
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tok = SCTranslatorTokenizer.from_pretrained(out)
    # ids follow ascending GeneID; official symbols beat synonyms (T4 is a synonym of two genes)
    assert tok.convert_genes_to_ids(["A1BG", "CD4", "TP53", "P53", "T4", "ENSG00000141510.5", "7157"]) == [
        1,
        2,
        3,
        3,
        1,
        3,
        3,
    ]
    assert tok.vocab.reserved_start == 4 and tok.vocab_size == 85500
    assert _run(["vocab", "from-ncbi", str(path), "--out", str(out)]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert _run(["vocab", "from-ncbi", str(path), "--out", str(out), "--overwrite"]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    # --overwrite replaces a tokenizer folder only: a data file or another folder given by mistake is kept
    data, notes = tmp_path / "cells.h5ad", tmp_path / "notes"
    data.write_bytes(b"user data")
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    for target in (data, notes):
        assert _run(["vocab", "from-ncbi", str(path), "--out", str(target), "--overwrite"]) == 2
        assert "is not a tokenizer folder" in capsys.readouterr().err
    assert data.read_bytes() == b"user data" and (notes / "notes.txt").read_text() == "mine"


def test_from_original_tsv_and_pickles(vocab_dir, tmp_path, capsys):
    out = tmp_path / "orig"
    assert _run(["vocab", "from-original", str(vocab_dir), "--out", str(out)]) == 0
    assert "reserved ids 75523..85499" in capsys.readouterr().out
    # the original pickled dictionaries give the same vocabulary
    import pandas as pd

    from tokenization.vocab import GeneVocab

    def table(name):
        frame = pd.read_csv(vocab_dir / name, sep="\t", dtype=str, keep_default_na=False)
        return dict(zip(frame.iloc[:, 0], frame.iloc[:, 1], strict=True))

    pk = tmp_path / "pickles"
    pk.mkdir()
    dumps = {
        "EntrezID_to_myID.pkl": {int(k): int(v) for k, v in table("entrez_to_token.tsv").items()},
        "hgs_to_EntrezID.pkl": {k: int(v) for k, v in table("human_symbol_to_entrez.tsv").items()},
        "mouse_gene_ID_to_human_gene_symbol.pkl": table("mouse_ensembl_to_human_symbol.tsv"),
        "mouse_gene_symbol_to_human_gene_symbol.pkl": table("mouse_symbol_to_human_symbol.tsv"),
    }
    for name, obj in dumps.items():
        (pk / name).write_bytes(pickle.dumps(obj))
    from_pickles = GeneVocab.from_original_tables(pk)
    from_tsv = GeneVocab.from_original_tables(vocab_dir)
    assert from_pickles.entrez_to_token == from_tsv.entrez_to_token
    assert from_pickles.symbol_to_entrez == from_tsv.symbol_to_entrez
    # a pickle that names a callable is refused, nothing executed
    (pk / "hgs_to_EntrezID.pkl").write_bytes(pickle.dumps(print))
    from tokenization.safe_pickle import UnsafePickleError

    with pytest.raises(UnsafePickleError):
        GeneVocab.from_original_tables(pk)


def test_a_binary_file_given_as_gene_info_is_named(tmp_path, capsys):
    """An .h5ad given by mistake said only "'utf-8' codec can't decode byte 0x89"."""
    binary = tmp_path / "cells.h5ad"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)))
    assert _run(["vocab", "from-ncbi", str(binary), "--out", str(tmp_path / "out")]) == 2
    assert "is not an NCBI gene_info text file" in capsys.readouterr().err


def test_vocab_errors_read_as_every_command_s(tmp_path, capsys):
    """`sctranslator vocab from-ncbi nofile.gz` printed '[Errno 2] No such file or directory' with no command name
    and exit 1, where every other command says 'sctranslator NAME: error: ...' and exits 2."""
    from sctranslator.cli import main as sctranslator_main

    missing = tmp_path / "nofile.gz"
    assert sctranslator_main(["vocab", "from-ncbi", str(missing), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("sctranslator vocab: error: ") and f"{missing} does not exist" in error
    assert "Errno" not in error and not (tmp_path / "out").exists()
