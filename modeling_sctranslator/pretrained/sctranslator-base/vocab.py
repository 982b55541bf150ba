"""Gene vocabulary of scTranslator: the id tables that turn gene names into token ids.

A :class:`GeneVocab` holds

* ``entrez_to_token``: Entrez gene id -> token id (the embedding row of the model);
* ``symbol_to_entrez``: human symbols, aliases and panel names -> Entrez id;
* ``mouse_symbol_to_human`` / ``mouse_ensembl_to_human``: ortholog tables -> human symbol;
* ``ensembl_to_entrez``: human Ensembl gene ids -> Entrez id (filled from NCBI ``dbXrefs``; the
  original tables have none);
* ``added``: names given token ids from the reserved range with :meth:`GeneVocab.add`.

Token id 0 is padding. Known genes use ids ``1 .. reserved_start - 1`` (the original tables use
1..75,522). Names outside the tables get ids from ``reserved_start .. vocab_size - 1``: for the
original tables that is 75,523..85,499 (9,977 slots). The paper speaks of 10,000 reserved slots
at 75,500..85,499, but the released tables already use ids 75,501..75,522 for protein complexes
and isoforms (CD45RA, HLA-DR, ...), so handing those out again would collide; we hand out only ids
that no table entry uses.

This module is imported by ``tokenization_sctranslator.py`` with a relative import and must stay
self-contained (standard library, numpy, pandas and the sibling ``safe_pickle`` module only).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["GeneVocab", "ORIGINAL_VOCAB_SIZE", "VOCAB_FORMAT", "read_text_table"]

ORIGINAL_VOCAB_SIZE = 85500
VOCAB_FORMAT = "sctranslator-gene-vocab"
_VOCAB_VERSION = 1

# file names of the original tables (TSV as converted in ../shared/vocab, or the original pickles)
_TSV_FILES = {
    "entrez": "entrez_to_token.tsv",
    "symbol": "human_symbol_to_entrez.tsv",
    "mouse_ensembl": "mouse_ensembl_to_human_symbol.tsv",
    "mouse_symbol": "mouse_symbol_to_human_symbol.tsv",
}
_PICKLE_FILES = {
    "entrez": "EntrezID_to_myID.pkl",
    "symbol": "hgs_to_EntrezID.pkl",
    "mouse_ensembl": "mouse_gene_ID_to_human_gene_symbol.pkl",
    "mouse_symbol": "mouse_gene_symbol_to_human_gene_symbol.pkl",
}


def _upper_index(table: Mapping[str, Any]) -> dict[str, Any]:
    """Case-insensitive index: an entry whose key is already upper case wins over other spellings."""
    index: dict[str, Any] = {}
    exact: set[str] = set()
    for key, value in table.items():
        upper = key.upper()
        if key == upper:
            index[upper] = value
            exact.add(upper)
        elif upper not in exact and upper not in index:
            index[upper] = value
    return index


def read_text_table(path: str | os.PathLike[str], what: str):
    """A tab-separated text table (optionally gzipped) as a pandas frame of strings, read verbatim (no NA
    guessing, quotes kept: gene tables hold names such as ``NA`` and stray quote marks); a file that is
    not such text is a ``ValueError`` naming ``what`` it should have been."""
    import pandas as pd

    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return pd.read_csv(handle, sep="\t", dtype=str, keep_default_na=False, na_filter=False, quoting=3)
    except (UnicodeDecodeError, gzip.BadGzipFile, pd.errors.ParserError) as error:
        raise ValueError(f"{path} is not {what} (tab-separated text, optionally .gz): it could not be read as "
                         f"such ({type(error).__name__})") from None


class GeneVocab:
    """Id tables plus the reserved slots handed out to names outside them (see the module doc)."""

    def __init__(
        self,
        entrez_to_token: Mapping[int, int],
        symbol_to_entrez: Mapping[str, int],
        mouse_symbol_to_human: Mapping[str, str] | None = None,
        mouse_ensembl_to_human: Mapping[str, str] | None = None,
        ensembl_to_entrez: Mapping[str, int] | None = None,
        added: Mapping[str, int] | None = None,
        vocab_size: int = ORIGINAL_VOCAB_SIZE,
        reserved_start: int | None = None,
        source: str = "",
    ) -> None:
        self.entrez_to_token = {int(k): int(v) for k, v in entrez_to_token.items()}
        self.symbol_to_entrez = dict(symbol_to_entrez)
        self.mouse_symbol_to_human = dict(mouse_symbol_to_human or {})
        self.mouse_ensembl_to_human = dict(mouse_ensembl_to_human or {})
        self.ensembl_to_entrez = dict(ensembl_to_entrez or {})
        self.added = {str(k): int(v) for k, v in (added or {}).items()}
        self.vocab_size = int(vocab_size)
        used_max = max(self.entrez_to_token.values(), default=0)
        if reserved_start is None:
            reserved_start = used_max + 1
        self.reserved_start = int(reserved_start)
        self.source = source
        if min(self.entrez_to_token.values(), default=1) < 1:
            raise ValueError("token id 0 is padding; the Entrez table must use ids >= 1")
        if used_max >= self.reserved_start:
            raise ValueError(
                f"the Entrez table uses token id {used_max}, inside the reserved range starting at "
                f"{self.reserved_start}"
            )
        if self.reserved_start > self.vocab_size:
            raise ValueError(f"reserved_start {self.reserved_start} exceeds vocab_size {self.vocab_size}")
        self._symbol_upper: dict[str, int] | None = None
        self._mouse_upper: dict[str, str] | None = None
        self._added_upper: dict[str, int] | None = None
        self._token_names: dict[int, str] | None = None

    # ------------------------------------------------------------------ lookups
    @property
    def symbol_upper(self) -> dict[str, int]:
        if self._symbol_upper is None:
            self._symbol_upper = _upper_index(self.symbol_to_entrez)
        return self._symbol_upper

    @property
    def mouse_symbol_upper(self) -> dict[str, str]:
        if self._mouse_upper is None:
            self._mouse_upper = _upper_index(self.mouse_symbol_to_human)
        return self._mouse_upper

    @property
    def added_upper(self) -> dict[str, int]:
        if self._added_upper is None:
            self._added_upper = _upper_index(self.added)
        return self._added_upper

    @property
    def n_known(self) -> int:
        """Distinct token ids of the tables (without added names)."""
        return len(set(self.entrez_to_token.values()))

    @property
    def n_reserved_free(self) -> int:
        return self.vocab_size - self.reserved_start - len(set(self.added.values()))

    def token_for_entrez(self, entrez: int) -> int | None:
        return self.entrez_to_token.get(int(entrez))

    def token_names(self) -> dict[int, str]:
        """token id -> a readable name (the official-looking symbol of its Entrez id, or the added name)."""
        if self._token_names is None:
            by_entrez: dict[int, str] = {}
            for symbol, entrez in self.symbol_to_entrez.items():
                current = by_entrez.get(entrez)
                # prefer upper-case symbols without spaces; the first such one in table order
                if current is None or (current != current.upper() and symbol == symbol.upper()):
                    by_entrez[entrez] = symbol
            names = {tok: by_entrez.get(ent, f"Entrez:{ent}") for ent, tok in self.entrez_to_token.items()}
            names.update({tok: name for name, tok in self.added.items()})
            self._token_names = names
        return self._token_names

    # ------------------------------------------------------------------ reserved slots
    def add(self, name: str) -> int:
        """Give ``name`` the next free reserved id (or the id it already has). Raises when full."""
        name = str(name).strip()
        if not name:
            raise ValueError("cannot add an empty gene name")
        if name in self.added:
            return self.added[name]
        used = set(self.added.values())
        next_id = max(used, default=self.reserved_start - 1) + 1
        if next_id >= self.vocab_size:
            raise ValueError(
                f"all {self.vocab_size - self.reserved_start} reserved token ids are taken; build a "
                "vocabulary "
                "with a larger vocab_size (and a model with as many embedding rows)"
            )
        self.added[name] = next_id
        self._added_upper = None
        self._token_names = None
        return next_id

    # ------------------------------------------------------------------ persistence
    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": VOCAB_FORMAT,
            "version": _VOCAB_VERSION,
            "source": self.source,
            "vocab_size": self.vocab_size,
            "reserved_start": self.reserved_start,
            "entrez_to_token": [[e, t] for e, t in self.entrez_to_token.items()],
            "symbol_to_entrez": self.symbol_to_entrez,
            "mouse_symbol_to_human": self.mouse_symbol_to_human,
            "mouse_ensembl_to_human": self.mouse_ensembl_to_human,
            "ensembl_to_entrez": self.ensembl_to_entrez,
            "added": self.added,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> GeneVocab:
        if data.get("format") != VOCAB_FORMAT:
            raise ValueError(f"not a {VOCAB_FORMAT} file (format={data.get('format')!r})")
        if int(data.get("version", 0)) > _VOCAB_VERSION:
            raise ValueError(
                f"gene vocabulary file version {data['version']} is newer than this code reads "
                f"({_VOCAB_VERSION}); upgrade sctranslator"
            )
        return cls(
            entrez_to_token={int(e): int(t) for e, t in data["entrez_to_token"]},
            symbol_to_entrez={k: int(v) for k, v in data["symbol_to_entrez"].items()},
            mouse_symbol_to_human=data.get("mouse_symbol_to_human", {}),
            mouse_ensembl_to_human=data.get("mouse_ensembl_to_human", {}),
            ensembl_to_entrez={k: int(v) for k, v in data.get("ensembl_to_entrez", {}).items()},
            added=data.get("added", {}),
            vocab_size=data["vocab_size"],
            reserved_start=data["reserved_start"],
            source=data.get("source", ""),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically (temp file in the same folder, then rename)."""
        from .atomic_io import atomic_output_file

        with atomic_output_file(path, overwrite=True) as staging:
            with open(staging, "w", encoding="utf-8") as handle:
                json.dump(self.to_json_dict(), handle, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GeneVocab:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:  # a cut-off download or copy, say
            raise ValueError(f"the gene vocabulary {path} is not valid JSON ({error}): the file is damaged; copy or "
                             "download the tokenizer folder again") from None
        return cls.from_json_dict(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GeneVocab) and self.to_json_dict() == other.to_json_dict()

    def __repr__(self) -> str:
        return (
            f"GeneVocab({self.n_known} known genes, {len(self.symbol_to_entrez)} symbols/aliases, "
            f"{len(self.added)} added, vocab_size={self.vocab_size}, reserved from {self.reserved_start})"
        )

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_original_tables(cls, directory: str | os.PathLike[str]) -> GeneVocab:
        """Read the four original tables: TSV (``entrez_to_token.tsv`` ...) or the original pickles.

        Pickles are read with :func:`safe_pickle.load_restricted_pickle` (plain data only).
        """
        directory = Path(directory)
        if all((directory / name).is_file() for name in _TSV_FILES.values()):
            tables = {key: _read_two_column_tsv(directory / name) for key, name in _TSV_FILES.items()}
            source = "original tables (TSV)"
        elif all((directory / name).is_file() for name in _PICKLE_FILES.values()):
            from .safe_pickle import load_restricted_pickle

            tables = {}
            for key, name in _PICKLE_FILES.items():
                loaded = load_restricted_pickle(directory / name)
                if not isinstance(loaded, Mapping):
                    raise ValueError(f"{directory / name} does not hold a dictionary")
                tables[key] = loaded
            source = "original tables (pickle)"
        else:
            raise FileNotFoundError(
                f"{directory} holds neither the four TSV tables ({', '.join(_TSV_FILES.values())}) nor the "
                f"original pickles ({', '.join(_PICKLE_FILES.values())})"
            )
        entrez_to_token = {int(k): int(v) for k, v in tables["entrez"].items()}
        symbol_to_entrez = {str(k): int(v) for k, v in tables["symbol"].items() if _is_int_like(v)}
        mouse_ens = {str(k): str(v) for k, v in tables["mouse_ensembl"].items() if isinstance(v, str)}
        mouse_sym = {str(k): str(v) for k, v in tables["mouse_symbol"].items() if isinstance(v, str)}
        return cls(
            entrez_to_token,
            symbol_to_entrez,
            mouse_sym,
            mouse_ens,
            vocab_size=ORIGINAL_VOCAB_SIZE,
            reserved_start=max(entrez_to_token.values()) + 1,
            source=source,
        )

    @classmethod
    def from_ncbi_gene_info(
        cls,
        path: str | os.PathLike[str],
        tax_id: int = 9606,
        gene_types: Iterable[str] | None = None,
        n_reserved: int = 10000,
        vocab_size: int | None = None,
    ) -> GeneVocab:
        """A fresh vocabulary from NCBI's ``gene_info`` file (tab-separated, optionally gzipped).

        Token ids 1..N follow ascending GeneID; official symbols win over synonyms; a synonym
        shared by several genes goes to the lowest GeneID. ``dbXrefs`` ``Ensembl:ENSG...`` fill the
        Ensembl table. ``vocab_size`` defaults to ``max(85500, N + 1 + n_reserved)``; ids from N + 1
        up are reserved for :meth:`add`.
        """
        frame = read_text_table(path, "an NCBI gene_info text file")
        frame.columns = [c.lstrip("#") for c in frame.columns]
        missing = {"tax_id", "GeneID", "Symbol", "Synonyms"} - set(frame.columns)
        if missing:
            raise ValueError(f"{path} is not an NCBI gene_info file: missing columns {sorted(missing)}")
        frame = frame[frame["tax_id"] == str(tax_id)]
        if gene_types is not None and "type_of_gene" in frame.columns:
            frame = frame[frame["type_of_gene"].isin(list(gene_types))]
        if frame.empty:
            raise ValueError(f"{path} has no genes for tax_id {tax_id}")
        frame = frame.assign(_gid=frame["GeneID"].astype("int64")).sort_values("_gid")
        gene_ids = frame["_gid"].tolist()
        entrez_to_token = {gid: i + 1 for i, gid in enumerate(gene_ids)}
        symbol_to_entrez: dict[str, int] = {}
        for gid, symbol in zip(gene_ids, frame["Symbol"], strict=True):
            if symbol and symbol != "-":
                symbol_to_entrez.setdefault(symbol, gid)
        for gid, synonyms in zip(gene_ids, frame["Synonyms"], strict=True):
            if synonyms and synonyms != "-":
                for synonym in synonyms.split("|"):
                    symbol_to_entrez.setdefault(synonym, gid)
        ensembl_to_entrez: dict[str, int] = {}
        if "dbXrefs" in frame.columns:
            for gid, xrefs in zip(gene_ids, frame["dbXrefs"], strict=True):
                for xref in xrefs.split("|"):
                    if xref.startswith("Ensembl:"):
                        ensembl_to_entrez.setdefault(xref[len("Ensembl:") :], gid)
        n = len(gene_ids)
        size = vocab_size if vocab_size is not None else max(ORIGINAL_VOCAB_SIZE, n + 1 + n_reserved)
        return cls(
            entrez_to_token,
            symbol_to_entrez,
            ensembl_to_entrez=ensembl_to_entrez,
            vocab_size=size,
            reserved_start=n + 1,
            source=f"NCBI gene_info tax_id={tax_id}",
        )


def _is_int_like(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


def _read_two_column_tsv(path: Path) -> dict[str, str]:
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)
    if frame.shape[1] != 2:
        raise ValueError(f"{path} should have two columns, found {frame.shape[1]}")
    keys, values = frame.iloc[:, 0].tolist(), frame.iloc[:, 1].tolist()
    return dict(zip(keys, values, strict=True))
