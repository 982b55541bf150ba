"""Names resolve as HGNC ranks them (approved, previous, alias), on top of the original tables' token ids."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

from tokenization.hgnc import BUNDLED_HGNC, apply_hgnc, read_hgnc, write_hgnc_extract
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from tokenization.vocab import GeneVocab

# genenames.org's complete set: lower-case columns, lists quoted and joined by "|", withdrawn entries included
COMPLETE_SET = (
    "hgnc_id\tsymbol\tname\tstatus\talias_symbol\tprev_symbol\tentrez_id\tensembl_gene_id\n"
    'HGNC:4162\tGARS1\tglycyl-tRNA synthetase 1\tApproved\t"GlyRS|SMAD1"\t"CMT2D|GARS"\t2617\tENSG00000106105\n'
    "HGNC:4163\tGART\tphosphoribosylglycinamide formyltransferase\tApproved\tGARS\t\t2618\tENSG00000159131\n"
    "HGNC:1\tOLD1\tan approved gene whose symbol another gene once had\tApproved\t\t\t11\t\n"
    "HGNC:2\tNEW2\ttakes the previous symbol OLD1\tApproved\t\tOLD1\t12\t\n"
    "HGNC:3\tSPLITA\tone of two genes that shared a previous symbol\tApproved\t\tSHARED\t13\t\n"
    "HGNC:4\tSPLITB\tthe other one\tApproved\t\tSHARED\t14\t\n"
    "HGNC:5\tGONE~withdrawn\twithdrawn\tEntry Withdrawn\t\tGARS\t15\t\n"
    "HGNC:6\tNOTOKEN\tan approved gene the token table lacks\tApproved\t\tOLDNOTOKEN\t999\tENSG00000000999\n"
)
# a custom download: "Approved symbol" ..., lists joined by ", "
CUSTOM = (
    "HGNC ID\tApproved symbol\tStatus\tPrevious symbols\tNCBI Gene ID(supplied by NCBI)\tEnsembl gene ID\n"
    "HGNC:4162\tGARS1\tApproved\tCMT2D, GARS\t2617\tENSG00000106105\n"
    "HGNC:4163\tGART\tApproved\t\t2618\tENSG00000159131\n"
)


def small_vocab() -> GeneVocab:
    # the original tables' kind of pick: the alias GARS goes to GART, SHARED to 13, OLD1 to its own gene
    return GeneVocab(
        {2617: 1, 2618: 2, 11: 3, 12: 4, 13: 5, 14: 6, 15: 7},
        {"GARS": 2618, "GART": 2618, "GARS1": 2617, "OLD1": 11, "SHARED": 14, "ALIAS-ONLY": 12},
        source="toy",
    )


@pytest.fixture
def complete_set(tmp_path):
    path = tmp_path / "hgnc_complete_set.txt"
    path.write_text(COMPLETE_SET)
    return path


def test_complete_set_and_custom_download_read_alike(tmp_path, complete_set):
    custom = tmp_path / "custom.txt"
    custom.write_text(CUSTOM)
    full, small = read_hgnc(complete_set), read_hgnc(custom)
    assert small.approved == {"GARS1": 2617, "GART": 2618}
    assert small.previous == {"CMT2D": {2617}, "GARS": {2617}} == {k: full.previous[k] for k in ("CMT2D", "GARS")}
    assert full.ensembl["ENSG00000106105"] == small.ensembl["ENSG00000106105"] == 2617
    assert "GONE~withdrawn" not in full.approved and full.previous["GARS"] == {2617}  # withdrawn rows left out


def test_approved_then_previous_then_the_tables_alias(complete_set):
    vocab, update = apply_hgnc(small_vocab(), complete_set)
    assert vocab.symbol_to_entrez["GARS"] == 2617  # previous symbol of GARS1 beats the alias pick (GART)
    assert vocab.symbol_to_entrez["GART"] == 2618
    assert vocab.symbol_to_entrez["OLD1"] == 11  # an approved symbol is never taken by another gene's old name
    assert vocab.symbol_to_entrez["SHARED"] == 14  # a previous symbol of two genes keeps the table's choice
    assert vocab.symbol_to_entrez["ALIAS-ONLY"] == 12  # names HGNC does not rank stay as they were
    assert vocab.symbol_to_entrez["SPLITA"] == 13 and "NOTOKEN" not in vocab.symbol_to_entrez
    assert "OLDNOTOKEN" not in vocab.symbol_to_entrez and update.not_tokenized == 1
    assert vocab.ensembl_to_entrez == {"ENSG00000106105": 2617, "ENSG00000159131": 2618}
    assert vocab.entrez_to_token == small_vocab().entrez_to_token  # token ids never move: weights stay valid
    assert [s for s, _, _ in update.previous_changed] == ["GARS"]
    assert vocab.token_names()[1] == "GARS1" and vocab.token_names()[2] == "GART"
    assert "toy + HGNC" in vocab.source


def test_mouse_orthologs_named_by_hgnc_with_the_same_symbol_correct_the_ortholog_table(tmp_path):
    hgnc = tmp_path / "hgnc.txt"
    hgnc.write_text("symbol\tprev_symbol\tentrez_id\tmgd_id\tstatus\n"
                    "GARS1\tGARS\t2617\tMGI:1\tApproved\n"  # an ortholog HGNC names, with the same symbol
                    "GART\t\t2618\tMGI:2\tApproved\n")  # named, but the mouse symbol differs: not taken
    mgi = tmp_path / "mgi.txt"
    mgi.write_text("MGI Accession ID\tMarker Symbol\tensembl\nMGI:1\tGars1\tENSMUSG00000001\n"
                   "MGI:2\tGart2\t\n")
    table = read_hgnc(hgnc, mgi=mgi)
    assert table.mouse == {"Gars1": "GARS1", "ENSMUSG00000001": "GARS1"}
    toy = small_vocab()
    toy.mouse_symbol_to_human.update({"Gars1": "GART", "Gart2": "GART"})
    vocab, update = apply_hgnc(toy, table)
    assert vocab.mouse_symbol_to_human == {"Gars1": "GARS1", "Gart2": "GART"}
    assert update.mouse_changed == [("Gars1", "GART", "GARS1")]
    again = tmp_path / "extract.tsv.gz"
    write_hgnc_extract(table, again)
    assert read_hgnc(again).mouse == table.mouse  # the bundled extract carries them without MGI's table


def test_not_an_hgnc_table_is_refused_with_the_download(tmp_path):
    path = tmp_path / "genes.tsv"
    path.write_text("gene\tid\nA\t1\n")
    with pytest.raises(ValueError, match="not an HGNC table.*genenames.org"):
        read_hgnc(path)


def test_the_extract_round_trips_and_is_reproducible(tmp_path, complete_set):
    table = read_hgnc(complete_set)
    write_hgnc_extract(table, tmp_path / "a.tsv.gz")
    write_hgnc_extract(table, tmp_path / "b.tsv.gz")
    again = read_hgnc(tmp_path / "a.tsv.gz")
    assert (again.approved, again.previous, again.ensembl) == (table.approved, table.previous, table.ensembl)
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "b.tsv.gz").read_bytes()
    with gzip.open(tmp_path / "a.tsv.gz", "rt") as handle:
        assert handle.readline().split() == ["symbol", "prev_symbol", "entrez_id", "ensembl_gene_id", "mouse_orthologs"]


# ---------------------------------------------------------------- the real tables, and the shipped model
RENAMED = {  # old symbol in most public data -> the gene it names; the original tables send each elsewhere
    "GARS": "GARS1", "SARS": "SARS1", "MARS": "MARS1", "SEPT2": "SEPTIN2", "NOV": "CCN3", "CD97": "ADGRE5",
    "GBA": "GBA1", "AIM1": "CRYBG1",
}


@pytest.fixture(scope="module")
def both_vocabs(vocab_dir):
    return (SCTranslatorTokenizer.from_original_tables(vocab_dir, hgnc=False),
            SCTranslatorTokenizer.from_original_tables(vocab_dir))


def test_old_symbols_reach_their_gene_and_hgnc_false_keeps_the_original(both_vocabs):
    original, tokenizer = both_vocabs
    for old, current in RENAMED.items():
        assert tokenizer.convert_genes_to_ids(old) == tokenizer.convert_genes_to_ids(current), old
        assert original.convert_genes_to_ids(old) != original.convert_genes_to_ids(current), old
    names = tokenizer.convert_ids_to_genes(tokenizer.convert_genes_to_ids(["GARS", "CD4", "TP53", "MT-ND1"]))
    assert names == ["GARS1", "CD4", "TP53", "MT-ND1"]  # the original tables showed DSMAV, IMD79, BCC7, MTND1
    assert original.convert_genes_to_ids("MT-ND1") is None and tokenizer.convert_genes_to_ids("MT-ND1")
    assert tokenizer.convert_genes_to_ids("ENSG00000106105.14") == tokenizer.convert_genes_to_ids("GARS1")


def test_mouse_genes_reach_their_ortholog_not_a_paralog(both_vocabs):
    original, tokenizer = both_vocabs
    for mouse, human in {"Set": "SET", "Sumo2": "SUMO2", "Cd33": "CD33", "Casp1": "CASP1", "Ercc5": "ERCC5"}.items():
        assert tokenizer.convert_genes_to_ids(mouse) == tokenizer.convert_genes_to_ids(human), mouse
        assert original.convert_genes_to_ids(mouse) != original.convert_genes_to_ids(human), mouse
    assert tokenizer.convert_genes_to_ids("Cd4") == tokenizer.convert_genes_to_ids("CD4")


def test_a_mouse_file_reads_mouse_symbols_first(both_vocabs):
    """With species "auto", a name was tried as a human symbol or alias before the mouse ortholog table, so in a
    mouse file Alb became FBF1 (human alias Alb), Met SLTM, Cps1 PM20D1 (39 of the table's 20,252 symbols), although
    nearly every other name was mouse. A gene list that is mostly mouse, and no mix, is now read as mouse; a mix
    keeps the old order (and its warning), a lone name too."""
    _, tokenizer = both_vocabs
    mouse = ["Cd3g", "Cd8b1", "Gzma", "Ccl5", "Lck", "Zap70", "Itk", "Lat", "Cd247", "Tcf7", "Lef1", "Foxp3", "Il2ra",
             "Cd74", "Cd83", "Cd86", "Cd40", "Csf1r", "Itgax", "S100a8"]
    clashes = {"Alb": "ALB", "Met": "MET", "Cps1": "CPS1", "Fli1": "FLI1", "Pak2": "PAK2"}
    ids = tokenizer.convert_genes_to_ids(mouse + list(clashes))
    assert ids[len(mouse):] == tokenizer.convert_genes_to_ids(list(clashes.values()))
    assert tokenizer.convert_genes_to_ids("Alb") == tokenizer.convert_genes_to_ids("FBF1")  # alone: no file to tell
    human = ["CD4", "CD8A", "PTPRC", "CD19", "MS4A1", "CD14", "LYZ", "NKG7", "GZMB", "CD3E", "IL7R", "CCR7"]
    mixed = tokenizer.resolve(mouse + human + ["Alb"])
    assert mixed.token_ids[-1] == tokenizer.convert_genes_to_ids("FBF1")
    assert mixed.route_counts == {"mouse_symbol": len(mouse), "symbol": len(human) + 1}


def test_a_file_with_the_old_and_the_colliding_name_keeps_both_genes(both_vocabs):
    """NOV (CCN3) and RPL10 shared one id: RPL10's column, the far larger one, was dropped as NOV's duplicate."""
    original, tokenizer = both_vocabs
    names = ["NOV", "RPL10", "GARS", "GART", "SEPT2", "SEPTIN6"]
    assert original.resolve(names).n_duplicates == 3
    report = tokenizer.resolve(names)
    assert report.n_duplicates == 0 and report.n_mapped == 6


def test_taz_is_tafazzin_in_rna_and_wwtr1_on_an_antibody_panel(both_vocabs):
    _, tokenizer = both_vocabs
    assert tokenizer.convert_genes_to_ids("TAZ") == tokenizer.convert_genes_to_ids("TAFAZZIN")
    rppa = tokenizer.resolve(["TAZ", "YAP", "Akt"], kind="protein")
    assert rppa.kept_token_ids[0] == tokenizer.convert_genes_to_ids("WWTR1")


def test_the_shipped_tokenizer_is_the_original_tables_with_the_bundled_hgnc(both_vocabs):
    """``make pretrain`` must rebuild the shipped tokenizer: same tables, same HGNC ranking, same names."""
    from modeling_sctranslator import DEFAULT_MODEL_DIR

    _, tokenizer = both_vocabs
    shipped = json.loads((DEFAULT_MODEL_DIR / "gene_vocab.json").read_text())
    assert shipped == tokenizer.vocab.to_json_dict()
    assert BUNDLED_HGNC.stat().st_size < 1_000_000


def test_vocab_command_hgnc_option(vocab_dir, tmp_path, capsys):
    from tokenization.cli import main

    assert main(["vocab", "from-original", str(vocab_dir), "--out", str(tmp_path / "a")]) == 0
    assert "HGNC" in capsys.readouterr().out
    assert main(["vocab", "from-original", str(vocab_dir), "--hgnc", "none", "--out", str(tmp_path / "b")]) == 0
    a = SCTranslatorTokenizer.from_pretrained(tmp_path / "a")
    b = SCTranslatorTokenizer.from_pretrained(tmp_path / "b")
    assert a.convert_genes_to_ids("SEPT2") != b.convert_genes_to_ids("SEPT2")
    assert main(["vocab", "from-original", str(vocab_dir), "--hgnc", str(tmp_path / "missing.txt"),
                 "--out", str(tmp_path / "c")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert np.array_equal(a.convert_genes_to_ids(["CD4", "CD8A"]), b.convert_genes_to_ids(["CD4", "CD8A"]))


def test_a_newer_hgnc_download_keeps_the_bundled_mouse_orthologs_and_none_means_none(vocab_dir, complete_set,
                                                                                     both_vocabs):
    original, bundled = both_vocabs
    with open(complete_set, "a") as handle:
        handle.write("HGNC:10760\tSET\tSET nuclear proto-oncogene\tApproved\t\t\t6418\tENSG00000119335\n")
    newer = SCTranslatorTokenizer.from_original_tables(vocab_dir, hgnc=str(complete_set))
    assert newer.convert_genes_to_ids("Set") == bundled.convert_genes_to_ids("SET")  # genenames files hold no mouse
    assert newer.convert_genes_to_ids("GARS") == bundled.convert_genes_to_ids("GARS1")
    as_text = SCTranslatorTokenizer.from_original_tables(vocab_dir, hgnc="none")
    assert as_text.vocab == original.vocab


def test_vocab_overwrite_never_deletes_the_tables_it_reads(vocab_dir, tmp_path, capsys):
    """--overwrite replaces the tokenizer folder as a whole: with the tables kept inside it, they went too."""
    import shutil

    from tokenization.cli import main

    out = tmp_path / "tokenizer"
    assert main(["vocab", "from-original", str(vocab_dir), "--out", str(out)]) == 0
    shutil.copytree(vocab_dir, out / "tables")
    before = sorted(p.name for p in (out / "tables").iterdir())
    assert main(["vocab", "from-original", str(out / "tables"), "--out", str(out), "--overwrite"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "tables").iterdir()) == before


def test_vocab_overwrite_never_deletes_a_model_folder_or_other_files(vocab_dir, tmp_path, capsys):
    """A model folder holds gene_vocab.json too: `vocab from-original --out MODEL --overwrite` counted it as a
    tokenizer folder and replaced it whole, weights and card included."""
    from tokenization.cli import main

    model = tmp_path / "my_model"
    assert main(["vocab", "from-original", str(vocab_dir), "--out", str(model)]) == 0
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "notes.txt").write_text("mine")
    before = sorted(p.name for p in model.iterdir())
    assert main(["vocab", "from-original", str(vocab_dir), "--out", str(model), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "holds 'model.safetensors' and 1 more, which this command does not write" in err
    assert "nothing was replaced" in err
    assert sorted(p.name for p in model.iterdir()) == before and (model / "notes.txt").read_text() == "mine"
    (model / "model.safetensors").unlink()
    (model / "notes.txt").unlink()
    assert main(["vocab", "from-original", str(vocab_dir), "--out", str(model), "--overwrite"]) == 0  # its own only
    umask = os.umask(0)
    os.umask(umask)
    assert (model / "gene_vocab.json").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() gives, not 0600
