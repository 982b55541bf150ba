"""Every protein name of every antibody panel in ../shared/data resolves to the gene its antibody binds.

The expected genes were curated by hand (see tokenization/antibody_targets.py for the rules); a name
means the same in every panel it appears in. ``"GENE:RECORD"`` is an isoform-restricted epitope that
keeps the vocabulary's own record for the isoform; ``"control"`` is an isotype/blank row; ``None`` is
a name with no single gene, left unmapped on purpose.
"""

from __future__ import annotations

import pytest

ANTIBODY_PANELS = [
    "cite_cd8_gse100866_adt.h5ad",
    "eccite_adt.h5ad",
    "eccite_ctcl_adt.h5ad",
    "neurips_bmmc_adt.h5ad",
    "pbmc10k_protein_v3_adt.h5ad",
    "pbmc1k_protein_v3_adt.h5ad",
    "pbmc5p_totalseqc_mme_adt.h5ad",
    "reapseq_pbmc_adt.h5ad",
    "tenx_pbmc10k_s200_adt.h5ad",
    "tcga_brca_bulk_rppa.h5ad",
    "tcga_rppa_mrna_rppa.h5ad",
    "tcga_rppa_rnaseq_rppa.h5ad",
]
GENE_NAMED_PANELS = ["cptac_ucec_rppa.h5ad", "cptac_coad_rppa.h5ad"]

EXPECTED_GENE = {
    "14-3-3_beta": "YWHAB",
    "14-3-3_epsilon": "YWHAE",
    "14-3-3_zeta": "YWHAZ",
    "4E-BP1": "EIF4EBP1",
    "4E-BP1_pS65": "EIF4EBP1",
    "4E-BP1_pT37": "EIF4EBP1",
    "4E-BP1_pT37_T46": "EIF4EBP1",
    "4E-BP1_pT70": "EIF4EBP1",
    "53BP1": "TP53BP1",
    "A-Raf_pS299": "ARAF",
    "ACC1": "ACACA",
    "ACC_pS79": "ACACA",
    "Acetyl-a-Tubulin(Lys40)": "TUBA1B",
    "Acetyl-a-Tubulin-Lys40": "TUBA1B",
    "ACVRL1": "ACVRL1",
    "ADAR1": "ADAR",
    "Akt": "AKT1",
    "Akt_pS473": "AKT1",
    "Akt_pT308": "AKT1",
    "alpha-Catenin": "CTNNA1",
    "AMPK_alpha": "PRKAA1",
    "AMPK_pT172": "PRKAA1",
    "ANLN": "ANLN",
    "Annexin-1": "ANXA1",
    "Annexin_1": "ANXA1",
    "Annexin_I": "ANXA1",
    "Annexin_VII": "ANXA7",
    "AR": "AR",
    "ARHI": "DIRAS3",
    "ARID1A": "ARID1A",
    "ASNS": "ASNS",
    "ATM": "ATM",
    "Axl": "AXL",
    "B-Raf": "BRAF",
    "B220 (CD45R)": "PTPRC",
    "B7-H1 (PD-L1)": "CD274",
    "Bad_pS112": "BAD",
    "bad_struct": "control",
    "Bak": "BAK1",
    "Bap1-c-4": "BAP1",
    "Bap1c-4": "BAP1",
    "Bax": "BAX",
    "Bcl-2": "BCL2",
    "Bcl-xL": "BCL2L1",
    "Beclin": "BECN1",
    "beta-Catenin": "CTNNB1",
    "Bid": "BID",
    "Bim": "BCL2L11",
    "Blank": "control",
    "BRCA2": "BRCA2",
    "BRD4": "BRD4",
    "c-Jun_pS73": "JUN",
    "c-Kit": "KIT",
    "C-kit (CD117)": "KIT",
    "c-Met": "MET",
    "c-Met_pY1235": "MET",
    "c-Myc": "MYC",
    "C-Raf": "RAF1",
    "C-Raf_pS338": "RAF1",
    "CA9": "CA9",
    "Caspase-3": "CASP3",
    "Caspase-7_cleavedD198": "CASP7",
    "Caspase-8": "CASP8",
    "Caspase-9": "CASP9",
    "Caveolin-1": "CAV1",
    "CCR7": "CCR7",
    "CD101": "CD101",
    "CD103": "ITGAE",
    "CD105": "ENG",
    "CD107a": "LAMP1",
    "CD112": "NECTIN2",
    "CD115": "CSF1R",
    "CD119": "IFNGR1",
    "CD11a": "ITGAL",
    "CD11b": "ITGAM",
    "CD11c": "ITGAX",
    "CD122": "IL2RB",
    "CD123": "IL3RA",
    "CD124": "IL4R",
    "CD127": "IL7R",
    "CD127_TotalSeqB": "IL7R",
    "CD13": "ANPEP",
    "CD134": "TNFRSF4",
    "CD137": "TNFRSF9",
    "CD138": "SDC1",
    "CD14": "CD14",
    "CD141": "THBD",
    "CD142": "F3",
    "CD146": "MCAM",
    "CD14_TotalSeqB": "CD14",
    "CD15": "FUT4",
    "CD152": "CTLA4",
    "CD154": "CD40LG",
    "CD155": "PVR",
    "CD158": "KIR2DL1",
    "CD158b": "KIR2DL2",
    "CD158e1": "KIR3DL1",
    "CD158E1": "KIR3DL1",
    "CD15_TotalSeqB": "FUT4",
    "CD16": "FCGR3A",
    "CD161": "KLRB1",
    "CD162": "SELPLG",
    "CD163": "CD163",
    "CD169": "SIGLEC1",
    "CD16_TotalSeqB": "FCGR3A",
    "CD172a": "SIRPA",
    "CD18": "ITGB2",
    "CD185": "CXCR5",
    "CD19": "CD19",
    "CD192": "CCR2",
    "CD194": "CCR4",
    "CD195": "CCR5",
    "CD196": "CCR6",
    "CD197": "CCR7",
    "CD19_TotalSeqB": "CD19",
    "CD1a": "CD1A",
    "CD1c": "CD1C",
    "CD1d": "CD1D",
    "CD2": "CD2",
    "CD20": "MS4A1",
    "CD21": "CR2",
    "CD22": "CD22",
    "CD223": "LAG3",
    "CD223 (lag3)": "LAG3",
    "CD224": "GGT1",
    "CD226": "CD226",
    "CD23": "FCER2",
    "CD24": "CD24",
    "CD244": "CD244",
    "CD25": "IL2RA",
    "CD25_TotalSeqB": "IL2RA",
    "CD26": "DPP4",
    "CD26 (Adenosine)": "DPP4",
    "CD268": "TNFRSF13C",
    "CD27": "CD27",
    "CD270": "TNFRSF14",
    "CD272": "BTLA",
    "CD273": "PDCD1LG2",
    "CD274": "CD274",
    "CD278": "ICOS",
    "CD279": "PDCD1",
    "CD28": "CD28",
    "CD29": "ITGB1",
    "CD3": "CD3E",
    "CD303": "CLEC4C",
    "CD304": "NRP1",
    "CD31": "PECAM1",
    "CD314": "KLRK1",
    "CD319": "SLAMF7",
    "CD32": "FCGR2A",
    "CD328": "SIGLEC7",
    "CD33": "CD33",
    "CD335": "NCR1",
    "CD34": "CD34",
    "CD35": "CR1",
    "CD352": "SLAMF6",
    "CD357": "TNFRSF18",
    "CD36": "CD36",
    "CD366 (tim3)": "HAVCR2",
    "CD38": "CD38",
    "CD39": "ENTPD1",
    "CD3_TotalSeqB": "CD3E",
    "CD4": "CD4",
    "CD40": "CD40",
    "CD41": "ITGA2B",
    "CD42b": "GP1BA",
    "CD44": "CD44",
    "CD45": "PTPRC",
    "CD45_ACGAGTAG": "PTPRC",
    "CD45_TCTCGACT": "PTPRC",
    "CD45RA": "PTPRC:CD45RA",
    "CD45RA_TotalSeqB": "PTPRC:CD45RA",
    "CD45RO": "PTPRC:CD45RO",
    "CD45RO_TotalSeqB": "PTPRC:CD45RO",
    "CD47": "CD47",
    "CD48": "CD48",
    "CD49a": "ITGA1",
    "CD49b": "ITGA2",
    "CD49d": "ITGA4",
    "CD49f": "ITGA6",
    "CD4_CACGATTC": "CD4",
    "CD4_GTCCAGGC": "CD4",
    "CD4_TotalSeqB": "CD4",
    "CD5": "CD5",
    "CD52": "CD52",
    "CD54": "ICAM1",
    "CD56": "NCAM1",
    "CD56_TotalSeqB": "NCAM1",
    "CD57": "B3GAT1",
    "CD58": "CD58",
    "CD62L": "SELL",
    "CD62P": "SELP",
    "CD63": "CD63",
    "CD64": "FCGR1A",
    "CD66b": "CEACAM8",
    "CD68": "CD68",
    "CD69": "CD69",
    "CD7": "CD7",
    "CD71": "TFRC",
    "CD72": "CD72",
    "CD73": "NT5E",
    "CD77": "A4GALT",
    "CD79b": "CD79B",
    "CD8": "CD8A",
    "CD81": "CD81",
    "CD82": "CD82",
    "CD83": "CD83",
    "CD85j": "LILRB1",
    "CD86": "CD86",
    "CD88": "C5AR1",
    "CD8_CAATCCCT": "CD8A",
    "CD8_GTATCGAG": "CD8A",
    "CD8a": "CD8A",
    "CD8a_TotalSeqB": "CD8A",
    "CD9": "CD9",
    "CD93": "CD93",
    "CD94": "KLRD1",
    "CD95": "FAS",
    "CDK1": "CDK1",
    "CDK1_pY15": "CDK1",
    "Chk1": "CHEK1",
    "Chk1_pS345": "CHEK1",
    "Chk2": "CHEK2",
    "Chk2_pT68": "CHEK2",
    "Chromogranin-A-N-term": "CHGA",
    "cIAP": "BIRC2",
    "CK5": "KRT5",
    "Claudin-7": "CLDN7",
    "Collagen_VI": "COL6A1",
    "Complex-II_subunit30": "SDHB",
    "Control_Mouse_IgG2b": "control",
    "Control_Rat_IgG1": "control",
    "CTLA4": "CTLA4",
    "CX3CR1": "CX3CR1",
    "Cyclin_B1": "CCNB1",
    "Cyclin_D1": "CCND1",
    "Cyclin_E1": "CCNE1",
    "Cyclin_E2": "CCNE2",
    "Di-Ras3": "DIRAS3",
    "DIRAS3": "DIRAS3",
    "DJ-1": "PARK7",
    "Dvl3": "DVL3",
    "E-Cadherin": "CDH1",
    "E2F1": "E2F1",
    "eEF2": "EEF2",
    "eEF2K": "EEF2K",
    "EGFR": "EGFR",
    "EGFR_pY1068": "EGFR",
    "EGFR_pY1173": "EGFR",
    "eIF4E": "EIF4E",
    "eIF4G": "EIF4G1",
    "EpCAM (CD326)": "EPCAM",
    "ER-alpha": "ESR1",
    "ER-alpha_pS118": "ESR1",
    "ERCC1": "ERCC1",
    "ERK2": "MAPK1",
    "ETS-1": "ETS1",
    "EZH2": "EZH2",
    "FASN": "FASN",
    "FceRIa": "FCER1A",
    "Fibronectin": "FN1",
    "FoxM1": "FOXM1",
    "FOXO3a": "FOXO3",
    "FOXO3a_pS318_S321": "FOXO3",
    "FOXP3": "FOXP3",
    "G6PD": "G6PD",
    "GAB2": "GAB2",
    "Gab2": "GAB2",
    "GAPDH": "GAPDH",
    "GATA3": "GATA3",
    "GATA6": "GATA6",
    "GSK3-alpha-beta": "GSK3B",
    "GSK3-alpha-beta_pS21_S9": "GSK3B",
    "GSK3_pS9": "GSK3B",
    "GYG-Glycogenin1": "GYG1",
    "GYS": "GYS1",
    "GYS_pS641": "GYS1",
    "HER2": "ERBB2",
    "HER2_pY1248": "ERBB2",
    "HER3": "ERBB3",
    "HER3_pY1289": "ERBB3",
    "Heregulin": "NRG1",
    "HIF-1_alpha": "HIF1A",
    "HLA-A,B,C": "HLA-A",
    "HLA-A-B-C": "HLA-A",
    "HLA-DR": "HLA-DRA",
    "HLA-DRA": "HLA-DRA",
    "HLA-E": "HLA-E",
    "HSP70": "HSPA1A",
    "IgD": "IGHD",
    "IGFBP2": "IGFBP2",
    "IgG1": "control",
    "IgG1_control_TotalSeqB": "control",
    "IgG2a": "control",
    "IgG2a_control_TotalSeqB": "control",
    "IgG2b_control_TotalSeqB": "control",
    "IgM": "IGHM",
    "IL7Ralpha (CD127)": "IL7R",
    "INPP4B": "INPP4B",
    "integrinB7": "ITGB7",
    "IRS1": "IRS1",
    "JAB1": "COPS5",
    "JNK2": "MAPK9",
    "JNK_pT183_pT185": "MAPK8",
    "JNK_pT183_pY185": "MAPK8",
    "K-Ras": "KRAS",
    "KEAP1": "KEAP1",
    "KLRG1": "KLRG1",
    "Ku80": "XRCC5",
    "LAMP1": "LAMP1",
    "LBK1": "STK11",
    "Lck": "LCK",
    "LCN2a": "LCN2",
    "LDHA": "LDHA",
    "LDHB": "LDHB",
    "LKB1": "STK11",
    "LOX-1": "OLR1",
    "MACC1": "MACC1",
    "MAPK_pT202_Y204": "MAPK3",
    "MEK1": "MAP2K1",
    "MEK1_pS217_S221": "MAP2K1",
    "MHCII (HLA-DR)": "HLA-DRA",
    "MIG-6": "ERRFI1",
    "Mitochondria": None,
    "Mouse_IgG1": "control",
    "Mre11": "MRE11",
    "MSH2": "MSH2",
    "MSH6": "MSH6",
    "mTOR": "MTOR",
    "mTOR_pS2448": "MTOR",
    "MYH11": "MYH11",
    "Myosin-IIa": "MYH9",
    "Myosin-IIa-pS1943": "MYH9",
    "Myosin-IIa_pS1943": "MYH9",
    "Myosin-Iia_pS1943": "MYH9",
    "N-Cadherin": "CDH2",
    "N-Ras": "NRAS",
    "Napsin-A": "NAPSA",
    "NDRG1_pT346": "NDRG1",
    "NF-kB-p65_pS536": "RELA",
    "NF2": "NF2",
    "no_match": "control",
    "Notch1": "NOTCH1",
    "Nrf2": "NFE2L2",
    "Ox40 (CD134)": "TNFRSF4",
    "Oxphos-complex-V_subunitb": "ATP5PB",
    "P-Cadherin": "CDH3",
    "p16_INK4a": "CDKN2A",
    "p21": "CDKN1A",
    "p27": "CDKN1B",
    "p27_pT157": "CDKN1B",
    "p27_pT198": "CDKN1B",
    "p38": "MAPK14",
    "p38_MAPK": "MAPK14",
    "p38_pT180_Y182": "MAPK14",
    "p53": "TP53",
    "p62-LCK-ligand": "SQSTM1",
    "p63": "TP63",
    "p70S6K": "RPS6KB1",
    "p70S6K_pT389": "RPS6KB1",
    "p90RSK": "RPS6KA1",
    "p90RSK_pT359_S363": "RPS6KA1",
    "PAI-1": "SERPINE1",
    "PARP-Ab-3": "PARP1",
    "PARP1": "PARP1",
    "PARP_cleaved": "PARP1",
    "Paxillin": "PXN",
    "PCNA": "PCNA",
    "PD-1": "PDCD1",
    "PD-1 (CD279)": "PDCD1",
    "PD-1_TotalSeqB": "PDCD1",
    "PD-L1 (CD274)": "CD274",
    "PD1 (CD279)": "PDCD1",
    "PDCD1": "PDCD1",
    "PDCD4": "PDCD4",
    "PDK1": "PDPK1",
    "PDK1_pS241": "PDPK1",
    "Pea-15": "PEA15",
    "PEA15": "PEA15",
    "PEA15_pS116": "PEA15",
    "PECAM (CD31)": "PECAM1",
    "PI3K-p110-alpha": "PIK3CA",
    "PI3K-p85": "PIK3R1",
    "PKC-alpha": "PRKCA",
    "PKC-alpha_pS657": "PRKCA",
    "PKC-delta_pS664": "PRKCD",
    "PKC-pan_BetaII_pS660": "PRKCB",
    "PKM2": "PKM",
    "Podoplanin": "PDPN",
    "PR": "PGR",
    "PRAS40_pT246": "AKT1S1",
    "PRDX1": "PRDX1",
    "PREX1": "PREX1",
    "PTEN": "PTEN",
    "PYGB": "PYGB",
    "PYGB-AB2": "PYGB",
    "PYGL": "PYGL",
    "PYGM": "PYGM",
    "Rab11": "RAB11A",
    "Rab25": "RAB25",
    "Rad50": "RAD50",
    "Rad51": "RAD51",
    "Raptor": "RPTOR",
    "Rb": "RB1",
    "Rb_pS807_S811": "RB1",
    "RBM15": "RBM15",
    "RBM3": "RBM3",
    "Ret_pY905": "RET",
    "Rictor": "RICTOR",
    "Rictor_pT1135": "RICTOR",
    "S6": "RPS6",
    "S6_pS235_S236": "RPS6",
    "S6_pS240_S244": "RPS6",
    "SCD": "SCD",
    "SCD1": "SCD",
    "SETD2": "SETD2",
    "SF2": "SRSF1",
    "Shc_pY317": "SHC1",
    "Siglec-8": "SIGLEC8",
    "SLC1A5": "SLC1A5",
    "Smac": "DIABLO",
    "Smad1": "SMAD1",
    "Smad3": "SMAD3",
    "Smad4": "SMAD4",
    "Snail": "SNAI1",
    "Src": "SRC",
    "Src_pY416": "SRC",
    "Src_pY527": "SRC",
    "STAT3_pY705": "STAT3",
    "STAT5-alpha": "STAT5A",
    "Stathmin": "STMN1",
    "Syk": "SYK",
    "Synaptophysin": "SYP",
    "TAZ": "WWTR1",
    "TCR": "TRAC",
    "TCRb": "TRBC1",
    "TCRg": "TRGC1",
    "TCRVa7.2": "TRAV1-2",
    "TCRVd2": "TRDV2",
    "TFRC": "TFRC",
    "Thymidilate-Synthase": "TYMS",
    "TIGAR": "TIGAR",
    "TIGIT": "TIGIT",
    "TIGIT_TotalSeqB": "TIGIT",
    "total_reads": "control",
    "Transglutaminase": "TGM2",
    "TSC1": "TSC1",
    "TTF1": "NKX2-1",
    "Tuberin": "TSC2",
    "Tuberin_pT1462": "TSC2",
    "VEGFR2": "KDR",
    "VHL": "VHL",
    "XBP1": "XBP1",
    "XPB1": "XBP1",
    "XRCC1": "XRCC1",
    "YAP": "YAP1",
    "YAP_pS127": "YAP1",
    "YB-1": "YBX1",
    "YB-1_pS102": "YBX1",
}

# Entrez ids, independent of the symbol table, for the names the alias table used to get wrong.
ANCHORS = {
    "CD25": 3559,  # IL2RA, not ISG20 (3669)
    "CD16": 2214,  # FCGR3A, not FCGR3B (2215)
    "CD20": 931,  # MS4A1, not KRT20 (54474)
    "CD3": 916,  # CD3E, the chain UCHT1/OKT3/SK7 bind
    "CD32": 2212,  # FCGR2A, not FCGR2C (9103)
    "HLA-DR": 3122,  # HLA-DRA, shared with REAP-seq's HLA-DRA
    "p21": 1026,  # CDKN1A, not a histone pseudogene
    "p63": 8626,  # TP63, not CKAP4
    "TTF1": 7080,  # RPPA TTF1 is NKX2-1
    "TCR": 28755,  # TRAC, not TRBV20OR9-2
    "CD158b": 3803,  # KIR2DL2, not KIR2DS2
}


def _report(tok, path):
    import anndata as ad

    adata = ad.read_h5ad(path, backed="r")
    is_control = adata.var["is_control"].tolist() if "is_control" in adata.var.columns else None
    names = list(adata.var_names)
    adata.file.close()
    return names, tok.resolve(names, kind="protein", is_control=is_control)


def _expected_token(vocab, expected: str) -> int:
    gene, _, record = expected.partition(":")
    symbol = record or gene
    entrez = vocab.symbol_to_entrez.get(symbol)
    assert entrez is not None, f"{symbol} is not in the vocabulary's symbol table"
    return vocab.entrez_to_token[entrez]


@pytest.mark.parametrize("panel", ANTIBODY_PANELS)
def test_every_antibody_name_maps_to_its_gene(original_tokenizer, shared, panel):
    vocab = original_tokenizer.vocab
    names, report = _report(original_tokenizer, shared("data", panel))
    tokens = report.to_frame()["token_id"].tolist()  # duplicates keep their token here
    wrong = []
    for name, status, token in zip(names, report.status, tokens, strict=True):
        assert name in EXPECTED_GENE, f"{panel}: {name!r} has no expected gene in this test"
        expected = EXPECTED_GENE[name]
        if expected == "control":
            ok = status == "control"
        elif expected is None:
            ok = status == "unmapped"
        else:
            ok = status in ("mapped", "duplicate") and token == _expected_token(vocab, expected)
        if not ok:
            wrong.append(f"{name} ({status}, token {token}) should be {expected}")
    assert not wrong, f"{panel}: " + "; ".join(wrong)


def test_anchor_names_resolve_to_the_right_entrez(original_tokenizer):
    vocab = original_tokenizer.vocab
    names = list(ANCHORS)
    report = original_tokenizer.resolve(names, kind="protein")
    token_to_entrez = {token: entrez for entrez, token in vocab.entrez_to_token.items()}
    got = {name: token_to_entrez.get(int(t)) for name, t in zip(names, report.token_ids, strict=True)}
    assert got == ANCHORS
    assert set(report.routes) == {"antibody_table"}


def test_isoforms_keep_their_own_token_and_complexes_share_one(original_tokenizer):
    tok = original_tokenizer
    report = tok.resolve(["CD45", "CD45RA", "CD45RO", "B220 (CD45R)"], kind="protein")
    assert report.status == ["mapped", "mapped", "mapped", "duplicate"]  # B220 is a label part: CD45 kept
    assert len(set(report.to_frame()["token_id"][:3])) == 3
    ids = [tok.resolve([n], kind="protein").token_ids[0] for n in ("HLA-DR", "MHCII (HLA-DR)", "HLA-DRA")]
    assert ids[0] == ids[1] == ids[2] > 0


def test_whole_name_is_kept_over_a_label_part_whatever_the_order(original_tokenizer):
    report = original_tokenizer.resolve(["4E-BP1_pS65", "PD-1 (CD279)", "4E-BP1", "PD-1"], kind="protein")
    assert report.status == ["duplicate", "duplicate", "mapped", "mapped"]
    assert report.duplicates == [
        ("4E-BP1_pS65", "4E-BP1", report.token_ids[2]),
        ("PD-1 (CD279)", "PD-1", report.token_ids[3]),
    ]


@pytest.mark.parametrize("panel", GENE_NAMED_PANELS)
def test_gene_named_panel_keeps_gene_symbols(original_tokenizer, shared, panel):
    """A mass-spec panel (>= GENE_NAMED_PANEL_MIN proteins) is read as gene symbols: the antibody table
    does not re-map a symbol (the gene TTF1 stays TTF1; the RPPA antibody TTF1 is NKX2-1)."""
    vocab = original_tokenizer.vocab
    names, report = _report(original_tokenizer, shared("data", panel))
    tokens = report.to_frame()["token_id"].tolist()
    checked = 0
    for name, status, token in zip(names, report.status, tokens, strict=True):
        entrez = vocab.symbol_to_entrez.get(name)
        if entrez is None or entrez not in vocab.entrez_to_token:
            continue
        checked += 1
        assert status in ("mapped", "duplicate") and token == vocab.entrez_to_token[entrez], name
    assert checked > 0.9 * len(names)
    if "TTF1" in names:
        assert tokens[names.index("TTF1")] == vocab.entrez_to_token[7270]


def test_a_number_before_a_comma_is_no_panel_target(original_tokenizer):
    """``1,CD8A`` (a table's row: index, name) was read as a panel label whose first target, 1, is Entrez gene 1."""
    report = original_tokenizer.resolve(["1,CD8A", "HLA-A,B,C"], kind="protein")
    assert report.status == ["unmapped", "mapped"]
    assert report.token_ids[1] == original_tokenizer.resolve(["HLA-A"], kind="protein").token_ids[0]


def test_a_missing_value_is_no_protein(original_tokenizer):
    """R writes a missing name as NA, which the alias tables give to XK: a panel table's NA row predicted XK."""
    report = original_tokenizer.resolve(["NA", "nan", "CD4"], kind="protein")
    assert report.status == ["unmapped", "unmapped", "mapped"]

