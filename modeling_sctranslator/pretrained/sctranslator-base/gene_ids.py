"""Resolve gene and protein names, as datasets write them, to scTranslator token ids.

Genes (``kind="gene"``), tried in order:

1. user ``overrides`` (name -> ``"SYMBOL"``, ``"entrez:920"``, ``"token:752"``, ``"control"`` or ``None``);
2. Entrez ids written as digits (``"920"``);
3. Ensembl gene ids, version suffix ignored (``ENSMUSG00000023274.12`` through the mouse ortholog
   table; human ``ENSG...`` where the vocabulary has an Ensembl table, i.e. NCBI-built ones);
4. human symbols and aliases as written (route ``symbol``);
5. mouse symbols through the ortholog table (``Cd4`` -> ``CD4``; route ``mouse_symbol``), unless
   ``species="human"``;
6. human symbols ignoring case (``lag3`` -> ``LAG3``; route ``symbol_case``), unless ``species="mouse"``;
7. names added to the reserved slots (route ``added``).

Proteins (``kind="protein"``) add panel rules before giving up: isotype/blank/technical rows are
reported as *controls* (never mapped), barcode and ``_TotalSeqB`` suffixes are stripped, both parts of
``"PD-1 (CD279)"`` are tried (a ``CD<number>`` part first), a curated table of antibody names that
the symbol table gets wrong or lacks (RPPA ``PDK1`` is PDPK1, ``ACC1`` is ACACA, ``PD-1`` is PDCD1)
is consulted, hyphens/underscores/spaces are dropped, and phospho-epitopes (``4E-BP1_pS65``) or
cleaved forms map to the total protein's gene under routes ``phospho`` / ``modified_epitope``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .vocab import GeneVocab

__all__ = [
    "MappingReport",
    "PANEL_ALIASES",
    "is_control_name",
    "resolve_names",
]

# --------------------------------------------------------------------------- panel knowledge
# Antibody target names (lower case, hyphens/underscores/spaces removed) -> human gene symbol.
# Only names the symbol table lacks or maps to another gene than antibody panels mean.
PANEL_ALIASES: dict[str, str] = {
    # CITE-seq / ECCITE / REAP panels
    "pd1": "PDCD1",
    "pdl1": "CD274",
    "pdl2": "PDCD1LG2",
    "b7h1": "CD274",
    "mhcii": "HLA-DR",
    "igm": "IGHM",
    "igd": "IGHD",
    "integrinb7": "ITGB7",
    "lox1": "OLR1",
    "tcrva7.2": "TRAV1-2",
    "tcrvd2": "TRDV2",
    "tcrvalpha7.2": "TRAV1-2",
    "tcrvdelta2": "TRDV2",
    "cd158": "KIR2DL1",
    "fceria": "FCER1A",
    "hlaabc": "HLA-A",
    "hlaa,b,c": "HLA-A",
    "il7ralpha": "IL7R",
    "ckit": "KIT",
    "pecam": "PECAM1",
    "ox40": "TNFRSF4",
    "cd8": "CD8A",
    "cd8a": "CD8A",
    "cd3": "CD3D",
    # RPPA (TCGA / MD Anderson antibody names)
    "1433epsilon": "YWHAE",
    "4ebp1": "EIF4EBP1",
    "53bp1": "TP53BP1",
    "araf": "ARAF",
    "braf": "BRAF",
    "craf": "RAF1",
    "acc1": "ACACA",
    "acc": "ACACA",
    "ampkalpha": "PRKAA1",
    "ampk": "PRKAA1",
    "akt": "AKT1",
    "annexini": "ANXA1",
    "annexin1": "ANXA1",
    "bak": "BAK1",
    "bax": "BAX",
    "bcl2": "BCL2",
    "bclxl": "BCL2L1",
    "beclin": "BECN1",
    "bid": "BID",
    "bim": "BCL2L11",
    "caspase7": "CASP7",
    "caveolin1": "CAV1",
    "chk1": "CHEK1",
    "chk2": "CHEK2",
    "claudin7": "CLDN7",
    "collagenvi": "COL6A1",
    "cyclinb1": "CCNB1",
    "cyclind1": "CCND1",
    "cycline1": "CCNE1",
    "dj1": "PARK7",
    "dvl3": "DVL3",
    "ecadherin": "CDH1",
    "ncadherin": "CDH2",
    "pcadherin": "CDH3",
    "eralpha": "ESR1",
    "erk2": "MAPK1",
    "foxo3a": "FOXO3",
    "fibronectin": "FN1",
    "gsk3alphabeta": "GSK3B",
    "gsk3": "GSK3B",
    "her2": "ERBB2",
    "her3": "ERBB3",
    "hsp70": "HSPA1A",
    "jnk2": "MAPK9",
    "jnk": "MAPK8",
    "kras": "KRAS",
    "ku80": "XRCC5",
    "lbk1": "STK11",
    "lkb1": "STK11",
    "lck": "LCK",
    "mapk": "MAPK3",
    "mek1": "MAP2K1",
    "mig6": "ERRFI1",
    "mre11": "MRE11",
    "nfkbp65": "RELA",
    "notch1": "NOTCH1",
    "pai1": "SERPINE1",
    "pdk1": "PDPK1",
    "pi3kp110alpha": "PIK3CA",
    "pkcalpha": "PRKCA",
    "pkcdelta": "PRKCD",
    "pr": "PGR",
    "pras40": "AKT1S1",
    "paxillin": "PXN",
    "pea15": "PEA15",
    "rad50": "RAD50",
    "rb": "RB1",
    "s6": "RPS6",
    "scd1": "SCD",
    "stat3": "STAT3",
    "stat5alpha": "STAT5A",
    "shc": "SHC1",
    "smad1": "SMAD1",
    "smad3": "SMAD3",
    "smad4": "SMAD4",
    "src": "SRC",
    "stathmin": "STMN1",
    "syk": "SYK",
    "transglutaminase": "TGM2",
    "tuberin": "TSC2",
    "vegfr2": "KDR",
    "yap": "YAP1",
    "yb1": "YBX1",
    "alphacatenin": "CTNNA1",
    "betacatenin": "CTNNB1",
    "cmet": "MET",
    "cmyc": "MYC",
    "eef2": "EEF2",
    "eef2k": "EEF2K",
    "eif4e": "EIF4E",
    "mtor": "MTOR",
    "p27": "CDKN1B",
    "p38mapk": "MAPK14",
    "p38": "MAPK14",
    "p53": "TP53",
    "p70s6k": "RPS6KB1",
    "p90rsk": "RPS6KA1",
    "pkcpan": "PRKCB",
    "pten": "PTEN",
    "egfr": "EGFR",
    "atm": "ATM",
    "ar": "AR",
}

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
_ISOTYPE_RE = re.compile(
    r"^(?:(?:isotype|iso|control|ctrl|neg|negative)[ _.-]*)*"
    r"(?:(?:mouse|ms|rat|hamster|armenian[ _-]?hamster|human|goat|rabbit|rag)[ _.-]*)?"
    r"(?:(?:isotype|iso|control|ctrl)[ _.-]*)*"
    r"ig[gy]\d*[a-d]?"
    r"(?:[ _.,-]*(?:kappa|k|lambda|l|\u03ba|\u03bb|isotype|iso|ctrl|control|\d+))*$",
    re.IGNORECASE,
)
_BARCODE_SUFFIX_RE = re.compile(r"^(.+?)[_ .-]+(?:[ACGTN]{6,}|(?i:TotalSeq[-_ ]?[ABCD]?|ADT|CITE))$")
_PAREN_RE = re.compile(r"^\s*(.*?)\s*\(\s*(.+?)\s*\)\s*$")
_PHOSPHO_RE = re.compile(r"^(.+?)[_ ](?:p[STY]\d+(?:[_/]p?[STY]?\d+)*)$")
_MODIFIED_RE = re.compile(r"^(.+?)[_ ](?:cleaved\w*|acetyl\w*|ac[K]\d+|me\d?[KR]\d+)$", re.IGNORECASE)
_CD_RE = re.compile(r"^CD\d+[A-Za-z]?\d*$", re.IGNORECASE)
_ENSEMBL_RE = re.compile(r"^(ENS[A-Z]*G\d{6,})(?:\.\d+)?$", re.IGNORECASE)


def _panel_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def is_control_name(name: str) -> str | None:
    """The reason ``name`` is a control row (isotype, blank, technical) or ``None``."""
    stripped = name.strip()
    base = _BARCODE_SUFFIX_RE.match(stripped)
    core = base.group(1) if base else stripped
    if core.lower() in _TECHNICAL_CONTROLS or stripped.lower() in _TECHNICAL_CONTROLS:
        return "technical/blank row"
    if _ISOTYPE_RE.match(core) or _ISOTYPE_RE.match(stripped):
        return "isotype control"
    lowered = core.lower()
    if "isotype" in lowered or lowered.startswith(("control_", "control ", "ctrl_")):
        return "isotype control"
    return None


# --------------------------------------------------------------------------- report
@dataclass
class MappingReport:
    """How each input column was mapped. ``token_ids[i]`` is 0 for unmapped/control/duplicate columns.

    ``status`` per column: ``mapped`` (used), ``duplicate`` (maps to a token an earlier column already
    took: dropped, listed in :attr:`duplicates`), ``control`` or ``unmapped``. Every column is in
    exactly one status, so mapped + duplicates + controls + unmapped == all columns.
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

    @property
    def columns(self) -> np.ndarray:
        """Indices of the columns used in the encoding, in data order."""
        return np.flatnonzero(np.asarray(self.status) == "mapped")

    @property
    def kept_token_ids(self) -> np.ndarray:
        return self.token_ids[self.columns]

    @property
    def mapped(self) -> list[str]:
        return [n for n, s in zip(self.names, self.status, strict=True) if s == "mapped"]

    @property
    def unmapped(self) -> list[str]:
        return [n for n, s in zip(self.names, self.status, strict=True) if s == "unmapped"]

    @property
    def controls(self) -> list[str]:
        return [n for n, s in zip(self.names, self.status, strict=True) if s == "control"]

    @property
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

    @property
    def route_counts(self) -> dict[str, int]:
        """Mapped columns per route (duplicates not counted)."""
        return dict(Counter(r for r, s in zip(self.routes, self.status, strict=True) if s == "mapped"))

    @property
    def n_mapped(self) -> int:
        return sum(s == "mapped" for s in self.status)

    @property
    def mapped_fraction(self) -> float:
        """Columns that got a token (used or duplicate) over columns that are not controls."""
        non_control = sum(s != "control" for s in self.status)
        got = sum(s in ("mapped", "duplicate") for s in self.status)
        return got / non_control if non_control else 0.0

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

    def gene(self, name: str) -> tuple[int, str] | None:
        """(token id, route) for a gene name, or None."""
        vocab = self.vocab
        s = name.strip()
        if not s:
            return None
        if s in vocab.added:
            return vocab.added[s], "added"
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

    def _panel_candidates(self, name: str) -> list[tuple[str, str]]:
        """Strings to try for an antibody name, each with the route it would be reported under."""
        out: list[tuple[str, str]] = []
        seen: set[str] = set()

        def push(text: str, route: str) -> None:
            text = text.strip()
            if text and text not in seen:
                seen.add(text)
                out.append((text, route))

        s = name.strip()
        m = _BARCODE_SUFFIX_RE.match(s)
        core = m.group(1) if m else s
        parts = [core]
        p = _PAREN_RE.match(core)
        if p:
            outer, inner = p.group(1), p.group(2)
            cd_parts = [x for x in (inner, outer) if _CD_RE.match(x)]
            parts = cd_parts + [x for x in (inner, outer) if x not in cd_parts]
        for part in parts:
            push(part, "panel")
            if "," in part or "/" in part:  # "HLA-A,B,C": the first listed target
                push(re.split(r"[,/]", part)[0], "panel")
        for part in list(parts):
            ph = _PHOSPHO_RE.match(part)
            if ph:
                push(ph.group(1), "phospho")
            mo = _MODIFIED_RE.match(part)
            if mo:
                push(mo.group(1), "modified_epitope")
        return out

    def protein(self, name: str) -> tuple[int, str, str] | None:
        """(token id, route, matched text) for an antibody/protein name, or None."""
        direct_panel = self._panel_alias(name)
        if direct_panel is not None:
            return direct_panel[0], "panel_alias", direct_panel[1]
        hit = self.gene(name)
        if hit is not None:
            return hit[0], hit[1], name
        for text, route in self._panel_candidates(name):
            alias = self._panel_alias(text)
            if alias is not None:
                return alias[0], (route if route != "panel" else "panel_alias"), alias[1]
            hit = self.gene(text)
            if hit is None:
                squeezed = re.sub(r"[\s_\-]+", "", text)
                hit = self.gene(squeezed) if squeezed != text else None
            if hit is not None:
                return hit[0], route, text
        return None

    def _panel_alias(self, text: str) -> tuple[int, str] | None:
        symbol = PANEL_ALIASES.get(_panel_key(text))
        if symbol is None:
            return None
        token = self._symbol(symbol)
        return (token, symbol) if token is not None else None


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
    hit = _Resolver(vocab, "auto").gene(text)
    if hit is None:
        raise ValueError(f"override for {name!r}: {text!r} is not a known symbol/id of the vocabulary")
    return hit[0], "override"


def resolve_names(
    vocab: GeneVocab,
    names: Sequence[Any],
    kind: str = "gene",
    species: str = "auto",
    overrides: Mapping[str, Any] | None = None,
    is_control: Sequence[bool] | None = None,
) -> MappingReport:
    """Map every name to a token id; later columns that hit an already used token are duplicates."""
    if kind not in ("gene", "protein"):
        raise ValueError(f"kind must be 'gene' or 'protein', not {kind!r}")
    resolver = _Resolver(vocab, species)
    overrides = dict(overrides or {})
    names = [str(n) for n in names]
    tokens = np.zeros(len(names), dtype=np.int64)
    routes: list[str] = []
    status: list[str] = []
    matched: list[str] = []
    used: set[int] = set()
    memo: dict[str, tuple[int | None, str, str]] = {}
    for i, name in enumerate(names):
        if name in overrides:
            token, route = _override_target(vocab, name, overrides[name])
            result = (token, route, str(overrides[name]))
            if route == "control":
                result = (None, "control", "")
        elif is_control is not None and bool(is_control[i]):
            result = (None, "control", "is_control")
        elif name in memo:
            result = memo[name]
        else:
            if kind == "protein":
                reason = is_control_name(name)
                if reason is not None:
                    result = (None, "control", reason)
                else:
                    hit = resolver.protein(name)
                    result = (hit[0], hit[1], hit[2]) if hit else (None, "unmapped", "")
            else:
                hit = resolver.gene(name)
                result = (hit[0], hit[1], name) if hit else (None, "unmapped", "")
            memo[name] = result
        token, route, match = result
        if route == "control":
            status.append("control")
            routes.append("control")
            matched.append(match)
            continue
        if token is None:
            status.append("unmapped")
            routes.append("unmapped")
            matched.append("")
            continue
        tokens[i] = token
        routes.append(route)
        matched.append(match)
        if token in used:
            status.append("duplicate")
        else:
            used.add(token)
            status.append("mapped")
    return MappingReport(kind, names, tokens, routes, status, matched)


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
