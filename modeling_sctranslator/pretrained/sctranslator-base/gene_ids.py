"""Resolve gene and protein names, as datasets write them, to scTranslator token ids.

Genes (``kind="gene"``), tried in order:

1. user ``overrides`` (name -> ``"SYMBOL"``, ``"entrez:920"``, ``"token:752"``, ``"control"`` or ``None``);
2. Entrez ids written as digits (``"920"``);
3. Ensembl gene ids, version suffix ignored (``ENSMUSG00000023274.12`` through the mouse ortholog
   table; human ``ENSG...`` where the vocabulary has an Ensembl table, i.e. NCBI-built ones);
4. human symbols and aliases as written (route ``symbol``); an all-lower-case gene name that is an alias of one
   gene while its upper-case spelling names another is read as the latter (``magoh`` -> MAGOH, not the table's
   MAGOHB; route ``symbol_case``): a file with lower-cased names means the genes it lower-cased (protein labels
   keep the tables' aliases: ``gp39`` is CD40LG);
5. mouse symbols through the ortholog table (``Cd4`` -> ``CD4``; route ``mouse_symbol``), unless
   ``species="human"``; with ``species="auto"`` a list of genes whose names are mostly mouse symbols or ids (not
   a mix of species) is read as ``species="mouse"``, mouse symbols first: a mouse file's ``Alb`` is albumin, not
   the human alias Alb of FBF1 that step 4 finds;
6. human symbols ignoring case (``lag3`` -> ``LAG3``; route ``symbol_case``), unless ``species="mouse"``;
7. names added to the reserved slots (route ``added``).

A genome's name before a gene (``GRCh38_CD4``, ``mm10___Cd4``, ``HUMAN_CD4``) is read past; in a file of both species'
genomes (a barnyard or spike-in reference) only the human genome's genes are read (``species="mouse"``: the mouse's).
A symbol joined to its Ensembl id (``TSPAN6_ENSG00000000003.10``, ``ENSG00000000003|TSPAN6|8eab823``) is read by the id,
else the symbol; CEL-seq's ``A1BG__chr19`` past its chromosome; synonyms joined by ``;`` by the first that maps. A file
with names only mouse genomes have (``4930430F08Rik``, ``Gm15663``, in any case) is read as mouse. Reporters and
transgenes of custom references whose names the tables hold as human aliases (``RFP``, ``BFP``, ``CAR``, ``TK``:
:data:`TRANSGENE_NAMES`) are not genes (an override maps one).

Proteins (``kind="protein"``) add panel rules. Isotype/blank/technical rows are reported as
*controls* (never mapped). Antibody names go through the curated antigen -> gene table of
:mod:`antibody_targets` *before* the symbol/alias lookup (route ``antibody_table``): ``CD25`` is
IL2RA although the NCBI alias table also lists it for ISG20, ``CD16`` is FCGR3A, RPPA ``PDK1`` is
PDPK1. Then the gene rules above; then parts of a label:

* barcode, kit and catalogue-number suffixes (``_TotalSeqB``, ``CD3-A0034``, ``CD4-AHS0032``), labels such as
  ``ADT_``, ``anti-human`` (``anti-mouse/human``) and ``-protein``, BioLegend's and 10x's species prefix and clone
  (``Hu.CD4_RPA.T4``, ``Ms.CD8a``) are stripped; a missing name with such affixes (``nan_TotalSeqC``) stays missing;
* dots R's ``make.names`` put for hyphens are tried as hyphens (``HLA.DR``);
* the names of a compound label are tried surest first (an antigen of the table, a gene's own symbol, an alias; a
  ``CD<number>`` part first among equals; route ``panel``): ``"PD-1 (CD279)"``, ``CD274--B7-H1--PD-L1``, a CD
  antigen with another name or a clone after it (``CD127-IL7Ra``, ``CD4-RPA-T4``); BD AbSeq's
  ``CD45RA:HI100|PTPRC|AHS0009|pAbO`` antigen first, then its gene field (wrong for BD's HLA-DR: CD74);
* hyphens/underscores/spaces are dropped, and phospho-epitopes (``4E-BP1_pS65``) or cleaved forms map to the total
  protein's gene (routes ``phospho`` / ``modified_epitope``);
* last, taken only as an antigen of the table or a gene's own symbol: the name without a copy number (``CX3CR1.1``,
  ``HLA-DR-1``), and its longest leading part before a hyphen that the table knows (``Blimp-1-PRDI-BF1``).

A panel of at least :data:`GENE_NAMED_PANEL_MIN` proteins is mass-spectrometry-sized (antibody panels
have at most a few hundred antibodies) and named by gene symbol: there the gene rules come first, so
the gene ``TTF1`` stays TTF1 while the RPPA antibody ``TTF1`` means NKX2-1.

When two columns reach one token, the one whose whole name resolved (``CD45``, also ``CD45_TCTCGACT``:
a barcode suffix is not part of the name) is kept over one found from a part of its label
(``B220 (CD45R)``) or an epitope (``4E-BP1_pS65``); among equals, a gene column named as its token's own gene
(:meth:`GeneVocab.token_names`: ``RRM2`` over ``C2orf48``, which the original tables give RRM2's id), then the
gene name that sorts first (the choice must not depend on column order) and a panel's first protein column
are kept. The others are reported as duplicates.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .antibody_targets import ANTIBODY_TARGETS, NO_HUMAN_GENE, antibody_key
from .vocab import GeneVocab

__all__ = [
    "ABSEQ_LABEL_RE",
    "GENE_NAMED_PANEL_MIN",
    "HUMAN_ROUTES",
    "MOUSE_ROUTES",
    "MappingReport",
    "RowNumberNames",
    "copy_suffix_stems",
    "is_control_name",
    "is_missing_name",
    "is_species_mix",
    "numbered_names",
    "resolve_names",
    "species_counts",
]

# --------------------------------------------------------------------------- panel knowledge
GENE_NAMED_PANEL_MIN = 1000  # proteins in a panel from which its names are read as gene symbols

_TECHNICAL_CONTROLS = {
    "blank",
    "no_match",
    "nomatch",
    "bad_struct",
    "badstruct",
    "total_reads",
    "totalreads",
    "unmapped",
    "empty",
    "none",
}
# an antibody panel's control rows named by a bare word; CTRL (chymotrypsin-like) is also a gene, which only a
# mass spectrometry panel (named by gene symbol) measures
_CONTROL_WORDS = {"ctrl", "control", "neg", "negative", "negctrl", "negcontrol", "negative_control", "neg_ctrl"}
_ISOTYPE_RE = re.compile(
    r"^(?:(?:isotype|iso|control|ctrl|neg|negative)[ _.-]*)*"
    r"(?:(?:mouse|ms|rat|hamster|armenian[ _-]?hamster|human|goat|rabbit|rag)[ _.-]*)?"
    r"(?:(?:isotype|iso|control|ctrl)[ _.-]*)*"
    r"ig[gy]\d*[a-d]?"
    r"(?:[ _.,-]*(?:kappa|k|lambda|l|\u03ba|\u03bb|isotype|iso|ctrl|control|\d+))*$",
    re.IGNORECASE,
)
_IG_FC_RE = re.compile(r"^ig[gamde]\d*[ _.-]*fc$", re.IGNORECASE)
# cell hashing's sample labels: HTO1, HTO_2, hto-3 (names with "hashtag" are read as such too)
_HASHTAG_RE = re.compile(r"^HTO[ _.-]?\d+$", re.IGNORECASE)
# after the antigen: its barcode, the kit, or a catalogue number (TotalSeq-A/B/C A0034, BD AbSeq AHS0032 / AMM2008)
_BARCODE_SUFFIX_RE = re.compile(
    r"^(.+?)[_ .-]+(?:[ACGTN]{6,}|(?i:TotalSeq[-_ ]?[ABCD]?|ADT|CITE|pAbO)|[ABC]\d{4}|A(?:HS|MM)\d{4})$"
)
# BD AbSeq's feature names: antigen, its clone, the gene, the catalogue number (CD4:SK3|CD4|AHS0032|pAbO); Seurat
# writes the pipes as hyphens, R's make.names as dots (CD4.SK3.CD4.AHS0032.pAbO)
ABSEQ_LABEL_RE = re.compile(r"^(.+?)[|.-]A(?:HS|MM)\d{4}(?:[|.-]pAbO)?$", re.IGNORECASE)
# a CD antigen and what a lab wrote after it: the gene or another name (CD127-IL7Ra, CD197-CCR7, CD56_NCAM), a clone
# (CD4-RPA-T4, CD3-UCHT1); not a copy number (CD4-1), which copy_suffix_stems reads
_CD_LED_RE = re.compile(r"^(CD\d+[A-Za-z]{0,2}\d*)[-_ .]+(?!\d{1,2}$)(\S.*)$", re.IGNORECASE)
# what after an antigen's name makes it another molecule or no antibody's target: a chain (CD3 zeta is CD247, CD8 beta
# CD8B), the ligand or receptor (CD40-L is CD40LG, CD200-R CD200R1), an antisense or divergent gene (CD101-AS1,
# CD44-DT), a pseudogene (CD24P4), a phospho-site (CD3-zeta-pY142), a staining reagent (CD1d-tetramer binds a TCR)
_QUALIFIER_RE = re.compile(r"^(?:(?:alpha|beta|gamma|delta|epsilon|zeta|eta|ligand|receptor|chain|as\d*|dt|p\d+"
                           r"|(?:tetra|dextra|penta|multi)mer)(?:[-_ .].*)?|[a-z]|[α-ω]|r\d?|.*\bp[STY]\d+.*)$",
                           re.IGNORECASE)
# a V segment after TCR (TCR_Vg2, TCR_VB_13_1): the receptor's variable gene, not a clone of TCR alpha/beta
_V_SEGMENT_RE = re.compile(r"^V[A-Za-z]{0,5}[_ .-]?\d")
# a copy number that made a name unique (R's make.unique: CX3CR1.1 beside the gene CX3CR1 in one matrix; HLA-DR-1)
_UNIQUE_NUMBER_RE = re.compile(r"^(.*[A-Za-z].*?)[-_.]\d{1,2}$")
# what labs put around an antigen's name to say it is the antibody's: ADT_CD4, adt-CD4, anti-human CD4, CD4-protein
_SPECIES_WORD = r"(?:human|mouse|rat|hu|ms)"
_LABEL_PREFIX_RE = re.compile(r"^(?:(?:adt|cite|ab|antibody|prot|protein)[-_ .:]+"
                              rf"|anti[-_ ]?(?:{_SPECIES_WORD}(?:[-_/]{_SPECIES_WORD})*)?[-_ ]+"
                              r"|(?:human|mouse)[-_ ]+)(?=\S)", re.IGNORECASE)
# R's make.names writes "B220 (CD45R)" as B220..CD45R. and "PD-1 (CD279)" as PD.1..CD279.
_R_PARENS_RE = re.compile(r"^(.+?)\.\.(.+?)\.$")
# what follows an antigen's name after an underscore: a clone (UCHT1, RPA-T4, 581, 10.1, M1/70, SK7_PE), a barcode,
# or a fluorochrome (CD4_PE); a word (TCR_beta, Cell_Hashing) is none
_CLONE_RE = re.compile(r"^(?:(?=.*\d)[A-Za-z0-9.\-/_]+|[ACGTN]{6,})$")
_FLUOROCHROME_RE = re.compile(r"^(?:cy\d|bv\d{3}|buv\d{3}|bb\d{3}|af\d{3}|alexa(?:fluor)?[-_ ]?\d+|pe(?:[-_]cy\d)?"
                              r"|fitc|apc(?:[-_]cy\d)?|percp(?:[-_]cy\d\.?\d?)?)$", re.IGNORECASE)
# a species letter before a CD antigen: mCD4, hCD8a (MCD4 is also an alias of PIGN)
_SPECIES_LETTER_CD_RE = re.compile(r"^[mh](CD\d+[A-Za-z]?\d*)$")
# BioLegend's TotalSeq feature names: a species prefix and the clone after the antigen (Hu.CD4_RPA.T4, Hu.HLA.DR_L243,
# Mu.CD8a_53.6.7; 10x's mouse cocktail writes Ms.CD4); its cross-reactive antibodies name every species they bind
# (HuMs.CD44_IM7, HuMsRt.CD278_C398.4A, MsRt.CD29)
_SPECIES_CLONE_RE = re.compile(r"^(?:hu|hs|mu|mm|ms)(?:ms|rt|cf|mu|hu)*\.([A-Za-z].*?)(?:_[^_\s]+)?$",
                               re.IGNORECASE)
_SPECIES_PREFIX_RE = re.compile(r"^(?:hu|hs|mu|mm|ms)(?:ms|rt|cf|mu|hu)*\.(?=[A-Za-z])", re.IGNORECASE)
_NON_DECIMAL_DOT_RE = re.compile(r"(?<!\d)\.|\.(?!\d)")
_LABEL_SUFFIX_RE = re.compile(r"(?<=\S)[-_ .:]+(?:protein|prot|antibody|ab)$", re.IGNORECASE)
_PAREN_RE = re.compile(r"^\s*(.*?)\s*\(\s*(.+?)\s*\)\s*$")
_PHOSPHO_RE = re.compile(r"^(.+?)[_ -](?:p[STY]\d+(?:[_/]p?[STY]?\d+)*)$")
_MODIFIED_RE = re.compile(r"^(.+?)[_ ](?:cleaved\w*|acetyl\w*|ac[K]\d+|me\d?[KR]\d+)$", re.IGNORECASE)
_CD_RE = re.compile(r"^CD\d+[A-Za-z]?\d*$", re.IGNORECASE)
_ENSEMBL_RE = re.compile(r"^(ENS[A-Z]*G\d{6,})(?:\.\d+)?$", re.IGNORECASE)
# a gene's symbol and its Ensembl id in one name, either way round (GEO tables' TSPAN6_ENSG00000000003.10, scPerturb's
# TBCE_ENSG00000284770 where a symbol repeats, ENSG00000243485_MIR1302-2HG, ENSG...:MAU2, MAU2 (ENSG...); 10x Flex
# probe and targeted-panel bait ids ENSG00000000003|TSPAN6|8eab823, whose last field read as an Entrez id was a
# random gene): the id names the gene surely, the symbol where the vocabulary lacks the id
_ID_FIRST_RE = re.compile(r"^(ENS[A-Z]*G\d{6,}(?:\.\d+)?)(?:_PAR_Y)?[_|:.-]([A-Za-z][^|]*)(?:\|.*)?$",
                          re.IGNORECASE)
_ID_LAST_RE = re.compile(r"^([^|]+?)[\s_|:(-]+(ENS[A-Z]*G\d{6,}(?:\.\d+)?)\)?$", re.IGNORECASE)
# CEL-seq pipelines' SYMBOL__chrN (Grun et al., Muraro et al. pancreas)
_CHROMOSOME_SUFFIX_RE = re.compile(r"^(.+?)__chr(?:\d{1,2}|[XYM]|MT|Un\S*|\S+_random)$", re.IGNORECASE)
# the genome a multi-genome reference puts before each gene (Cell Ranger's barnyard and combined references:
# GRCh38_CD4, hg19_CD4, mm10___Cd4, GRCh38-CD4; the CITE-seq CBMC set of GSE100866: HUMAN_CD4, MOUSE_Cd4): no gene's
# name starts so
_GENOME_PREFIX_RE = re.compile(r"^(GRCh3[78]|hg19|hg38|GRCm3[89]|mm10|mm39|human|mouse)(?:_+|-+)(.+)$",
                               re.IGNORECASE)
_MOUSE_GENOMES = ("grcm38", "grcm39", "mm10", "mm39", "mouse")
# reporters and transgenes that custom references add beside the genes, whose names the original tables hold as
# aliases of human genes (BFP: RNF112, RFP: TRIM27, TK: TKT, CAR: CXADRP1, ERT2: MAPK3, GAL4: LGALS4, tdT: DNTT). A
# reference names genes by approved symbol, so in an RNA file these are the construct (a CAR-T product's CAR, a
# reporter line's RFP), whose counts would land on the gene; protein panels keep them (a TdT antibody binds DNTT)
TRANSGENE_NAMES = frozenset({"BFP", "RFP", "TK", "CAR", "ERT2", "GAL4", "TDT"})
# a copy number that made a repeated name unique (anndata's var_names_make_unique: CD4, CD4-1; R's make.unique:
# CD4.1): never part of an antigen's name, though squeezed it reads as another one (CD4-1 -> CD41, ITGA2B)
_COPY_SUFFIX_RE = re.compile(r"^(.+?)[-_.](\d{1,2})$")
_CD_COPY_RE = re.compile(r"^(CD\d+[A-Za-z]*)[-_.]\d{1,2}$", re.IGNORECASE)
# how a missing name (NaN, None, pandas' NA) reads once turned into text; the NCBI alias "NaN" (SCN11A) is
# given up for it: a gene column with missing entries must not turn them into one real gene
_MISSING_NAME_TEXTS = {"", "nan", "<na>", "none"}
# how tables write a missing value in a protein list (R's NA): no protein's name, though "NA" is an alias of XK
_MISSING_PROTEIN_TEXTS = {"na", "n/a", "null"}


def is_missing_name(value: Any, protein: bool = False) -> bool:
    """True for a missing name: None, a float NaN, or text that only a missing value turns into (for a
    ``protein`` name, also R's NA)."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    text = str(value).strip().lower()
    return text in _MISSING_NAME_TEXTS or (protein and text in _MISSING_PROTEIN_TEXTS)


def copy_suffix_stems(names: Sequence[str]) -> dict[int, str]:
    """Protein columns named as a copy of another name -- ``CD4-1`` (or ``CD4_1``, ``CD4.1``) beside ``CD4`` in the
    same panel, or a ``CD<n>`` name with such a suffix on its own -- mapped to the name they copy (by index)."""
    present = set(names)
    stems: dict[int, str] = {}
    for i, name in enumerate(names):
        m = _COPY_SUFFIX_RE.match(name.strip())
        if m and antibody_key(name) in ANTIBODY_TARGETS and not _CD_COPY_RE.match(name.strip()):
            continue  # Hao's TCR-1 (TCR gamma/delta) beside a TCR is a name of its own (CD4-1 squeezed is CD41's key)
        if m and (m.group(1) in present or _CD_COPY_RE.match(name.strip())):
            stems[i] = m.group(1)
    return stems


def _without_species_clone(text: str) -> str:
    """The antigen of a BioLegend TotalSeq feature name (``Hu.CD4_RPA.T4`` -> ``CD4``); other names as they are."""
    match = _SPECIES_CLONE_RE.match(text)
    return match.group(1) if match else text


def is_control_name(name: str, gene_named: bool = False) -> str | None:
    """The reason ``name`` is a control row (isotype, blank, technical, a sample hashtag) or ``None``.
    ``gene_named``: a panel named by gene symbol, whose ``CTRL`` is the protein of that name."""
    stripped = name.strip()
    base = _BARCODE_SUFFIX_RE.match(stripped)
    core = base.group(1) if base else stripped
    if not core.lower().startswith("anti"):  # AB_Mouse_IgG1_K_Iso is a control, anti-human IgG stains B cells' IgG
        core = _LABEL_PREFIX_RE.sub("", core)
    core = _without_species_clone(core)  # Hu.Mouse.IgG1_MOPC.21
    if core.lower() in _TECHNICAL_CONTROLS or stripped.lower() in _TECHNICAL_CONTROLS:
        return "technical/blank row"
    numbered = _COPY_SUFFIX_RE.match(core)  # CTRL-1, NEG_2: numbered control rows
    spellings = {core.lower(), stripped.lower(), numbered.group(1).lower() if numbered else ""}
    if not gene_named and spellings & _CONTROL_WORDS:
        return "control row"
    if _IG_FC_RE.match(core):
        return None  # anti-IgG Fc binds B cells' own IgG: an antigen, though its name starts as an isotype's
    if _ISOTYPE_RE.match(core) or _ISOTYPE_RE.match(stripped) or _ISOTYPE_RE.match(core.split("_")[0]):
        return "isotype control"  # the last: with its clone (IgG1_MOPC-21)
    lowered = core.lower()
    if "isotype" in lowered or lowered.startswith(("control_", "control ", "ctrl_")):
        return "isotype control"
    if "hashtag" in stripped.lower() or _HASHTAG_RE.match(stripped):
        # a sample's label (TotalSeq-A/B/C hashtags bind CD298 and B2M on every cell): CD298_B2M_hashtag was ATP1B3
        return "sample hashtag (cell multiplexing)"
    return None


# gene symbols a spreadsheet turned into dates (MARCH1 -> 1-Mar, SEPT9 -> 9-Sep, also Mar-01 / 01-Mar)
_SPREADSHEET_DATE_RE = re.compile(r"^(?:\d{1,2}-(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|"
                                  r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)-\d{1,2})$", re.IGNORECASE)


# --------------------------------------------------------------------------- report
def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every caller of a cached report: an edit in place would change it
    return array


@dataclass
class MappingReport:
    """How each input column was mapped. ``token_ids[i]`` is 0 for unmapped/control/duplicate columns.

    ``status`` per column: ``mapped`` (used), ``duplicate`` (maps to a token an earlier column already
    took: dropped, listed in :attr:`duplicates`), ``control`` or ``unmapped``. Every column is in
    exactly one status, so mapped + duplicates + controls + unmapped == all columns.

    A report is not changed after it is built (the tokenizer's cache hands the same one to every call with these
    names: a training run encodes each corpus's gene list once per batch), so what is derived from the columns is
    computed once; the arrays it hands out are read-only.
    """

    kind: str
    names: list[str]
    token_ids: np.ndarray
    routes: list[str]
    status: list[str]
    matched: list[str] = field(default_factory=list)

    @property
    def n_total(self) -> int:
        return len(self.names)

    @cached_property
    def columns(self) -> np.ndarray:
        """Indices of the columns used in the encoding, in data order."""
        return _read_only(np.flatnonzero(np.asarray(self.status) == "mapped"))

    @cached_property
    def kept_token_ids(self) -> np.ndarray:
        return _read_only(self.token_ids[self.columns])

    def read_columns(self, learnt_genes: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The mapped columns a model reads, in data order: all of them, or, for a model that learnt a set of
        genes (``learnt_genes``, token ids), those of its genes. The encoding, the knockout, the attention window
        and the report's counts of a "set"-layout model all take that subset from here (an ordered layout is
        aligned by ``align_to_layout`` instead)."""
        columns = self.columns
        if learnt_genes is None:
            return columns
        return columns[np.isin(self.token_ids[columns], np.asarray(learnt_genes, dtype=np.int64))]

    @cached_property
    def mapped(self) -> list[str]:
        return [n for n, s in zip(self.names, self.status, strict=True) if s == "mapped"]

    @cached_property
    def unmapped(self) -> list[str]:
        return [n for n, s in zip(self.names, self.status, strict=True) if s == "unmapped"]

    @cached_property
    def spreadsheet_dates(self) -> list[str]:
        """Unmapped names that are dates a spreadsheet made of gene symbols (1-Mar, 9-Sep)."""
        return [name for name in self.unmapped if _SPREADSHEET_DATE_RE.match(name.strip())]

    @cached_property
    def controls(self) -> list[str]:
        return [n for n, s in zip(self.names, self.status, strict=True) if s == "control"]

    @cached_property
    def duplicates(self) -> list[tuple[str, str, int]]:
        """``(dropped column name, name of the first column with that token, token id)``."""
        first: dict[int, str] = {}
        out = []
        for name, status, token in zip(self.names, self.status, self.token_ids.tolist(), strict=True):
            if status == "mapped":
                first.setdefault(token, name)
        for i, (name, status) in enumerate(zip(self.names, self.status, strict=True)):
            if status == "duplicate":
                token = int(self._dup_tokens[i])
                out.append((name, first.get(token, "?"), token))
        return out

    @property
    def n_duplicates(self) -> int:
        return self._n_duplicates

    @cached_property
    def route_counts(self) -> dict[str, int]:
        """Mapped columns per route (duplicates not counted)."""
        return dict(Counter(r for r, s in zip(self.routes, self.status, strict=True) if s == "mapped"))

    @cached_property
    def n_mapped(self) -> int:
        return sum(s == "mapped" for s in self.status)

    @cached_property
    def n_non_control(self) -> int:
        """Columns that are not controls: the genes or proteins the input names."""
        return sum(s != "control" for s in self.status)

    @cached_property
    def mapped_fraction(self) -> float:
        """Columns that got a token (used or duplicate) over columns that are not controls."""
        got = sum(s in ("mapped", "duplicate") for s in self.status)
        return got / self.n_non_control if self.n_non_control else 0.0

    def __post_init__(self) -> None:
        self.token_ids = np.asarray(self.token_ids, dtype=np.int64)
        # duplicates keep their token for the report; token_ids shows 0 for them
        self._dup_tokens = self.token_ids.copy()
        self._n_duplicates = sum(s == "duplicate" for s in self.status)
        self.token_ids = np.where(np.asarray(self.status) == "mapped", self.token_ids, 0).astype(np.int64)
        if not self.matched:
            self.matched = [""] * len(self.names)

    def summary(self, max_names: int = 10) -> str:
        counts = Counter(self.status)
        routes = ", ".join(f"{k}={v}" for k, v in sorted(self.route_counts.items()))
        lines = [
            f"{self.kind}s: {self.n_total} columns, {counts.get('mapped', 0)} mapped ({routes or 'none'}), "
            f"{counts.get('duplicate', 0)} duplicates dropped, {counts.get('control', 0)} controls, "
            f"{counts.get('unmapped', 0)} unmapped ({self.mapped_fraction:.1%} of non-control columns mapped)"
        ]

        def listing(items: Sequence[Any]) -> str:
            shown = ", ".join(map(str, items[:max_names]))
            return shown + (f", ... (+{len(items) - max_names})" if len(items) > max_names else "")

        if self.unmapped:
            lines.append(f"  unmapped: {listing(self.unmapped)}")
        if self.controls:
            lines.append(f"  controls: {listing(self.controls)}")
        if self.duplicates:
            lines.append(
                f"  duplicates: {listing([f'{a} (same token {t} as {b})' for a, b, t in self.duplicates])}"
            )
        return "\n".join(lines)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "name": self.names,
                "status": self.status,
                "route": self.routes,
                "matched": self.matched,
                "token_id": np.where(
                    np.asarray(self.status) == "duplicate", self._dup_tokens, self.token_ids
                ),
            }
        )

    def __repr__(self) -> str:
        return f"MappingReport({self.summary(max_names=3)})"


# --------------------------------------------------------------------------- resolution
class _Resolver:
    def __init__(self, vocab: GeneVocab, species: str) -> None:
        if species not in ("auto", "human", "mouse"):
            raise ValueError(f"species must be 'auto', 'human' or 'mouse', not {species!r}")
        self.vocab = vocab
        self.species = species

    def _symbol(self, symbol: str) -> int | None:
        vocab = self.vocab
        entrez = vocab.symbol_to_entrez.get(symbol)
        if entrez is None:
            entrez = vocab.symbol_upper.get(symbol.upper())
        if entrez is not None:
            token = vocab.entrez_to_token.get(entrez)
            if token is not None:
                return token
        return vocab.added.get(symbol, vocab.added_upper.get(symbol.upper()))

    def gene(self, name: str, protein: bool = False, chosen: bool = False) -> tuple[int, str] | None:
        """(token id, route) for a gene name, or None. ``protein``: a protein label, whose lower-case aliases
        ('gp39' = CD40LG, the antibody target) are kept as the tables give them. ``chosen``: a name a user chose
        (an override's target), not a data column's, so a reporter's name (:data:`TRANSGENE_NAMES`) is a gene's."""
        vocab = self.vocab
        s = name.strip()
        if not s:
            return None
        if s in vocab.added:
            return vocab.added[s], "added"
        if not protein and not chosen and s.upper() in TRANSGENE_NAMES:
            return None
        genome = _GENOME_PREFIX_RE.match(s)
        if genome:  # the gene after its genome's name, read as its own route says (a human or a mouse one); with
            if self.species not in ("auto", _genome_species(genome.group(1))):  # a species given, only its genome's
                return None
            return self.gene(genome.group(2), protein)
        id_first, id_last = _ID_FIRST_RE.match(s), _ID_LAST_RE.match(s)
        if (id_first or id_last) and not _ENSEMBL_RE.match(s):  # ENSG00000230699.2 is an id and its version
            ensembl, symbol = id_first.groups() if id_first else id_last.groups()[::-1]
            return self.gene(ensembl, protein) or self.gene(symbol, protein)
        chromosome = _CHROMOSOME_SUFFIX_RE.match(s)
        if chromosome:
            return self.gene(chromosome.group(1), protein)
        if "|" in s:  # TCGA's 'SYMBOL|ENTREZ' ('?|ENTREZ' where the symbol was unknown): the id is unambiguous
            symbol, _, entrez = s.rpartition("|")
            if entrez.isascii() and entrez.isdecimal():  # an id without a token: not its (older) symbol's pick
                token = vocab.entrez_to_token.get(int(entrez))
                return (token, "entrez") if token is not None else None
            s = symbol.strip()
            if not s or s == "?":
                return None
        if s.isdigit():
            token = vocab.entrez_to_token.get(int(s))
            return (token, "entrez") if token is not None else None
        m = _ENSEMBL_RE.match(s)
        if m:
            base = m.group(1).upper()
            if base.startswith("ENSMUSG"):
                human = vocab.mouse_ensembl_to_human.get(base)
                token = self._symbol(human) if human else None
                return (token, "mouse_ensembl") if token is not None else None
            entrez = vocab.ensembl_to_entrez.get(base)
            token = vocab.entrez_to_token.get(entrez) if entrez is not None else None
            return (token, "ensembl") if token is not None else None
        if self.species != "mouse":
            entrez = vocab.symbol_to_entrez.get(s)
            if entrez is not None and entrez in vocab.entrez_to_token:
                # the tables hold lower-case aliases of other genes ('magoh' -> MAGOHB, 'emb' -> XPO1): an
                # all-lower-case name whose upper-case spelling is an entry of its own is that gene in lower case
                # (a file whose names were lower-cased). Mixed case stays exact: 'C17orf1' is not 'C17ORF1'.
                upper = (vocab.symbol_to_entrez.get(s.upper()) if not protein and s == s.lower() != s.upper()
                         else None)
                if upper is not None and upper != entrez and upper in vocab.entrez_to_token:
                    return vocab.entrez_to_token[upper], "symbol_case"
                return vocab.entrez_to_token[entrez], "symbol"
        if self.species != "human":
            human = vocab.mouse_symbol_to_human.get(s)
            if human is None and self.species == "mouse":
                human = vocab.mouse_symbol_upper.get(s.upper())
            if human:
                token = self._symbol(human)
                if token is not None:
                    return token, "mouse_symbol"
        # human symbols in another case; for mouse data, genes absent from the ortholog table
        entrez = vocab.symbol_upper.get(s.upper())
        if entrez is not None and entrez in vocab.entrez_to_token:
            return vocab.entrez_to_token[entrez], "symbol_case"
        token = vocab.added_upper.get(s.upper())
        if token is not None:
            return token, "added"
        return None

    def _panel_candidates(self, name: str) -> list[tuple[str, str, bool]]:
        """Strings to try for an antibody name: (text, route it is reported under, whether it is the
        whole name less a barcode suffix, rather than a part of a compound label or an epitope)."""
        out: list[tuple[str, str, bool]] = []
        seen: set[str] = set()

        def push(text: str, route: str) -> None:
            text = text.strip()
            if text and text not in seen:
                seen.add(text)
                out.append((text, route, text == core))

        s = name.strip()
        m = _BARCODE_SUFFIX_RE.match(s)
        core = m.group(1) if m else s
        core = _LABEL_SUFFIX_RE.sub("", _LABEL_PREFIX_RE.sub("", core)) or core
        uncut = _SPECIES_PREFIX_RE.sub("", core)  # Ms.F4_80 and Ms.I.A_I.E have no clone after the underscore
        core = _without_species_clone(core)
        core = _R_PARENS_RE.sub(r"\1 (\2)", core)
        parts = [core]
        abseq = ABSEQ_LABEL_RE.match(core)
        compound = None if abseq else _compound_parts(core)
        if abseq or compound:  # the whole name first (CD40-L is CD40LG's, CD101.AS1 a gene), then its parts
            push(core, "panel")
            if "." in core:
                push(_NON_DECIMAL_DOT_RE.sub("-", core), "panel")
        if abseq:  # BD's antigen first, its gene field after (HLA-DR|CD74|AHS0035|pAbO binds HLA-DR, not the CD74
            parts = self._abseq_parts(abseq.group(1))  # its gene field names)
        elif compound:
            # the part that names its protein most surely: an antigen of the antibody table, then a gene's own
            # symbol, then an alias; among equals a CD name (B220 (CD45R)), then the parts in the order written.
            # "CD45RO (UCHL1)" names clone UCHL1, also a gene's symbol; "p62 (SQSTM1)" an alias, then its gene
            # (in brackets the CD name inside first: B220 (CD45R); else as written: CD11a-CD18 is CD11a's, LFA-1)
            cd_parts = [x for x in (compound[::-1] if _PAREN_RE.match(core) else compound) if _CD_RE.match(x)]
            parts = sorted(cd_parts + [x for x in compound if x not in cd_parts], key=self._naming_strength,
                           reverse=True)
        for part in parts:
            push(part, "panel")
            if "." in part:  # R's make.names writes HLA-DR as HLA.DR and PD-1 as PD.1 (Seurat exports); a dot
                push(_NON_DECIMAL_DOT_RE.sub("-", part), "panel")  # between digits is the antigen's (Va7.2), or
                push(part.replace(".", "-"), "panel")  # a gene's (ERVFC1.1 is ERVFC1-1)
            if any(mark in part for mark in ",/;"):  # "HLA-A,B,C": the first listed target; a mass-spec protein
                first = re.split(r"[,/;]", part)[0]  # group "GAPDH;GAPDHS": its leading member
                if not first.strip().isdigit():  # "1,CD8A" is a table's row (index, name), not Entrez gene 1
                    push(first, "panel")
        if uncut != core:
            push(uncut, "panel")
            push(_NON_DECIMAL_DOT_RE.sub("-", uncut), "panel")
        for part in list(parts):
            ph = _PHOSPHO_RE.match(part)
            if ph:
                push(ph.group(1), "phospho")
            mo = _MODIFIED_RE.match(part)
            if mo:
                push(mo.group(1), "modified_epitope")
        pieces = core.split("_")
        for cut in range(len(pieces) - 1, 0, -1):  # the longest antigen first: TCR_Va7.2_3C10 is TCR Va7.2
            antigen, clone = "_".join(pieces[:cut]), "_".join(pieces[cut:])
            if antigen.upper().startswith("TCR") and _V_SEGMENT_RE.match(clone):
                continue  # TCR_Vb8 is a V segment's antibody: unmapped (warned), not TCR alpha/beta
            if (_CLONE_RE.match(clone) or _FLUOROCHROME_RE.match(clone)) and not _FLUOROCHROME_RE.match(antigen):
                # antigen and clone without BioLegend's prefix (CD3_UCHT1, HLA.DR_L243): tried last, and taken only as
                # an antigen the table knows or a gene's own symbol (Ki_67: Ki is an alias; APC_Cy7: a fluorochrome)
                push(antigen, "clone")
                if "." in antigen:
                    push(_NON_DECIMAL_DOT_RE.sub("-", antigen), "clone")
        numbered = _UNIQUE_NUMBER_RE.match(core)
        if numbered and not _is_family_name(numbered.group(1)):  # the last resorts, taken as an antigen of the table
            push(numbered.group(1), "numbered")  # or a gene's own symbol (TCR Va7.2 and NK-1.1 end in such a number,
        for cut in reversed([m.start() for m in re.finditer(r"-", core)]):  # tried whole above); then the longest
            leading, rest = core[:cut], core[cut + 1:]  # leading part before a hyphen that the table knows
            if self._antibody_target(leading) is not None and not _is_family_name(leading):  # (Blimp-1-PRDI-BF1)
                if not _QUALIFIER_RE.match(rest):
                    push(leading, "numbered")
                break
        return out

    def _abseq_parts(self, body: str) -> list[str]:
        """The names in a BD AbSeq label's antigen, clone and gene fields, antigen first: split at its pipes and the
        colon before the clone; where Seurat or R turned the pipes into hyphens or dots, the longest leading part
        that names an antigen of the table or a gene's own symbol (HLA-DR-CD74: HLA-DR)."""
        if "|" in body:
            antigen, gene = body.split("|", 1)
            return [antigen.split(":")[0], gene]
        if ":" in body:
            return [body.split(":")[0]]
        body = _NON_DECIMAL_DOT_RE.sub("-", body)  # R's dots: TCR.gamma.delta.B1.TRGC1 is TCR-gamma-delta's
        cuts = [m.start() for m in re.finditer(r"[-.]", body)]
        leading = [body[:cut] for cut in reversed(cuts) if not _is_family_name(body[:cut])]
        return [part for part in leading if self._naming_strength(part) > 0][:1] or [body]

    def is_own_name(self, token: int, text: str) -> bool:
        """``text`` is the token's own (approved) symbol, in any case, not an alias or another spelling of it."""
        return self.vocab.token_names().get(token, "").upper() == text.upper()

    def _naming_strength(self, text: str) -> int:
        """2: an antigen of the antibody table; 1: a gene's own (approved) symbol; 0: an alias, or nothing."""
        if self._antibody_target(text) is not None:
            return 2
        hit = self.gene(text, protein=True)
        return int(hit is not None and self.is_own_name(hit[0], text))

    def protein(self, name: str, gene_named: bool = False) -> tuple[int, str, str, bool] | None:
        """(token id, route, matched text, whole name resolved) for a protein name, or None.

        ``gene_named``: the panel names proteins by gene symbol (mass spectrometry), so the gene
        rules are tried before the antibody table.
        """
        if gene_named:
            hit = self.gene(name, protein=True)
            if hit is not None:
                return hit[0], hit[1], name, True
        if _no_human_gene(name) or is_missing_name(name, protein=True):
            return None
        target = self._antibody_target(name)
        if target is not None:
            return target[0], "antibody_table", target[1], True
        letter = _SPECIES_LETTER_CD_RE.match(name.strip())
        if letter:
            hit = self.protein(letter.group(1))
            if hit is not None:
                return hit[0], "panel", hit[2], True
        hit = self.gene(name, protein=True)
        if hit is not None:
            return hit[0], hit[1], name, True
        candidates = self._panel_candidates(name)
        if any(_no_human_gene(text) for text, _, _ in candidates):  # Sca-1 (Ly-6A/E), Mu.Ly.6G_1A8; a mouse CD170
            return None  # named Siglec-F (CD170_Siglec_F) is not human CD170 (SIGLEC5)
        for text, route, whole in candidates:
            if is_missing_name(text, protein=True):  # nan_TotalSeqC, NA_PROT: a missing name, not SCN11A or XK
                continue
            target = self._antibody_target(text)
            if target is not None:
                return target[0], "panel" if route in ("clone", "numbered") else route, target[1], whole
            hit = self.gene(text, protein=True)
            if route in ("clone", "numbered"):
                if hit is not None and self.is_own_name(hit[0], text):
                    return hit[0], "panel", text, whole
                continue
            if hit is None:
                squeezed = re.sub(r"[\s_\-]+", "", text)
                hit = self.gene(squeezed, protein=True) if squeezed != text else None
            if hit is not None:
                return hit[0], route, text, whole
        return None

    def _antibody_target(self, text: str) -> tuple[int, str] | None:
        """(token, gene symbol) from the curated antibody table; an isoform keeps its own record."""
        target = ANTIBODY_TARGETS.get(antibody_key(text))
        if target is None:
            return None
        token = self._symbol(target.name) if target.rule == "isoform" else None
        if token is None:
            token = self._symbol(target.gene)
        return (token, target.gene) if token is not None else None


def _is_family_name(text: str) -> bool:
    """A name too general to be read off a part of a label: TCR alone is TCR alpha/beta (TRAC), but TCR-Vb8 and
    TCR-3 name receptors the table does not know."""
    return antibody_key(text) in ("tcr",)


def _compound_parts(core: str) -> list[str] | None:
    """The names a compound label gives one antigen, in the order written, or None for a plain name:
    ``PD-1 (CD279)``, ``CD274--B7-H1--PD-L1`` and a CD antigen with another name or a clone after it
    (``CD127-IL7Ra``, ``CD4-RPA-T4``, ``CD11a.CD18``)."""
    p = _PAREN_RE.match(core)
    if p:
        return [p.group(1), p.group(2)]
    if "--" in core:
        parts = [x.strip() for x in core.split("--") if x.strip()]
        return parts if len(parts) > 1 else None
    m = _CD_LED_RE.match(core)
    if m is None or _QUALIFIER_RE.match(m.group(2).strip()):
        return None
    return [x.strip() for x in m.groups() if x.strip()]


def _no_human_gene(text: str) -> bool:
    """A mouse antigen no human gene encodes (:data:`~.antibody_targets.NO_HUMAN_GENE`), also as R writes it."""
    return any(antibody_key(t) in NO_HUMAN_GENE for t in (text, _NON_DECIMAL_DOT_RE.sub("-", text)))


def _override_target(vocab: GeneVocab, name: str, target: Any) -> tuple[int | None, str]:
    """Token id for an override value; (None, 'control') / (None, 'unmapped') for those markers."""
    if target is None:
        return None, "unmapped"
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (str, int, np.integer)):
        raise TypeError(
            f"override for {name!r} must be a symbol, 'entrez:<id>', 'token:<id>', 'control' or None"
        )
    if isinstance(target, (int, np.integer)):
        raise TypeError(
            f"override for {name!r} is a bare integer ({target}); write 'entrez:{target}' or "
            f"'token:{target}' "
            "to say which kind of id it is"
        )
    text = target.strip()
    low = text.lower()
    if low == "control":
        return None, "control"
    if low.startswith("token:"):
        token = int(text.split(":", 1)[1])
        if not 0 < token < vocab.vocab_size:
            raise ValueError(f"override for {name!r}: token id {token} outside 1..{vocab.vocab_size - 1}")
        return token, "override"
    if low.startswith("entrez:"):
        entrez = int(text.split(":", 1)[1])
        token = vocab.entrez_to_token.get(entrez)
        if token is None:
            raise ValueError(f"override for {name!r}: Entrez id {entrez} is not in the vocabulary")
        return token, "override"
    hit = _Resolver(vocab, "auto").gene(text, chosen=True)
    if hit is None:
        raise ValueError(f"override for {name!r}: {text!r} is not a known symbol/id of the vocabulary")
    return hit[0], "override"


HUMAN_ROUTES = frozenset({"symbol", "entrez", "ensembl"})
MOUSE_ROUTES = frozenset({"mouse_symbol", "mouse_ensembl"})


def species_counts(route_counts: Mapping[str, int]) -> tuple[int, int]:
    """(names mapped as human, as mouse) from a report's :attr:`MappingReport.route_counts`."""
    return (sum(n for r, n in route_counts.items() if r in HUMAN_ROUTES),
            sum(n for r, n in route_counts.items() if r in MOUSE_ROUTES))


def is_species_mix(human: int, mouse: int) -> bool:
    """Whether ``human`` and ``mouse`` names are both too many to be chance hits of one species' names in the
    other's tables (warned about as a mix; neither species is chosen for it)."""
    return min(human, mouse) >= max(10, 0.05 * (human + mouse))


SPECIES_SAMPLE = 2000  # names looked at to tell a mouse gene list
MOUSE_ONLY_SHARE = 0.01  # of those, named as only mouse genes are (a mouse reference has ~20 % such names)
_MOUSE_MODEL_NAMES = r"[0-9A-Z]{6,10}RIK\d?|GM\d{3,}"  # RIKEN clones and gene models (1700017N19Rik, Gm28040)
_MOUSE_ONLY_NAME_RE = re.compile(rf"^(?:{_MOUSE_MODEL_NAMES}|OLFR\d+(?:-PS\d*)?|VMN\d[RT]\d+)$", re.IGNORECASE)
# names a gene carries until it has a symbol: the mouse models above, GenBank accessions (AI182371, BC024139), human
# clone-based names (AC000061.1, RP11-34P13.7)
_PLACEHOLDER_NAME_RE = re.compile(rf"^(?:{_MOUSE_MODEL_NAMES}|[A-Z]{{2}}\d{{6}}(?:\.\d+)?|RP\d+-\w+\.\d+)$",
                                  re.IGNORECASE)


def _species_sample(names: Sequence[str]) -> Sequence[str]:
    """At most about :data:`SPECIES_SAMPLE` names, spread over the list, that the species rules look at."""
    return names[:: max(1, len(names) // SPECIES_SAMPLE)]


def _genome_species(prefix: str) -> str:
    """"human" or "mouse": the species of a genome's name in a multi-genome reference (GRCh38, mm10, MOUSE)."""
    return "mouse" if prefix.lower() in _MOUSE_GENOMES else "human"


def _barnyard_genomes(names: Sequence[str]) -> Counter:
    """How many gene names carry each species' genome prefix (GRCh38_CD4, mm10___Cd4, HUMAN_CD4, MOUSE_Cd4)."""
    return Counter(_genome_species(m.group(1)) for m in map(_GENOME_PREFIX_RE.match, _species_sample(names)) if m)


def _file_species(resolver: _Resolver, names: Sequence[str]) -> str:
    """"mouse" for gene names that are mostly mouse symbols or ids and not a mix of species, else "auto"."""
    sample = _species_sample(names)
    routes = Counter(result[1] for result in map(lambda name: _gene_result(resolver, name), sample)
                     if result[0] is not None)
    human, mouse = species_counts(routes)
    if mouse > human and not is_species_mix(human, mouse):
        return "mouse"
    # names only mouse genomes have (RIKEN clones, Gm models, olfactory and vomeronasal receptors) in any case: a mouse
    # file written in capitals (4930430F08RIK, GM15663) reads its other names as human symbols (TAC2 -> TAC1; mouse
    # Tac2 is TAC3's ortholog) unless read as mouse
    mouse_only = sum(bool(_MOUSE_ONLY_NAME_RE.match(str(name))) for name in sample)
    mouse_file = mouse_only >= MOUSE_ONLY_SHARE * len(sample) and not is_species_mix(human, mouse)
    return "mouse" if mouse_file else "auto"


class RowNumberNames(ValueError):
    """Feature names that are a matrix's row numbers, not names (see :func:`numbered_names`)."""


# Row numbers of a filtered matrix (a bare array's 0..n-1 names after dropping genes, in any order) against names that
# are Entrez ids. Row numbers start near 0, stop below the file's width (under 100,000), and, read as Entrez ids, hit
# unknown ids: 55-77 % of the numbers in 0..20,000-60,000 are no gene of the original tables (18-22 % below 10,000),
# against under 1 % of a real file's ids (TCGA's 20,531). A panel of old genes (CD2..CD52: 914..1,043) starts far
# from 0; a sparse one (a few hundred ids over 100,000) is all known genes.
_MAX_ROW_NUMBER = 100_000
_MIN_ROW_NUMBERS = 20
_MIN_ROW_DENSITY = 0.01
_MAX_KNOWN_SHARE = 0.95  # above it, numbers read as Entrez ids are genes: no row numbers
_SPARSE_KNOWN_SHARE = 0.6  # below it, numbers too sparse for the density rule are still row numbers


def numbered_names(names: Sequence[str], known_ids: Container[int] | None = None
                   ) -> tuple[int, int, float | None] | None:
    """(smallest, largest, share of known ids) when ``names`` are row numbers, else None: 0, 1, 2, ... or 1, 2, 3, ...
    in order (two or more; a matrix saved without its feature names; share None: not looked up), or -- given
    ``known_ids``, the Entrez ids of the vocabulary -- at least 20 distinct numbers below 100,000 in any order, the
    smallest near 0 (within 10 times the mean gap), under 95 % of them known ids, and either covering at least 1 % of
    0..largest or under 60 % known (such a matrix after some columns were dropped or reordered: filtered genes, a
    highly variable subset)."""
    text = [str(name).strip() for name in names]
    if len(text) < 2 or not all(t.isascii() and t.isdecimal() for t in text):
        return None
    numbers = [int(t) for t in text]
    first, last = numbers[0], numbers[-1]
    if first in (0, 1) and numbers == list(range(first, first + len(numbers))):
        return first, last, None
    distinct = sorted(set(numbers))
    smallest, largest, n = distinct[0], distinct[-1], len(numbers)
    if (known_ids is None or len(distinct) != n or n < _MIN_ROW_NUMBERS or largest >= _MAX_ROW_NUMBER
            or smallest > 10 * (largest + 1) / n):
        return None
    known = sum(number in known_ids for number in distinct) / n
    if known < _MAX_KNOWN_SHARE and (n >= _MIN_ROW_DENSITY * (largest + 1) or known < _SPARSE_KNOWN_SHARE):
        return smallest, largest, known
    return None


def resolve_names(
    vocab: GeneVocab,
    names: Sequence[Any],
    kind: str = "gene",
    species: str = "auto",
    overrides: Mapping[str, Any] | None = None,
    is_control: Sequence[bool] | None = None,
) -> MappingReport:
    """Map every name to a token id; a column that hits a token another column keeps is a duplicate.

    The column kept for a token is one whose whole name resolved; for genes one named as the token's own gene (as
    written, then in any case: a mouse file's Lcn8), in a mouse file one read through the ortholog table before one
    the case-insensitive fallback took, a named gene before a placeholder (Gm28040, AI182371), else the first name
    in sort order; for proteins the first column (see the module docstring). Names that are
    row numbers (1..n, 0..n-1, or those of a filtered matrix: :func:`numbered_names`) are refused
    (:class:`RowNumberNames`): as digits they would be read as Entrez ids (1 is A1BG).
    """
    if kind not in ("gene", "protein"):
        raise ValueError(f"kind must be 'gene' or 'protein', not {kind!r}")
    texts = [str(n) for n in names]
    numbered = numbered_names(texts, vocab.entrez_to_token)
    if numbered is not None:
        first, last, known = numbered
        if known is None:  # 0..n-1 or 1..n in order
            what = (f"are the numbers {first}..{last:,}, a matrix saved without its {kind} names (R's write.csv "
                    "without row names, a DataFrame or AnnData made from a bare array)")
        else:
            what = (f"are numbers from {first:,} to {last:,} with gaps, the row numbers of a matrix saved without its "
                    f"{kind} names after some {kind}s were dropped or reordered (a filter, a highly variable subset): "
                    f"read as Entrez ids only {known:.0%} of them are genes, against nearly all of a file named by "
                    "Entrez ids")
        raise RowNumberNames(
            f"the {len(names):,} {kind} names {what}; as digits they would be read as Entrez gene ids (1 is A1BG). "
            f"Give the {kind}s' names (var_names, or {'gene_names=[...]' if kind == 'gene' else 'proteins=[...]'})"
        )
    resolver = _Resolver(vocab, species)
    genomes = _barnyard_genomes(texts) if kind == "gene" and species == "auto" else Counter()
    if genomes["human"] and genomes["mouse"]:
        # a barnyard or spike-in reference (GSE100866's CBMC: HUMAN_ and MOUSE_ genes in one matrix): the mouse genes
        # read through their human orthologs would add mouse cells' reads to the human genes
        resolver = _Resolver(vocab, "human")
        warnings.warn(
            "the genes come from a human and a mouse genome (prefixes such as GRCh38_/mm10___ or HUMAN_/MOUSE_, a "
            "mixed-species reference): the human genome's genes are read and the mouse genome's left out; to read "
            "the mouse genes instead, load the tokenizer with species='mouse' (SCTranslatorTokenizer.from_pretrained("
            "MODEL, species='mouse'), given to pipeline(..., feature_extractor=...))",
            UserWarning, stacklevel=3,
        )
    elif kind == "gene" and species == "auto":
        resolver = _Resolver(vocab, _file_species(resolver, texts))
    overrides = dict(overrides or {})
    missing = [is_missing_name(n, protein=kind == "protein") for n in names]
    names = texts
    if kind == "gene" and any(missing):
        warnings.warn(
            f"{sum(missing)} of {len(names)} gene names are missing (NaN or empty; e.g. column "
            f"{missing.index(True)}): those columns are left out. Fill them (e.g. from var_names) or name a "
            "column that names every gene",
            UserWarning, stacklevel=3,
        )
    copies = copy_suffix_stems(names) if kind == "protein" else {}
    lone_copies = [f"{names[i]} -> {stem}" for i, stem in copies.items() if stem not in names]
    if lone_copies:
        warnings.warn(
            f"read as copies of a CD antigen (a number suffix that makes a repeated name unique, not part of the "
            f"name): {', '.join(lone_copies[:8])}; pass overrides={{name: 'SYMBOL'}} if one means another antigen",
            UserWarning, stacklevel=3,
        )
    flagged = [bool(is_control[i]) if is_control is not None else False for i in range(len(names))]
    gene_named = kind == "protein" and len(names) - sum(flagged) >= GENE_NAMED_PANEL_MIN
    memo: dict[str, tuple[int | None, str, str, bool]] = {}
    results: list[tuple[int | None, str, str, bool]] = []
    for i, (name, control) in enumerate(zip(names, flagged, strict=True)):
        if missing[i]:
            result = (None, "unmapped", "", True)
        elif name in overrides:
            token, route = _override_target(vocab, name, overrides[name])
            result = (token, route, str(overrides[name]) if route != "control" else "", True)
        elif control:
            result = (None, "control", "is_control", True)
        elif name in memo:
            result = memo[name]
        else:
            reason = is_control_name(name, gene_named) if kind == "protein" else None
            if reason is not None:
                result = (None, "control", reason, True)
            elif kind == "protein":
                hit = resolver.protein(copies.get(i, name), gene_named)
                result = hit if hit else (None, "unmapped", "", True)
            else:
                result = _gene_result(resolver, name)
            memo[name] = result
        results.append(result)

    matched_of = {name: result[2] for name, result in zip(names, results, strict=True)
                  if kind == "gene" and result[0] is not None and not result[3]}  # a gene name R wrote
    dotted = list(matched_of)
    if dotted:
        warnings.warn(
            f"{len(dotted)} gene names have dots where the gene's symbol has hyphens, as R's make.names writes them "
            f"(e.g. {', '.join(dotted[:3])}): read with hyphens ({', '.join(matched_of[n] for n in dotted[:3])})",
            UserWarning, stacklevel=3,
        )
    # token -> column that keeps it: whole-name hits first; then, for genes, the column named as the token's own
    # gene (the original tables give some names another gene's id: C2orf48 reaches RRM2's, C9orf47 S1PR3's, and
    # C2orf48 sorting first fed its counts to RRM2 in every whole-transcriptome file), then the name that sorts
    # first (so a model reads the same value whatever the column order); for proteins the panel's first column
    own_name = vocab.token_names() if kind == "gene" else {}
    # the fallback rule is a mouse file's only: a human file keeps C6orf165 or C6ORF165 by sort order, as the shipped
    # model trained; the own name in any case and placeholders rank in every file (no shared file changes)
    mouse_file = resolver.species == "mouse"

    def preference(i: int) -> tuple[bool, bool, bool, bool, bool, str, int]:
        if kind != "gene":
            return not results[i][3], False, False, False, False, "", i
        own, name = own_name.get(results[i][0], ""), names[i].strip()
        # a mouse file names the token's gene in its own case (Lcn8 for LCN8, Slc25a19): read through the ortholog
        # table, it comes before a name the case-insensitive fallback took there (Lcn5 by LCN8's previous symbol,
        # Mup1 by an alias of SLC25A19), and a named gene before a clone or accession name (Hc before AI182371)
        return (not results[i][3], own != name, own.upper() != name.upper(),
                mouse_file and results[i][1] == "symbol_case", bool(_PLACEHOLDER_NAME_RE.match(name)), names[i], i)

    kept: dict[int, int] = {}
    order = sorted(range(len(results)), key=preference)
    for i in order:
        if results[i][0] is not None:
            kept.setdefault(results[i][0], i)
    tokens = np.zeros(len(names), dtype=np.int64)
    routes: list[str] = []
    status: list[str] = []
    matched: list[str] = []
    for i, (token, route, match, _) in enumerate(results):
        if route == "control":
            status.append("control")
            routes.append("control")
            matched.append(match)
        elif token is None:
            status.append("unmapped")
            routes.append("unmapped")
            matched.append("")
        else:
            tokens[i] = token
            routes.append(route)
            matched.append(match)
            status.append("mapped" if kept[token] == i else "duplicate")
    return MappingReport(kind, names, tokens, routes, status, matched)


def _gene_result(resolver: _Resolver, name: str) -> tuple[int | None, str, str, bool]:
    """(token, route, matched text, whole name) of a gene name. A name that maps to nothing as written but does
    with its dots read as hyphens (first those not between digits, as clone names such as AC000061.1 keep theirs;
    then all: TRBV11.2) was written by R's make.names, as tables exported from R often are: 5 % of a 10x panel's
    mapped genes (HLA-DRA, the MT- genes, every -AS1 antisense gene) would otherwise be lost. It yields to a column
    named exactly."""
    hit = resolver.gene(name)
    if hit is not None and not ("." in name and not resolver.is_own_name(hit[0], name)):
        return hit[0], hit[1], name, True
    if "." in name:  # also where the dotted name is another gene's alias: NKX1.1 is NKX1-2's, KRTAP2.4 KRTAP2-3's
        for hyphened in dict.fromkeys((_NON_DECIMAL_DOT_RE.sub("-", name), name.replace(".", "-"))):
            dashed = resolver.gene(hyphened)
            if dashed is not None and (hit is None or resolver.is_own_name(dashed[0], hyphened)):
                return dashed[0], dashed[1], hyphened, False  # the route the hyphened name took; matched: that name
    if hit is not None:
        return hit[0], hit[1], name, True
    if ";" in name:  # synonyms of one gene joined (scanpy's paul15: 0610007C21Rik;Apr3): the first that maps
        for part in name.split(";"):
            hit = resolver.gene(part.strip()) if part.strip() else None
            if hit is not None:
                return hit[0], hit[1], part.strip(), True
    return None, "unmapped", "", True


def report_from_token_ids(vocab: GeneVocab, token_ids: Sequence[int], kind: str = "gene") -> MappingReport:
    """A report for columns given directly as token ids (validated; duplicates dropped as usual)."""
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        try:
            ids = ids.astype(np.int64, casting="safe") if ids.ndim == 1 else ids
        except TypeError:
            pass
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError("token ids must be a 1-D sequence of integers")
    bad = (ids <= 0) | (ids >= vocab.vocab_size)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} token ids are outside 1..{vocab.vocab_size - 1} (first: "
            f"{ids[bad][:5].tolist()}); "
            "0 is padding. Pass gene names instead of ids if these are not scTranslator token ids."
        )
    used: set[int] = set()
    status = []
    for t in ids.tolist():
        status.append("duplicate" if t in used else "mapped")
        used.add(t)
    names = [str(t) for t in ids.tolist()]
    return MappingReport(kind, names, ids.astype(np.int64), ["token_id"] * len(ids), status, names)
