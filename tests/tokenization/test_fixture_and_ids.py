"""Acceptance 1 and 2: the original's token ids and scaled values, and the id tables."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def io(shared):
    return np.load(shared("fixtures", "original_small_io.npz"))


def _encode(tok, counts, ids, proteins=None, values=None):
    return tok(
        counts,
        gene_ids=ids,
        proteins=None if proteins is None else [int(p) for p in proteins],
        protein_values=values,
        max_length=64,
        protein_max_length=16,
        padding="max_length",
        truncation="first",
        protein_truncation=True,
        return_tensors="np",
    )


def test_reproduces_original_fixture(original_tokenizer, io):
    tok = original_tokenizer
    a = _encode(
        tok,
        io["rna_raw_counts_cells01_70genes"],
        io["rna_raw_ids_cells01"],
        io["protein_raw_ids_cells02"],
        io["protein_raw_counts_cells02_20prot"],
    )
    b = _encode(
        tok,
        io["rna_raw_counts_cell2_54genes"],
        io["rna_raw_ids_cell2"],
        io["protein_raw_ids_cell1"],
        io["protein_raw_counts_cell1_12prot"],
    )
    rna_ids = np.concatenate([a["input_ids"], b["input_ids"]])
    rna_values = np.concatenate([a["input_values"], b["input_values"]])
    rna_mask = np.concatenate([a["attention_mask"], b["attention_mask"]])
    np.testing.assert_array_equal(rna_ids, io["rna_ids"])
    np.testing.assert_array_equal(rna_mask, io["rna_mask"])
    # within 1 float32 ulp of the original (which computes in float32): an absolute tolerance would hide
    # the 1e-8 floor, which moves every cell minimum from 1e-8 to 0
    np.testing.assert_array_max_ulp(rna_values, io["rna_values"], maxulp=1)
    # proteins: cells 0 and 2 from the 20-protein matrix, cell 1 from the 12-protein one
    p_ids = np.stack([a["protein_ids"][0], b["protein_ids"][0], a["protein_ids"][1]])
    p_mask = np.stack(
        [a["protein_attention_mask"][0], b["protein_attention_mask"][0], a["protein_attention_mask"][1]]
    )
    p_vals = np.stack([a["labels"][0], b["labels"][0], a["labels"][1]])
    np.testing.assert_array_equal(p_ids, io["protein_ids"])
    np.testing.assert_array_equal(p_mask, io["protein_mask"])
    np.testing.assert_array_max_ulp(p_vals, io["protein_values"], maxulp=1)
    assert a["input_ids"].dtype == np.int64 and a["input_values"].dtype == np.float32
    assert a["attention_mask"].dtype == bool and a["labels"].dtype == np.float32


def test_torch_output_types(original_tokenizer, io):
    torch = pytest.importorskip("torch")
    out = original_tokenizer(
        io["rna_raw_counts_cell2_54genes"],
        gene_ids=io["rna_raw_ids_cell2"],
        max_length=64,
        proteins=["CD4", "CD8"],
        protein_max_length=16,
    )
    assert out["input_ids"].dtype == torch.int64
    assert out["input_values"].dtype == torch.float32
    assert out["attention_mask"].dtype == torch.bool
    assert out["protein_ids"].dtype == torch.int64 and out["protein_attention_mask"].dtype == torch.bool
    assert "labels" not in out


def test_id_tables(original_tokenizer, vocab_dir):
    tok = original_tokenizer
    assert tok.convert_genes_to_ids(["CD4", "TP53", "PTPRC"]) == [752, 5735, 4582]
    assert tok.convert_genes_to_ids("Cd4") == tok.convert_genes_to_ids("CD4") == 752
    assert tok.convert_genes_to_ids("920") == 752
    # a mouse Ensembl id from the ortholog table, with and without a version suffix
    import pandas as pd

    table = pd.read_csv(vocab_dir / "mouse_ensembl_to_human_symbol.tsv", sep="\t")
    row = table[table["human_symbol"] == "CD4"].iloc[0]
    assert tok.convert_genes_to_ids(row["mouse_ensembl_id"]) == 752
    assert tok.convert_genes_to_ids(row["mouse_ensembl_id"] + ".12") == 752
    report = tok.resolve(["CD4", "Cd4", "920", "lag3", "NOT_A_GENE"])
    assert report.routes[:4] == ["symbol", "mouse_symbol", "entrez", "symbol_case"]
    # three names of one gene: the one named as the token's gene is kept, whatever the column order
    assert report.status == ["mapped", "duplicate", "duplicate", "mapped", "unmapped"]
    assert tok.resolve(["lag3", "Cd4", "920", "CD4"]).status == ["mapped", "duplicate", "duplicate", "mapped"]
    # the tables give C2orf48 RRM2's id and C9orf47 S1PR3's: every whole-transcriptome file has both columns, and
    # the gene's own column is the one read (C2orf48, sorting first, used to be fed to the model as RRM2)
    for columns in (["C2orf48", "RRM2", "C9orf47", "S1PR3"], ["RRM2", "S1PR3", "C2orf48", "C9orf47"]):
        both = tok.resolve(columns)
        assert both.kept_token_ids.tolist() == tok.convert_genes_to_ids(["RRM2", "S1PR3"])
        assert [n for n, status in zip(columns, both.status, strict=True) if status == "mapped"] == ["RRM2", "S1PR3"]
    assert report.unmapped == ["NOT_A_GENE"]
    # the tables hold lower-case aliases of other genes: a lower-cased file's 'magoh' is MAGOH, not MAGOHB (an
    # alias lookup moved 6 of ECCITE's genes to other genes when its names were lower-cased); mixed case is exact
    lowered = ["magoh", "emb", "slit2", "neu1", "elk3", "ten1"]
    assert tok.convert_genes_to_ids(lowered) == tok.convert_genes_to_ids([name.upper() for name in lowered])
    assert tok.resolve(["magoh"]).routes == ["symbol_case"]


def test_genome_prefixes_of_multi_genome_references_are_read_past(original_tokenizer):
    """Cell Ranger's barnyard and combined references name genes GRCh38_CD4 / mm10___Cd4: a whole file of them was
    refused as mapping no gene (or, with a GRCh38- prefix, none); a file of both genomes reads one genome's genes."""
    tok = original_tokenizer
    names = ["GRCh38_CD4", "hg19_CD8A", "GRCh38-PTPRC", "grch38_TP53", "GRCh38_3458"]
    report = tok.resolve(names)
    assert report.token_ids.tolist() == tok.convert_genes_to_ids(["CD4", "CD8A", "PTPRC", "TP53", "IFNG"])
    assert report.routes == ["symbol", "symbol", "symbol", "symbol", "entrez"]  # the inner name's route
    # a barnyard file (both genomes; GSE100866's CBMC writes HUMAN_ / MOUSE_): the human genome's genes, said so;
    # the mouse genes read through their orthologs added mouse cells' reads to the human genes (MOUSE_Cd4 was CD4)
    barnyard = ["GRCh38_CD4", "mm10___Cd19", "HUMAN_CD8A", "MOUSE_Cd8a", "MOUSE_Ptprc"]
    with pytest.warns(UserWarning, match="the human genome's genes are read and the mouse genome's left out"):
        report = tok.resolve(barnyard)
    assert report.status == ["mapped", "unmapped", "mapped", "unmapped", "unmapped"]
    assert report.token_ids[[0, 2]].tolist() == tok.convert_genes_to_ids(["CD4", "CD8A"])
    mouse = tok.resolve(barnyard, species="mouse")
    assert mouse.status == ["unmapped", "mapped", "unmapped", "mapped", "mapped"]
    assert mouse.routes[1] == "mouse_symbol"
    assert tok.resolve(["hg19_", "GRCh38_NOT_A_GENE"]).status == ["unmapped", "unmapped"]
    # protein labels keep the tables' lower-case aliases: gp39 is the CD40LG antibody, not GP39 (CHI3L1)
    assert tok.resolve(["gp39"], kind="protein").token_ids.tolist() == tok.convert_genes_to_ids(["CD40LG"])
    assert tok.convert_genes_to_ids("C17orf1") == tok.vocab.entrez_to_token[tok.vocab.symbol_to_entrez["C17orf1"]]
    assert tok.vocab.reserved_start == 75523 and tok.vocab_size == 85500
    # TCGA's 'SYMBOL|ENTREZ' names resolve by the id, '?|ENTREZ' too; a stale symbol does not matter
    tcga = tok.resolve(["CD4|920", "?|7157", "NOTCD4|5788", "?|999999999", "PTPRC|"])
    assert tcga.kept_token_ids.tolist() == [752, 5735, 4582] and tcga.routes[:3] == ["entrez"] * 3
    assert tcga.status[3] == "unmapped" and tcga.status[4] == "duplicate"  # PTPRC| falls back to its symbol


def test_species_rules(original_tokenizer):
    tok = original_tokenizer
    human = tok.resolve(["Cd4", "CD4"], species="human")
    assert human.routes[0] == "symbol_case"
    mouse = tok.resolve(["Cd4", "Actb", "ACTB"], species="mouse")
    assert mouse.routes == ["mouse_symbol", "mouse_symbol", "mouse_symbol"]
    assert mouse.status == ["mapped", "duplicate", "mapped"]  # "ACTB" sorts before "Actb"


def test_overrides_and_added_genes(vocab_dir, tmp_path):
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tok = SCTranslatorTokenizer.from_original_tables(vocab_dir, overrides={"weird": "CD4"})
    report = tok.resolve(
        ["weird", "x1", "x2", "x3"], overrides={"x1": "entrez:7157", "x2": "token:9", "x3": "control"}
    )
    assert report.token_ids.tolist()[:3] == [752, 5735, 9]
    assert report.controls == ["x3"]
    with pytest.raises(TypeError, match="entrez:"):
        tok.resolve(["y"], overrides={"y": 920})
    added = tok.add_genes(["MyNewProtein", "CD4", "Other"])
    assert added == {"MyNewProtein": 75523, "CD4": 752, "Other": 75524}
    assert tok.add_genes("MyNewProtein") == {"MyNewProtein": 75523}
    assert tok.convert_genes_to_ids("MyNewProtein") == 75523
    assert tok.resolve(["MyNewProtein"]).routes == ["added"]


def test_scaling_keeps_the_floor_that_tells_a_true_zero_from_padding():
    from tokenization.tokenization_sctranslator import SCALE_FLOOR, scale_rows

    scaled, constant = scale_rows(np.array([[0.0, 5.0, 10.0], [3.0, 3.0, np.nan]]))
    np.testing.assert_array_equal(scaled[0], [1e-8, 0.5 * (1 - 1e-8) + 1e-8, 1.0])
    assert scaled[0, 0] > 0 and SCALE_FLOOR == 1e-8  # padding is 0: the smallest real value is not
    np.testing.assert_array_equal(scaled[1, :2], [1e-8, 1e-8])
    assert np.isnan(scaled[1, 2])
    assert constant.tolist() == [False, True]


def test_transformers_lookup_names_work_on_genes(original_tokenizer):
    """Code written for transformers' tokenizers called convert_tokens_to_ids, convert_ids_to_tokens, get_vocab and
    len(): each an AttributeError or TypeError."""
    tok = original_tokenizer
    cd4 = tok.convert_genes_to_ids("CD4")
    assert tok.convert_tokens_to_ids("CD4") == cd4 and tok.convert_tokens_to_ids(["CD4", "NotAGene"]) == [cd4, None]
    assert tok.convert_ids_to_tokens(cd4) == "CD4" and tok.convert_ids_to_tokens([cd4]) == ["CD4"]
    assert tok.get_vocab()["CD4"] == cd4 and len(tok) == tok.vocab_size == 85500
    # review: names of ids without a symbol (Entrez:N) map back, as transformers' rule says
    unnamed = {name: token for name, token in tok.get_vocab().items() if name.startswith("Entrez:")}
    assert unnamed and all(tok.convert_tokens_to_ids(name) == token for name, token in list(unnamed.items())[:20])


@pytest.mark.parametrize(("name", "gene"), [
    # a symbol and its Ensembl id in one name (GEO tables, scPerturb, CELLxGENE-derived exports), either way round
    ("TSPAN6_ENSG00000000003.10", "TSPAN6"), ("ENSG00000000003_TSPAN6", "TSPAN6"),
    ("ENSG00000000003.15_TSPAN6", "TSPAN6"),
    ("ENSG00000000003:TSPAN6", "TSPAN6"), ("ENSG00000000003-TSPAN6", "TSPAN6"), ("TSPAN6 (ENSG00000000003)", "TSPAN6"),
    # 10x Flex probe ids and targeted-panel bait ids: the last field was read as an Entrez id (|1 was A1BG)
    ("ENSG00000000003|TSPAN6|8eab823", "TSPAN6"), ("ENSG00000000003|TSPAN6|1", "TSPAN6"),
    # CEL-seq's chromosome suffix (Grun, Muraro pancreas sets)
    ("A1BG__chr19", "A1BG"), ("ZZZ3__chr1", "ZZZ3"),
    # R's dots, also where the dotted name is another gene's alias (NKX1.1 was NKX1-2, KRTAP2.4 KRTAP2-3)
    ("NKX1.1", "NKX1-1"), ("KRTAP2.4", "KRTAP2-4"), ("KRTAP10.9", "KRTAP10-9"),
    # synonyms of one gene joined by a semicolon (scanpy's paul15 data set)
    ("0610007C21Rik;Apr3", "ATRAID"),
])
def test_gene_names_of_public_pipelines_resolve(original_tokenizer, name, gene):
    """Gene-name conventions of real pipelines and exports that were unmapped (a file of them was refused as mapping
    no gene) or, for bait ids and R-dotted aliases, read as another gene."""
    report = original_tokenizer.resolve([name, "CD4", "ACTB"])
    assert report.status[0] == "mapped", report.routes
    assert report.token_ids[0] == original_tokenizer.convert_genes_to_ids([gene])[0]


def test_reporter_and_transgene_names_are_no_genes_in_an_rna_file(original_tokenizer):
    """A custom reference's reporter or construct (a CAR-T product's CAR, a reporter line's RFP) was read as the human
    gene the original tables give that alias: its counts went to CXADRP1, TRIM27, RNF112, TKT. An override still maps
    one, and a protein panel's TdT antibody is DNTT's."""
    tok = original_tokenizer
    names = ["CAR", "RFP", "BFP", "TK", "Gal4", "ERT2", "tdT", "CD4", "ACTB"]
    report = tok.resolve(names)
    assert report.status == ["unmapped"] * 7 + ["mapped"] * 2
    assert tok.resolve(names, overrides={"TK": "TKT"}).token_ids[3] == tok.convert_genes_to_ids(["TKT"])[0]
    # an override's target is the user's choice: 'TdT' names DNTT there (it raised 'not a known symbol')
    dntt = tok.convert_genes_to_ids(["DNTT"])[0]
    assert tok.resolve(["anti-terminal-transferase", "CD3"], kind="protein",
                       overrides={"anti-terminal-transferase": "TdT"}).token_ids[0] == dntt
    assert tok.resolve(["my_TdT", "CD4"], overrides={"my_TdT": "TdT"}).token_ids[0] == dntt
    proteins = tok.resolve(["TdT", "CD3"], kind="protein")
    assert proteins.token_ids[0] == tok.convert_genes_to_ids(["DNTT"])[0]


def test_a_mouse_file_keeps_the_gene_named_as_itself_over_a_fallback_or_placeholder_name():
    """In a mouse reference two names reaching one token kept the one sorting first: Mup1 (by a human alias of
    SLC25A19) dropped Slc25a19's column, Amy1 Mycbp's, Lcn5 (by LCN8's previous symbol) Lcn8's, the accession
    AI182371 Hc's (C5), Gm28040 Kiss1's. Measured on 3,000 genes of 10x's mm10-2020-A: 5 such columns lost."""
    from modeling_sctranslator import DEFAULT_MODEL_DIR
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    pairs = [("Mup1", "Slc25a19"), ("Amy1", "Mycbp"), ("Lcn5", "Lcn8"), ("AI182371", "Hc"), ("Gm28040", "Kiss1")]
    for species in ("mouse", "auto"):  # a list of mouse names is read as mouse
        tok = SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR, species=species)
        mouse = [n for n in sorted(tok.vocab.mouse_symbol_to_human)[::50][:300] if n not in sum(pairs, ())]
        names = mouse + [name for pair in pairs for name in pair]
        report = tok.resolve(names)
        status = dict(zip(names, report.status, strict=True))
        assert [status[other] for other, _ in pairs] == ["duplicate"] * len(pairs)
        assert [status[gene] for _, gene in pairs] == ["mapped"] * len(pairs)
    # a human file keeps its choice by sort order where neither name is the gene's own (the shipped model's reading)
    human = SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR).resolve(["C6ORF165", "C6orf165", "CD4", "ACTB"])
    assert human.status[:2] == ["mapped", "duplicate"]


def test_a_versioned_ensembl_id_is_no_symbol_and_id(original_tokenizer):
    """An Ensembl id with its version is one id: read as 'id_symbol' its version became an Entrez id
    (ENSG00000230699.2 was A2M, ENSG00000290825.1 A1BG) in a first version of the joined-names rule."""
    names = ["ENSG00000230699.2", "ENSG00000290825.1", "ENSMUSG00000099999.3", "CD4", "ACTB"]
    assert original_tokenizer.resolve(names).status[:3] == ["unmapped"] * 3


def test_a_mouse_file_in_capitals_is_read_as_mouse(original_tokenizer):
    """A mouse file whose names were upper-cased (4930430F08RIK, GM15663) was read as human symbols: TAC2 reached
    TAC1 (mouse Tac2 is TAC3's ortholog), RDH1 RDH5, CAR2 NR1I4, HC TCN1, in silence. Names only mouse genomes have
    (1 % of a file is enough; a mouse reference has ~20 %) tell the file's species; a mix of species stays a mix."""
    import re

    tok = original_tokenizer
    mouse_only = re.compile(r"^(?:[0-9A-Z]{6,10}RIK\d?|GM\d{3,}|OLFR\d+|VMN\d[RT]\d+)$", re.IGNORECASE)
    mouse = [n.upper() for n in sorted(tok.vocab.mouse_symbol_to_human)[::40] if not mouse_only.match(n)][:392]
    tell = ["TAC2", "RDH1", "CAR2", "HC"]
    expected = tok.convert_genes_to_ids(["TAC3", "RDH16", "CA2", "C5"])
    without = tok.resolve(mouse + tell)  # no mouse-only name: read as human, as before
    assert without.token_ids[-4:].tolist() != expected
    names = mouse + ["4930430F08RIK", "GM15663", "1700017N19RIK", "GM26917"] + tell  # 4 of 400: 1 %
    assert tok.resolve(names).token_ids[-4:].tolist() == expected
    # human symbols, mouse symbols and RIKEN clones in one list: a mix, read as before (each name by its own route)
    human = [s for s in sorted(tok.vocab.symbol_to_entrez) if s.isupper() and s.isalnum()][::60][:300]
    mixed = tok.resolve(human + sorted(tok.vocab.mouse_symbol_to_human)[::50][:300] + ["4930430F08Rik"] * 5)
    assert {"symbol", "mouse_symbol"} <= set(mixed.routes)
