"""SCTranslatorTokenizer: expression matrices -> scTranslator inputs (gene ids, scaled values, masks).

A ``transformers`` feature extractor: ``save_pretrained`` writes ``preprocessor_config.json`` plus the
gene vocabulary in ``gene_vocab.json`` next to it, ``from_pretrained`` / ``AutoFeatureExtractor``
read both. Only same-folder relative imports, so ``register_for_auto_class`` can copy this file and
its siblings into a saved folder for ``trust_remote_code``. Never imports the model code.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import BatchFeature, FeatureExtractionMixin

from .gene_ids import MappingReport, report_from_token_ids, resolve_names
from .value_kinds import value_kind
from .vocab import GeneVocab

__all__ = [
    "ConstantCellWarning",
    "InputQualityWarning",
    "EncodingReport",
    "SCTranslatorTokenizer",
    "VOCAB_FILE_NAME",
    "protein_passes",
    "scale_rows",
    "scale_between",
]

VOCAB_FILE_NAME = "gene_vocab.json"
SCALE_FLOOR = 1e-8
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")
_CHUNK_ELEMENTS = 1 << 24  # values per dense chunk (128 MiB in float64)
ENCODER_INPUTS = ("all_genes", "expressed")
# What the tokenizer does to RNA values before per-cell scaling. "none": the values as given (the
# original, and every model trained on them); "log1p_cp10k": raw counts -> log1p(counts per 10,000,
# library size over every column of the input), so a model trained on log-normalised values takes the
# raw counts users have. Such a model also takes what its training corpora held besides counts (see
# value_kinds): log values (bulk log2(x+1), log1p(CP10k)) are read as they are, linear normalised values
# (CP10k, TPM) get log1p; the report says which (EncodingReport.rna_values).
RNA_TRANSFORMS = ("none", "log1p_cp10k")
_APPLIED_TRANSFORMS = {
    ("log1p_cp10k", "counts"): ("log1p_cp10k", "raw counts -> log1p(CP10k)"),
    ("log1p_cp10k", "log"): ("none", "log values, read as they are"),
    ("log1p_cp10k", "linear"): ("log1p", "linear normalised values -> log1p"),
}


class ConstantCellWarning(UserWarning):
    """Some cells have max == min over their genes/proteins; see :func:`scale_rows`."""


@dataclass
class EncodingReport:
    """What one tokenizer call did: the gene and protein mapping plus the cells scaled as constant."""

    rna: MappingReport
    protein: MappingReport | None
    n_cells: int
    constant_rna_cells: int = 0
    constant_protein_cells: int = 0
    rna_values: str = "as given"  # what was done to the RNA values before per-cell scaling
    layout_filled: int = 0  # genes of a model's gene layout absent from the input, encoded as true zeros
    layout_dropped: int = 0  # mapped genes of the input outside the layout, left out

    def summary(self) -> str:
        lines = [f"{self.n_cells} cells ({self.rna_values})", self.rna.summary()]
        if self.protein is not None:
            lines.append(self.protein.summary())
        if self.constant_rna_cells:
            lines.append(f"{self.constant_rna_cells} cells with constant RNA (set to {SCALE_FLOOR})")
        if self.constant_protein_cells:
            lines.append(
                f"{self.constant_protein_cells} cells with constant protein values (set to {SCALE_FLOOR})"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- scaling
def scale_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row max-min scaling to [1e-8, 1], as the original: ``1e-8 + (v - min) / (max - min) * (1 - 1e-8)``.

    Computed in float64 over every column of the row (NaN ignored for min/max and kept as NaN).
    A constant row (max == min, e.g. all zero) has no scale: the original divides 0 by 0 and gets
    NaN; we give every non-NaN value of such a row ``1e-8`` (the bottom of the range: the row carries
    no information) and return a mask of those rows so callers can warn. Returns (scaled float64,
    constant-row mask).
    """
    v = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        lo = np.nanmin(v, axis=1, keepdims=True) if v.shape[1] else np.zeros((v.shape[0], 1))
        hi = np.nanmax(v, axis=1, keepdims=True) if v.shape[1] else np.zeros((v.shape[0], 1))
    return scale_between(v, lo, hi), (hi - lo)[:, 0] == 0


def scale_between(values: np.ndarray | float, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """The max-min formula with given bounds (broadcast): ``1e-8 + (v - lo) / (hi - lo) * (1 - 1e-8)``.

    The one place the formula lives (:func:`scale_rows` and the expressed-gene encoding, whose bounds
    include genes it does not store, both call it). Where ``hi == lo`` every non-NaN value gets ``1e-8``.
    """
    v = np.asarray(values, dtype=np.float64)
    span = np.asarray(hi, dtype=np.float64) - lo
    constant = span == 0
    out = (v - lo) / np.where(constant, 1.0, span) * (1 - SCALE_FLOOR) + SCALE_FLOOR
    return np.where(constant & ~np.isnan(v), SCALE_FLOOR, out)


def protein_passes(proteins: Any, max_len: int = 1000) -> Iterator[Any]:
    """Split proteins into decoder-sized passes of at most ``max_len`` each, in order.

    ``proteins`` may be a list of names/ids (yields lists) or a protein AnnData (yields column
    slices, so each slice keeps its values). The decoder sees ``max_len`` proteins per forward pass;
    run one tokenizer call (and one model pass) per chunk and concatenate the predictions. Split
    *mapped* proteins (see ``SCTranslatorTokenizer.split_proteins``) to fill every pass.
    """
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    n = proteins.shape[1] if _is_anndata(proteins) else len(proteins)
    for start in range(0, n, max_len):
        if _is_anndata(proteins):
            yield proteins[:, start : start + max_len]
        else:
            yield list(proteins[start : start + max_len])


def _is_anndata(obj: Any) -> bool:
    return (
        type(obj).__name__ in ("AnnData", "Raw") and hasattr(obj, "var_names") and hasattr(obj, "obs_names")
    )


# --------------------------------------------------------------------------- matrix access
class _Matrix:
    """Row-chunk access to a dense array, a scipy sparse matrix or (backed) AnnData ``X``."""

    def __init__(self, data: Any, what: str, transform: str = "none") -> None:
        import scipy.sparse as sp

        self.what = what
        self.transform = _check_choice("rna_transform", transform, RNA_TRANSFORMS)
        self.obs_names = None
        self.var_names = None
        self.var = None
        if _is_anndata(data):
            self.obs_names = list(map(str, data.obs_names))
            self.var_names = list(map(str, data.var_names))
            self.var = data.var
            x = data.X
            if x is None:
                raise ValueError(
                    f"{what} AnnData has no X matrix; put the values in X (e.g. adata.X = adata.layers[...])"
                )
            self.backed = bool(getattr(data, "isbacked", False))
        else:
            self.backed = False
            if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame
                self.var_names = list(map(str, data.columns))
                self.obs_names = list(map(str, data.index))
                x = data.to_numpy()
            elif type(data).__module__.startswith("torch"):
                x = data.detach().cpu().numpy()
            else:
                x = data
        if sp.issparse(x):
            if x.format not in ("csr", "csc"):
                x = x.tocsr()
            elif x.format == "csc":
                x = x.tocsr()  # row chunks of CSC are slow; one conversion per call
        elif not self.backed and not hasattr(x, "shape"):
            x = np.asarray(x)
        if not self.backed and isinstance(x, np.ndarray) and x.ndim == 1:
            x = x[None, :]
        if len(x.shape) != 2:
            raise ValueError(f"{what} must be a 2-D cells x features matrix, got shape {tuple(x.shape)}")
        self.x = x
        self.shape = (int(x.shape[0]), int(x.shape[1]))

    def adapt_transform(self) -> str:
        """Choose the transform this input needs from the kind of its values (first 64 rows), as the
        training corpora were read; returns what was done, in words."""
        self.kind = value_kind(self.raw_rows(0, min(self.shape[0], 64)))
        self.applied, done = _APPLIED_TRANSFORMS.get((self.transform, self.kind), (self.transform, ""))
        return done or ("as given" if self.applied == "none" else "raw counts -> log1p(CP10k)")

    def rows(self, start: int, stop: int):
        """Rows ``start:stop`` (CSR or dense), after the transform."""
        block = self.raw_rows(start, stop)
        applied = getattr(self, "applied", self.transform)
        if applied == "log1p_cp10k":
            block = _log1p_cp10k(block, start, self.obs_names)
        elif applied == "log1p":
            block = _log1p(block, start, self.obs_names)
        return block

    def raw_rows(self, start: int, stop: int):
        """Rows ``start:stop`` as stored (CSR with canonical indices, or dense)."""
        import scipy.sparse as sp

        block = self.x[start:stop]
        if sp.issparse(block):
            block = block.tocsr() if block.format != "csr" else block
            if not block.has_canonical_format:
                block = block.copy()
                block.sum_duplicates()
            return block
        return np.asarray(block)


# --------------------------------------------------------------------------- the tokenizer
class SCTranslatorTokenizer(FeatureExtractionMixin):
    r"""Gene "tokenizer" of scTranslator: names -> token ids, counts -> per-cell scaled values.

    Args:
        vocab: the :class:`GeneVocab` (id tables); build one with :meth:`from_original_tables`
            (token ids of the released checkpoints) or :meth:`from_ncbi_gene_info`.
        max_length: genes per cell (encoder length; the released model needs 20,000).
        protein_max_length: proteins per decoder pass (1,000 for the released model).
        padding: ``"max_length"`` (pad every cell to ``max_length``, as the released model needs)
            or ``"longest"`` (to the number of mapped genes when shorter).
        truncation: ``"first"`` keeps the first ``max_length`` mapped genes in the data's order (the
            original aligned mode); ``"random"`` keeps a random ``max_length`` of them, in random order
            (the original unaligned mode), drawn per cell from ``numpy.random.default_rng(seed)``.
        species: ``"auto"``, ``"human"`` or ``"mouse"`` (case and ortholog rules, see ``gene_ids``).
        overrides: name -> ``"SYMBOL"`` / ``"entrez:<id>"`` / ``"token:<id>"`` / ``"control"`` / None,
            applied to genes and proteins before any rule; saved with the tokenizer.
        encoder_inputs: ``"all_genes"`` (every mapped gene, zeros included: the original encoding) or
            ``"expressed"`` (the variant's encoding: only each cell's non-zero genes, so lengths vary
            per cell; use ``padding="longest"``). Values are scaled over all mapped genes either way,
            so an expressed gene gets the same value in both encodings. ``predict_proteins`` and the
            training collator pass the model config's ``encoder_inputs``; the saved value here is the
            default for direct calls.
        expressed_zero_genes: with ``"expressed"``, also this many zero genes per cell (value = the
            scaled zero, ``1e-8``). With ``truncation="first"`` they are the zero genes ranked first
            by a hash of (token id, ``seed``), so the choice does not depend on gene order; with
            ``"random"`` they are drawn per cell. More expressed genes than ``max_length``: ``"first"``
            keeps the highest values (ties: lower token id), ``"random"`` a random subset.

    Call with an expression matrix (see :meth:`__call__`). Rules worth knowing:

    * Genes that do not map are dropped *before* scaling (as the original's conversion script did)
      and listed in the report; a column mapping to a token another one took (duplicate names, two
      aliases of one gene, two barcodes of one antibody) is dropped and reported too: for genes the
      name that sorts first wins, so column order never matters; for proteins the first column (a
      :class:`UserWarning` says how many).
    * Constant cells (max == min over the mapped genes, e.g. all zero) get ``1e-8`` at every gene
      instead of the original's NaN, with a :class:`ConstantCellWarning` giving the count.
    * RNA must be finite and non-negative (raw counts or log-normalised values); protein values may
      be NaN (missing: ``labels`` NaN there) but not infinite.
    * More mapped proteins than ``protein_max_length`` is an error unless ``protein_truncation=True``
      (keeps the first ones, as the original); use :meth:`split_proteins` / :func:`protein_passes`.
    """

    model_input_names = ["input_ids", "input_values", "attention_mask"]

    def __init__(
        self,
        vocab: GeneVocab | None = None,
        max_length: int = 20000,
        protein_max_length: int = 1000,
        padding: str = "max_length",
        truncation: str = "first",
        species: str = "auto",
        overrides: Mapping[str, Any] | None = None,
        vocab_file: str = VOCAB_FILE_NAME,
        encoder_inputs: str = "all_genes",
        expressed_zero_genes: int = 0,
        rna_transform: str = "none",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("vocab_size", None)  # informational in the saved config
        kwargs.pop("n_added_genes", None)
        super().__init__(**kwargs)
        if vocab is None:
            raise ValueError(
                "SCTranslatorTokenizer needs a gene vocabulary: use "
                "SCTranslatorTokenizer.from_original_tables(DIR), "
                ".from_ncbi_gene_info(FILE) or .from_pretrained(FOLDER)"
            )
        self._vocab = vocab
        self.max_length = int(max_length)
        self.protein_max_length = int(protein_max_length)
        self.padding = _check_choice("padding", padding, ("max_length", "longest"))
        self.truncation = _check_choice("truncation", truncation, ("first", "random"))
        self.species = _check_choice("species", species, ("auto", "human", "mouse"))
        self.overrides = dict(overrides or {})
        self.vocab_file = vocab_file
        self.encoder_inputs = _check_choice("encoder_inputs", encoder_inputs, ENCODER_INPUTS)
        self.expressed_zero_genes = _check_zero_genes(expressed_zero_genes)
        self.rna_transform = _check_choice("rna_transform", rna_transform, RNA_TRANSFORMS)
        self._cache: dict[Any, MappingReport] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_original_tables(cls, directory: str | os.PathLike[str], **kwargs: Any) -> SCTranslatorTokenizer:
        """Tokenizer with the released checkpoints' token ids, from the four original tables (TSV or "
        "pickles)."""
        return cls(vocab=GeneVocab.from_original_tables(directory), **kwargs)

    @classmethod
    def from_ncbi_gene_info(
        cls,
        path: str | os.PathLike[str],
        tax_id: int = 9606,
        gene_types: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> SCTranslatorTokenizer:
        """A fresh vocabulary from NCBI ``gene_info`` (ids are *not* those of the released checkpoints)."""
        return cls(vocab=GeneVocab.from_ncbi_gene_info(path, tax_id=tax_id, gene_types=gene_types), **kwargs)

    @property
    def vocab(self) -> GeneVocab:
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return self._vocab.vocab_size

    @property
    def added_genes(self) -> dict[str, int]:
        return dict(self._vocab.added)

    def add_genes(self, names: Sequence[str] | str) -> dict[str, int]:
        """Give names that do not resolve ids from the reserved range (stable: same name -> same id).

        Names that already resolve keep their id (reported in the returned mapping all the same).
        Saved by :meth:`save_pretrained`. Returns name -> token id.
        """
        if isinstance(names, str):
            names = [names]
        out: dict[str, int] = {}
        for name in names:
            report = resolve_names(self._vocab, [name], "protein", self.species, self.overrides)
            if report.status[0] == "mapped":
                out[name] = int(report.token_ids[0])
            else:
                out[name] = self._vocab.add(name)
        self._cache.clear()
        return out

    # ------------------------------------------------------------------ id resolution
    def resolve(
        self,
        names: Sequence[Any],
        kind: str = "gene",
        species: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        is_control: Sequence[bool] | None = None,
    ) -> MappingReport:
        """Map names to token ids (cached per name tuple); ``kind="protein"`` adds the panel rules."""
        merged = {**self.overrides, **(overrides or {})}
        species = species or self.species
        key = (
            kind,
            species,
            tuple(map(str, names)),
            tuple(sorted((k, str(v)) for k, v in merged.items())),
            None if is_control is None else tuple(bool(c) for c in is_control),
            len(self._vocab.added),
        )
        report = self._cache.get(key)
        if report is None:
            report = resolve_names(self._vocab, list(names), kind, species, merged, is_control)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = report
        return report

    def convert_genes_to_ids(
        self, names: Sequence[str] | str, kind: str = "gene"
    ) -> list[int | None] | int | None:
        """Token id per name (``None`` when it does not map). Duplicates keep their id here."""
        single = isinstance(names, str)
        report = resolve_names(
            self._vocab, [names] if single else list(names), kind, self.species, self.overrides
        )
        ids = [
            int(t) if s in ("mapped", "duplicate") else None
            for t, s in zip(report._dup_tokens.tolist(), report.status, strict=True)
        ]
        return ids[0] if single else ids

    def convert_ids_to_genes(self, ids: Sequence[int]) -> list[str | None]:
        names = self._vocab.token_names()
        return [names.get(int(i)) for i in ids]

    def split_proteins(
        self, proteins: Sequence[Any], protein_max_length: int | None = None
    ) -> list[list[Any]]:
        """Resolve ``proteins`` and split the mapped ones into passes of at most ``protein_max_length``."""
        limit = protein_max_length or self.protein_max_length
        if len(proteins) and all(isinstance(p, (int, np.integer)) for p in proteins):
            return list(protein_passes(list(proteins), limit))
        report = self.resolve(list(proteins), kind="protein")
        return list(protein_passes(report.mapped, limit))

    # ------------------------------------------------------------------ encoding
    def __call__(
        self,
        rna: Any = None,
        gene_names: Sequence[str] | None = None,
        gene_ids: Sequence[int] | None = None,
        proteins: Any = None,
        protein_values: Any = None,
        max_length: int | None = None,
        protein_max_length: int | None = None,
        padding: str | None = None,
        truncation: str | None = None,
        protein_truncation: bool = False,
        seed: int | None = None,
        return_tensors: str | None = "pt",
        return_report: bool = False,
        species: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
        encoder_inputs: str | None = None,
        expressed_zero_genes: int | None = None,
        rna_transform: str | None = None,
        return_cell_scale: bool = False,
        gene_layout: Sequence[int] | None = None,
    ) -> BatchFeature | tuple[BatchFeature, EncodingReport]:
        """Encode cells for scTranslator.

        Args:
            rna: cells x genes: AnnData (also backed, read in row chunks), scipy CSR/CSC, numpy array,
                torch tensor or DataFrame. Gene names come from ``gene_names``, else ``gene_ids`` (token
                ids), else ``var['my_Id']`` (data converted by the original script: token ids), else
                ``var_names`` / DataFrame columns.
            proteins: protein names (resolved with the panel rules), token ids, or a protein AnnData
                with the same cells in the same order (its ``X`` gives ``labels``; ``var['is_control']``
                marks controls).
            protein_values: cells x proteins values for ``proteins`` given as a list (gives ``labels``).
            protein_truncation: keep only the first ``protein_max_length`` mapped proteins (scaled over
                all of them first, as the original) instead of raising.
            seed: seeds ``truncation="random"`` (and the zero genes of ``encoder_inputs="expressed"``).
            encoder_inputs / expressed_zero_genes / rna_transform: override the tokenizer's settings
                for this call.
            return_report: also return an :class:`EncodingReport`.
            return_cell_scale: also return what the per-cell scaling removes, for models with the protein
                scale part: ``cell_covariates`` (float32, cells x 4: log1p of the library size over every
                column as given, log1p of the mapped genes detected, the RNA minimum and maximum the values
                were scaled between) and, with protein values, ``protein_scale_labels`` (float32, cells x
                2: the minimum and maximum the proteins were scaled between; NaN when none is measured).

            gene_layout: the ordered token ids a position-reading model was trained on: the input's genes are
                reordered to it, layout genes the input lacks are true zeros, and mapped genes outside it are
                left out of the encoding and the per-cell scaling (they still count in the library size).
                The report says how many were filled and left out.

        Returns:
            ``BatchFeature`` with ``input_ids`` (int64), ``input_values`` (float32), ``attention_mask``
            (bool), and with proteins ``protein_ids`` (int64), ``protein_attention_mask`` (bool), plus
            ``labels`` (float32, scaled, NaN where missing, 0 at padding) when values are known.
        """
        max_length = int(max_length or self.max_length)
        protein_max_length = int(protein_max_length or self.protein_max_length)
        padding = _check_choice("padding", padding or self.padding, ("max_length", "longest"))
        truncation = _check_choice("truncation", truncation or self.truncation, ("first", "random"))
        encoder_inputs = _check_choice("encoder_inputs", encoder_inputs or self.encoder_inputs, ENCODER_INPUTS)
        if expressed_zero_genes is None:
            expressed_zero_genes = self.expressed_zero_genes
        zero_genes = _check_zero_genes(expressed_zero_genes)
        if rna is None:
            raise ValueError("pass the expression matrix as rna=... (AnnData, sparse or dense cells x genes)")
        transform = getattr(self, "rna_transform", "none") if rna_transform is None else rna_transform
        matrix = _Matrix(rna, "RNA", transform)
        n_cells, n_vars = matrix.shape
        if n_cells == 0 or n_vars == 0:
            raise ValueError(f"the RNA matrix is empty ({n_cells} cells x {n_vars} genes); nothing to encode")
        rna_values = matrix.adapt_transform()

        rna_report = self._rna_report(matrix, gene_names, gene_ids, species, overrides)
        columns = rna_report.columns
        if columns.size == 0:
            examples = ", ".join(rna_report.names[:5])
            raise ValueError(
                f"none of the {n_vars} genes is in the scTranslator vocabulary (first names: {examples}). "
                "Accepted formats: human symbols or aliases (CD4), Entrez ids ('920'), mouse symbols "
                "(Cd4), mouse "
                "Ensembl ids (ENSMUSG..., version suffix ok), or token ids via gene_ids=... / "
                "var['my_Id']. If "
                "the names are elsewhere (e.g. adata.var['gene_symbols']), pass gene_names=adata.var[...]."
                + _human_ensembl_hint(rna_report.unmapped)
            )
        if rna_report.n_duplicates:
            warnings.warn(
                f"{rna_report.n_duplicates} gene columns map to a token another column already has (e.g. "
                f"{rna_report.duplicates[0][0]!r} = {rna_report.duplicates[0][1]!r}); the name that sorts first "
                "is kept (the first column among identical names), the others dropped (see the report's duplicates)",
                UserWarning,
                stacklevel=2,
            )
        _warn_about_input_quality(rna_report, matrix)
        tokens = rna_report.kept_token_ids
        filled = dropped = 0
        if gene_layout is not None:
            columns, tokens, filled, dropped = _align_to_layout(rna_report, gene_layout)
        n_kept = int(columns.size)
        if encoder_inputs == "expressed":
            ids, values, mask, n_const = self._encode_rna_expressed(
                matrix, columns, tokens, max_length, padding, truncation, seed, zero_genes, chunk_size,
            )
        else:
            width = max_length if padding == "max_length" else min(n_kept, max_length)
            ids, values, mask, n_const = self._encode_rna(
                matrix, columns, tokens, width, max_length, truncation, seed, chunk_size
            )
        if n_const:
            warnings.warn(
                f"{n_const} of {n_cells} cells have constant RNA over the {n_kept} mapped genes (e.g. all "
                "zero): "
                "max-min scaling is undefined there (the original gives NaN); their values are set to "
                f"{SCALE_FLOOR}. "
                "Consider removing empty cells (QC) first.",
                ConstantCellWarning,
                stacklevel=2,
            )
        data: dict[str, Any] = {"input_ids": ids, "input_values": values, "attention_mask": mask}
        if return_cell_scale:
            data["cell_covariates"] = _cell_covariates(matrix, columns, chunk_size)

        protein_report = None
        n_const_p = 0
        if proteins is not None:
            protein_report, pdata, n_const_p = self._encode_proteins(
                proteins,
                protein_values,
                matrix,
                n_cells,
                protein_max_length,
                padding,
                protein_truncation,
                species,
                overrides,
            )
            if not return_cell_scale:
                pdata.pop("protein_scale_labels", None)
            data.update(pdata)
        features = BatchFeature(data=data, tensor_type=return_tensors)
        if return_report:
            report = EncodingReport(rna_report, protein_report, n_cells, n_const, n_const_p, rna_values,
                                    layout_filled=filled, layout_dropped=dropped)
            return features, report
        return features

    def _rna_report(self, matrix: _Matrix, gene_names, gene_ids, species, overrides) -> MappingReport:
        n_vars = matrix.shape[1]
        if gene_names is not None and gene_ids is not None:
            raise ValueError("pass either gene_names or gene_ids, not both")
        if gene_ids is not None:
            ids = np.asarray(gene_ids)
            if ids.shape != (n_vars,):
                raise ValueError(
                    f"gene_ids has {ids.size} entries but the RNA matrix has {n_vars} gene columns; "
                    "give one token id per column, in column order"
                )
            return report_from_token_ids(self._vocab, ids)
        if gene_names is not None:
            names = [str(n) for n in list(gene_names)]
            if len(names) != n_vars:
                raise ValueError(
                    f"gene_names has {len(names)} entries but the RNA matrix has {n_vars} gene columns; "
                    "give one name per column, in column order"
                )
            return self.resolve(names, "gene", species, overrides)
        if matrix.var is not None and "my_Id" in matrix.var.columns:
            return report_from_token_ids(self._vocab, np.asarray(matrix.var["my_Id"]).astype(np.int64))
        if matrix.var_names is None:
            raise ValueError("a plain matrix has no gene names: pass gene_names=[...] (or gene_ids=[...])")
        return self.resolve(matrix.var_names, "gene", species, overrides)

    def _encode_rna(self, matrix, columns, tokens, width, max_length, truncation, seed, chunk_size):
        import scipy.sparse as sp

        n_cells, n_vars = matrix.shape
        n_kept = columns.size
        keep_n = min(n_kept, max_length)
        # np.empty + full writes in the workers: the pages are touched once, in parallel
        ids_out = np.empty((n_cells, width), dtype=np.int64)
        values_out = np.empty((n_cells, width), dtype=np.float32)
        mask_out = np.empty((n_cells, width), dtype=bool)
        identity = n_kept == n_vars and bool((columns == np.arange(n_vars)).all())
        rank_of_col = None
        if not identity:  # a column of -1 (a layout gene the input lacks) has no entries: implicit zeros
            present = columns >= 0
            rank_of_col = np.full(n_vars, -1, dtype=np.int64)
            rank_of_col[columns[present]] = np.flatnonzero(present)
        random_mode = truncation == "random" and n_kept > max_length
        rng = np.random.default_rng(seed) if random_mode else None
        step = chunk_size or max(1, min(4096, _CHUNK_ELEMENTS // max(n_kept, 1)))
        workers = 1 if (random_mode or matrix.backed) else min(2, os.cpu_count() or 1)
        if workers > 1 and chunk_size is None:
            step = max(1, min(step, -(-n_cells // workers)))
        obs_names = matrix.obs_names

        def work(start: int, stop: int, perms: np.ndarray | None) -> int:
            block = matrix.rows(start, stop)
            ids, mask = ids_out[start:stop], mask_out[start:stop]
            ids[:, keep_n:] = 0
            mask[:, :keep_n] = True
            mask[:, keep_n:] = False
            ids[:, :keep_n] = tokens[:keep_n] if perms is None else tokens[perms]
            out = values_out[start:stop]
            out[:, keep_n:] = 0
            if sp.issparse(block):
                const = _scale_sparse_block(block, rank_of_col, n_kept, keep_n, perms, out, start, obs_names)
            else:
                dense = block if identity else _take_columns(block, columns)
                _check_rna(dense, start, obs_names, _first_bad_dense_row)
                scaled, const = scale_rows(dense)
                out[:, :keep_n] = (
                    scaled[:, :keep_n] if perms is None else np.take_along_axis(scaled, perms, axis=1)
                )
            return int(const.sum())

        bounds = [(a, min(a + step, n_cells)) for a in range(0, n_cells, step)]
        if workers > 1 and len(bounds) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:
                n_const = sum(pool.map(lambda ab: work(ab[0], ab[1], None), bounds))
        else:
            n_const = 0
            for a, b in bounds:
                perms = None
                if random_mode:
                    perms = np.stack([rng.permutation(n_kept)[:max_length] for _ in range(b - a)])
                n_const += work(a, b, perms)
        return ids_out, values_out, mask_out, n_const

    def _encode_rna_expressed(
        self, matrix, columns, tokens, max_length, padding, truncation, seed, zero_genes, chunk_size
    ):
        """The variant's encoding: per cell its non-zero genes (+ ``zero_genes`` zero genes), left-aligned.

        Scaled exactly as :meth:`_encode_rna` (max-min over all mapped genes, implicit zeros
        included); width = the longest cell (at least 1) or ``max_length`` with ``padding="max_length"``.
        """
        import scipy.sparse as sp

        n_cells = matrix.shape[0]
        n_kept = int(columns.size)
        tokens = np.asarray(tokens, dtype=np.int64)
        rng = np.random.default_rng(seed) if truncation == "random" else None
        zero_order = None
        if zero_genes and rng is None:  # a fixed ranking of genes by a hash of their token id
            zero_order = np.argsort(_mix64(tokens.astype(np.uint64) ^ _mix64(np.uint64(seed or 0))), kind="stable")
        step = chunk_size or max(1, min(4096, _CHUNK_ELEMENTS // max(n_kept, 1)))
        obs_names = matrix.obs_names
        cells: list[tuple[np.ndarray, np.ndarray]] = []
        n_const = 0
        for start in range(0, n_cells, step):
            block = matrix.rows(start, min(start + step, n_cells))
            if sp.issparse(block):
                sub = _take_columns(block, columns).tocsr()
                _check_rna(sub.data, start, obs_names, lambda bad, m=sub: int(np.searchsorted(
                    m.indptr, np.argmax(bad), side="right") - 1))
            else:
                dense = _take_columns(np.asarray(block), columns)
                _check_rna(dense, start, obs_names, _first_bad_dense_row)
                sub = sp.csr_matrix(dense)
            for r in range(sub.shape[0]):
                lo_, hi_ = sub.indptr[r], sub.indptr[r + 1]
                ranks = sub.indices[lo_:hi_].astype(np.int64)
                raw = sub.data[lo_:hi_].astype(np.float64)
                implicit = ranks.size < n_kept
                lo = min(raw.min(), 0.0) if implicit and raw.size else (raw.min() if raw.size else 0.0)
                hi = max(raw.max(), 0.0) if implicit and raw.size else (raw.max() if raw.size else 0.0)
                n_const += int(hi == lo)
                expressed = raw != 0
                ranks, raw = ranks[expressed], raw[expressed]
                scaled, zero_value = scale_between(raw, lo, hi), float(scale_between(0.0, lo, hi))
                order = np.argsort(ranks, kind="stable")
                ranks, scaled = ranks[order], scaled[order]
                if ranks.size > max_length:
                    if rng is None:  # the highest values, ties by token id: independent of gene order
                        keep = np.lexsort((tokens[ranks], -scaled))[:max_length]
                    else:
                        keep = rng.choice(ranks.size, max_length, replace=False)
                    keep.sort()
                    ranks, scaled = ranks[keep], scaled[keep]
                n_zero = min(zero_genes, max_length - ranks.size, n_kept - ranks.size)
                if n_zero > 0:
                    is_expressed = np.zeros(n_kept, dtype=bool)
                    is_expressed[ranks] = True
                    if rng is None:
                        zeros = zero_order[~is_expressed[zero_order]][:n_zero]
                    else:
                        zeros = rng.choice(np.flatnonzero(~is_expressed), n_zero, replace=False)
                    ranks = np.concatenate([ranks, zeros])
                    scaled = np.concatenate([scaled, np.full(n_zero, zero_value)])
                cells.append((tokens[ranks], scaled.astype(np.float32)))
        longest = max((c[0].size for c in cells), default=0)
        width = max_length if padding == "max_length" else max(1, longest)
        ids_out = np.zeros((n_cells, width), dtype=np.int64)
        values_out = np.zeros((n_cells, width), dtype=np.float32)
        mask_out = np.zeros((n_cells, width), dtype=bool)
        for i, (cell_ids, cell_values) in enumerate(cells):
            ids_out[i, : cell_ids.size] = cell_ids
            values_out[i, : cell_ids.size] = cell_values
            mask_out[i, : cell_ids.size] = True
        return ids_out, values_out, mask_out, n_const

    def _encode_proteins(
        self, proteins, protein_values, matrix, n_cells, max_len, padding, truncate, species, overrides
    ):
        values = None
        is_control = None
        if _is_anndata(proteins):
            if protein_values is not None:
                raise ValueError(
                    "protein values come from the protein AnnData's X; do not pass protein_values too"
                )
            _check_same_cells(matrix, proteins)
            names = list(map(str, proteins.var_names))
            if "is_control" in proteins.var.columns:
                is_control = proteins.var["is_control"].astype(bool).tolist()
            pm = _Matrix(proteins, "protein")
            values = pm.rows(0, pm.shape[0])
            values = values.toarray() if hasattr(values, "toarray") else np.asarray(values)
            report = self.resolve(names, "protein", species, overrides, is_control)
        else:
            plist = list(proteins) if not isinstance(proteins, str) else [proteins]
            if len(plist) and all(isinstance(p, (int, np.integer)) for p in plist):
                report = report_from_token_ids(self._vocab, np.asarray(plist, dtype=np.int64), kind="protein")
            else:
                report = self.resolve([str(p) for p in plist], "protein", species, overrides)
            if protein_values is not None:
                pv = _Matrix(protein_values, "protein_values")
                values = pv.rows(0, pv.shape[0])
                values = values.toarray() if hasattr(values, "toarray") else np.asarray(values)
                if values.shape != (n_cells, len(plist)):
                    raise ValueError(
                        f"protein_values has shape {values.shape}, expected ({n_cells} cells, "
                        f"{len(plist)} proteins)"
                    )
        columns = report.columns
        n_kept = int(columns.size)
        if n_kept == 0:
            raise ValueError(
                f"none of the {report.n_total} proteins maps to a token (unmapped: {report.unmapped[:5]}, "
                "controls: "
                f"{report.controls[:5]}); use overrides={{name: 'SYMBOL'}} or tokenizer.add_genes([...])"
            )
        if n_kept > max_len and not truncate:
            raise ValueError(
                f"{n_kept} mapped proteins exceed protein_max_length={max_len} (one decoder pass). Split "
                "them with "
                f"tokenizer.split_proteins(proteins) / protein_passes(proteins, {max_len}) and encode "
                "each pass, or "
                "pass protein_truncation=True to keep only the first ones as the original did."
            )
        keep_n = min(n_kept, max_len)
        width = max_len if padding == "max_length" else keep_n
        ids = np.zeros((n_cells, width), dtype=np.int64)
        ids[:, :keep_n] = report.kept_token_ids[:keep_n]
        mask = np.zeros((n_cells, width), dtype=bool)
        mask[:, :keep_n] = True
        out: dict[str, Any] = {"protein_ids": ids, "protein_attention_mask": mask}
        n_const = 0
        if values is not None:
            sub = np.asarray(values[:, columns], dtype=np.float64)
            if np.isinf(sub).any():
                raise ValueError("protein values contain inf; replace them (NaN marks a missing value)")
            scaled, const = scale_rows(sub)
            all_nan = np.isnan(sub).all(axis=1)
            bounds = np.full((n_cells, 2), np.nan, dtype=np.float32)
            if (~all_nan).any():
                bounds[~all_nan] = np.stack([np.nanmin(sub[~all_nan], axis=1), np.nanmax(sub[~all_nan], axis=1)], 1)
            out["protein_scale_labels"] = bounds
            const &= ~all_nan
            n_const = int(const.sum())
            if n_const:
                warnings.warn(
                    f"{n_const} of {n_cells} cells have constant protein values: set to {SCALE_FLOOR} "
                    "(the original "
                    "gives NaN)",
                    ConstantCellWarning,
                    stacklevel=3,
                )
            labels = np.zeros((n_cells, width), dtype=np.float32)
            labels[:, :keep_n] = scaled[:, :keep_n]
            out["labels"] = labels
        return report, out, n_const

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}
        out["feature_extractor_type"] = type(self).__name__
        out["vocab_size"] = self._vocab.vocab_size
        out["n_added_genes"] = len(self._vocab.added)
        auto_map = out.get("auto_map") or {}
        if isinstance(auto_map.get("AutoFeatureExtractor"), (list, tuple)):
            # transformers treats any class named "...Tokenizer" as a (slow, fast) text-tokenizer pair;
            # AutoFeatureExtractor needs the plain "module.Class" string
            auto_map["AutoFeatureExtractor"] = auto_map["AutoFeatureExtractor"][0]
        return out

    def save_pretrained(
        self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any
    ):
        """Write ``preprocessor_config.json`` and the vocabulary file (``gene_vocab.json``)."""
        if os.path.isfile(save_directory):
            raise ValueError(f"{save_directory} is a file; give a folder")
        os.makedirs(save_directory, exist_ok=True)
        files_timestamps = self._get_files_timestamps(save_directory) if push_to_hub else None
        vocab_path = os.path.join(save_directory, self.vocab_file)
        self._vocab.save(vocab_path)
        written = super().save_pretrained(save_directory, push_to_hub=False)
        if push_to_hub:
            commit_message = kwargs.pop("commit_message", None)
            repo_id = kwargs.pop("repo_id", str(save_directory).split(os.path.sep)[-1])
            repo_id = self._create_repo(repo_id, **kwargs) if hasattr(self, "_create_repo") else repo_id
            self._upload_modified_files(
                save_directory,
                repo_id,
                files_timestamps,
                commit_message=commit_message,
                token=kwargs.get("token"),
            )
        return [*written, vocab_path]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any):
        """Load ``preprocessor_config.json`` and the vocabulary next to it (local folder or Hub repo)."""
        hub = {k: kwargs[k] for k in _HUB_KWARGS if kwargs.get(k) is not None}
        config, unused = cls.get_feature_extractor_dict(pretrained_model_name_or_path, **kwargs)
        for key in (*_HUB_KWARGS, "trust_remote_code", "code_revision"):
            unused.pop(key, None)
        vocab_name = config.get("vocab_file", VOCAB_FILE_NAME)
        path = str(pretrained_model_name_or_path)
        if os.path.isfile(path):
            vocab_path = os.path.join(os.path.dirname(path), vocab_name)
        elif os.path.isdir(path):
            vocab_path = os.path.join(path, hub.get("subfolder") or "", vocab_name)
        else:
            from transformers.utils import cached_file

            vocab_path = cached_file(path, vocab_name, **hub)
        if not vocab_path or not os.path.isfile(vocab_path):
            raise OSError(f"{pretrained_model_name_or_path} has no {vocab_name} (the gene vocabulary)")
        config = dict(config, vocab=GeneVocab.load(vocab_path))
        return cls.from_dict(config, **unused)

    def __repr__(self) -> str:
        settings = {k: v for k, v in self.to_dict().items() if k != "overrides"}
        return f"{type(self).__name__}({self._vocab!r}, {settings})"


# --------------------------------------------------------------------------- helpers
def _mix64(x: np.ndarray | np.uint64) -> np.ndarray:
    """splitmix64 finaliser: a fixed, well-mixed hash of unsigned 64-bit integers (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _check_zero_genes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"expressed_zero_genes must be an integer >= 0, got {value!r}")
    return int(value)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def _check_same_cells(matrix: _Matrix, proteins: Any) -> None:
    n_rna = matrix.shape[0]
    n_prot = proteins.shape[0]
    if matrix.obs_names is None:
        if n_rna != n_prot:
            raise ValueError(f"the RNA matrix has {n_rna} cells but the protein AnnData has {n_prot}")
        return
    rna_names = matrix.obs_names
    prot_names = list(map(str, proteins.obs_names))
    if rna_names == prot_names:
        return
    if set(rna_names) == set(prot_names) and n_rna == n_prot:
        raise ValueError(
            "the RNA and protein AnnData hold the same cells in a different order; align them first, e.g. "
            "adt = adt[rna.obs_names]"
        )
    common = len(set(rna_names) & set(prot_names))
    raise ValueError(
        f"the RNA ({n_rna} cells) and protein ({n_prot} cells) AnnData do not hold the same cells "
        f"({common} shared); "
        "keep the shared cells in one order first, e.g. common = rna.obs_names.intersection(adt.obs_names); "
        "rna, adt = rna[common], adt[common]"
    )


def _first_bad_dense_row(bad: np.ndarray) -> int:
    return int(np.argmax(bad.any(axis=1)))


def _cell_label(obs_names: Sequence[str] | None, index: int) -> str:
    return repr(obs_names[index]) if obs_names is not None else f"#{index}"


class InputQualityWarning(UserWarning):
    """The input looks unlike what the model was trained on (few genes mapped, mixed species, log values)."""


_HUMAN_ROUTES = {"symbol", "entrez", "ensembl"}
_MOUSE_ROUTES = {"mouse_symbol", "mouse_ensembl"}


def _human_ensembl_hint(unmapped: Sequence[str]) -> str:
    """What to do when most unmapped names are human Ensembl ids (the original id tables have none); else ""."""
    if sum(str(n).upper().startswith("ENSG") for n in unmapped) <= len(unmapped) / 2:
        return ""
    return (" Most unmapped names are human Ensembl ids (ENSG...), which the original id tables do not cover: "
            "pass the symbols (gene_names=adata.var['gene_symbols']); a model trained from scratch can use a "
            "vocabulary that has them, built from NCBI's gene_info (sctranslator vocab from-ncbi).")


def _warn_about_input_quality(report: MappingReport, matrix: _Matrix) -> None:
    """Warn (once per call) about inputs that give plausible-looking but poor predictions."""
    non_control = [n for n, s in zip(report.names, report.status, strict=True) if s != "control"]
    if len(non_control) >= 20 and report.mapped_fraction < 0.10:
        warnings.warn(
            f"only {report.mapped_fraction:.1%} of {len(non_control)} genes map to the vocabulary; predictions "
            f"from so few genes are unreliable.{_human_ensembl_hint(report.unmapped)} See the report "
            "(return_report=True) for what did not map.",
            InputQualityWarning, stacklevel=3,
        )
    routes = report.route_counts
    human = sum(routes.get(r, 0) for r in _HUMAN_ROUTES)
    mouse = sum(routes.get(r, 0) for r in _MOUSE_ROUTES)
    if min(human, mouse) >= max(10, 0.05 * (human + mouse)):
        warnings.warn(
            f"the genes look like a mix of species ({human} mapped as human, {mouse} as mouse symbols or ids); "
            "pass species='human' or species='mouse' if that is not intended",
            InputQualityWarning, stacklevel=3,
        )
    if matrix.transform == "none" and matrix.kind in ("log", "linear"):
        looks = "log-normalised" if matrix.kind == "log" else "normalised (e.g. counts per 10,000)"
        warnings.warn(
            f"the expression values are not integer counts: they look {looks}. This model reads the values "
            "as given (rna_transform='none') and was trained on raw counts (scaled per cell); pass raw counts "
            "(e.g. adata.layers['counts'] or adata.raw) for predictions on the training scale.",
            InputQualityWarning, stacklevel=3,
        )
    elif matrix.kind == "linear" and matrix.applied == "log1p":
        warnings.warn(
            "the expression values are normalised but not logged (e.g. counts per 10,000 or TPM): they are "
            "read as log1p of the values; raw counts (adata.layers['counts'] or adata.raw) match the "
            "training data best",
            InputQualityWarning, stacklevel=3,
        )


def _align_to_layout(report: MappingReport, layout: Sequence[int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(columns, tokens, filled, dropped) for encoding in ``layout`` order: the input column of each layout
    token (-1 where the input lacks it: a true zero), the layout's tokens, how many were filled, how many mapped
    input columns fall outside the layout."""
    tokens = np.asarray(layout, dtype=np.int64)
    column_of = {int(t): int(c) for t, c in zip(report.kept_token_ids, report.columns, strict=True)}
    columns = np.asarray([column_of.get(int(t), -1) for t in tokens], dtype=np.int64)
    filled = int((columns < 0).sum())
    dropped = len(column_of) - (tokens.size - filled)
    if filled == tokens.size:
        raise ValueError(f"none of the model's {tokens.size} layout genes is in the input; is it the right data?")
    return columns, tokens, filled, dropped


def _take_columns(block, columns: np.ndarray):
    """``block[:, columns]`` (CSR or dense), where a column of -1 -- a gene the input lacks -- is all zeros."""
    import scipy.sparse as sp

    present = columns >= 0
    if present.all():
        return block[:, columns]
    if sp.issparse(block):
        sub = block[:, columns[present]].tocsr()
        positions = np.flatnonzero(present)
        return sp.csr_matrix((sub.data, positions[sub.indices], sub.indptr), shape=(block.shape[0], columns.size))
    out = np.zeros((block.shape[0], columns.size), dtype=np.result_type(block.dtype, np.float32))
    out[:, present] = block[:, columns[present]]
    return out


def _cell_covariates(matrix: _Matrix, columns: np.ndarray, chunk_size: int | None) -> np.ndarray:
    """(cells, 4) float32: log1p library size (every column, as given), log1p detected mapped genes, and the
    minimum and maximum of the mapped genes after the RNA transform: what per-cell scaling leaves out."""
    import scipy.sparse as sp

    n_cells = matrix.shape[0]
    out = np.empty((n_cells, 4), dtype=np.float32)
    step = chunk_size or max(1, min(4096, _CHUNK_ELEMENTS // max(matrix.shape[1], 1)))
    for start in range(0, n_cells, step):
        stop = min(start + step, n_cells)
        raw = matrix.raw_rows(start, stop)
        mapped = _take_columns(matrix.rows(start, stop), columns)
        if sp.issparse(mapped):  # scipy's min/max count the implicit zeros
            mapped = mapped.tocsr()
            low, high = mapped.min(axis=1).toarray().ravel(), mapped.max(axis=1).toarray().ravel()
            row_of_value = np.repeat(np.arange(mapped.shape[0]), np.diff(mapped.indptr))
            detected = np.bincount(row_of_value[mapped.data != 0], minlength=mapped.shape[0])
        else:
            low, high, detected = mapped.min(axis=1), mapped.max(axis=1), (mapped != 0).sum(axis=1)
        library = np.asarray(raw.sum(axis=1), dtype=np.float64).ravel()
        out[start:stop] = np.stack([np.log1p(library), np.log1p(detected), low, high], axis=1)
    return out


def _check_block(block, start: int, obs_names) -> None:
    import scipy.sparse as sp

    if sp.issparse(block):
        _check_rna(block.data, start, obs_names,
                   lambda bad: int(np.searchsorted(block.indptr, np.argmax(bad), side="right") - 1))
    else:
        _check_rna(block, start, obs_names, _first_bad_dense_row)


def _log1p(block, start: int, obs_names):
    """log1p of a row block of linear normalised values (CP10k, TPM)."""
    _check_block(block, start, obs_names)
    return block.astype(np.float64).log1p() if hasattr(block, "log1p") else np.log1p(block.astype(np.float64))


def _log1p_cp10k(block, start: int, obs_names):
    """log1p(counts per 10,000) of a row block; library sizes over every column of the input."""
    import scipy.sparse as sp

    _check_block(block, start, obs_names)
    if sp.issparse(block):
        totals = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
    else:
        totals = block.sum(axis=1, dtype=np.float64)
    factors = 1e4 / np.where(totals > 0, totals, 1.0)
    if sp.issparse(block):
        out = block.astype(np.float64, copy=True)
        out.data *= np.repeat(factors, np.diff(out.indptr))
        np.log1p(out.data, out=out.data)
        return out
    return np.log1p(block.astype(np.float64) * factors[:, None])


def _check_rna(values: np.ndarray, start: int, obs_names, first_row) -> None:
    """Raise on NaN/inf/negative RNA; ``first_row(bad_mask)`` gives the block row of the first bad value."""
    if values.dtype.kind not in "fiub":
        raise TypeError(f"RNA values must be numbers, got dtype {values.dtype}")
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            raise ValueError(
                f"the RNA matrix has {int((~finite).sum())} NaN/inf values (first in cell "
                f"{_cell_label(obs_names, start + first_row(~finite))}). scTranslator needs finite, "
                "non-negative "
                "expression: fill them (e.g. numpy.nan_to_num) or drop those cells"
            )
    if values.size and values.min() < 0:
        raise ValueError(
            f"the RNA matrix has negative values (min {float(values.min()):.4g}, first in cell "
            f"{_cell_label(obs_names, start + first_row(values < 0))}); it looks scaled/centred (e.g. "
            "sc.pp.scale). "
            "Pass raw counts or log-normalised values (adata.raw, adata.layers['counts'])"
        )


def _scale_sparse_block(block, rank_of_col, n_kept, keep_n, perms, out, start, obs_names) -> np.ndarray:
    """Scale one CSR row block over the mapped columns, writing ``out`` (b x width float32); O(nnz) + fill."""
    b = block.shape[0]
    indptr = block.indptr
    rows = np.repeat(np.arange(b), np.diff(indptr))
    data = block.data
    if rank_of_col is None:  # every column kept, in order
        ranks = block.indices
    else:
        ranks = rank_of_col[block.indices]
        keep = ranks >= 0
        if not keep.all():
            rows, ranks, data = rows[keep], ranks[keep], data[keep]
    _check_rna(data, start, obs_names, lambda bad: int(rows[np.argmax(bad)]))
    nnz = np.bincount(rows, minlength=b)
    vals = data.astype(np.float64)
    hi = np.full(b, -np.inf)
    lo = np.full(b, np.inf)
    nonempty = nnz > 0
    if vals.size:
        starts = np.concatenate(([0], np.cumsum(nnz)[:-1]))[nonempty]
        hi[nonempty] = np.maximum.reduceat(vals, starts)
        lo[nonempty] = np.minimum.reduceat(vals, starts)
    implicit = nnz < n_kept  # the row has zeros that are not stored
    hi = np.where(implicit, np.maximum(hi, 0.0), hi)
    lo = np.where(implicit, np.minimum(lo, 0.0), lo)
    span = hi - lo
    constant = span == 0
    safe = np.where(constant, 1.0, span)
    zero_value = np.where(constant, SCALE_FLOOR, (0.0 - lo) / safe * (1 - SCALE_FLOOR) + SCALE_FLOOR)
    out[:, :keep_n] = zero_value.astype(np.float32)[:, None]
    scaled = (vals - lo[rows]) / safe[rows] * (1 - SCALE_FLOOR) + SCALE_FLOOR
    if constant.any():
        scaled[constant[rows]] = SCALE_FLOOR
    width = out.shape[1]
    if perms is None:
        flat = rows.astype(np.int64) * width + ranks
        if keep_n < n_kept:
            sel = ranks < keep_n
            flat, scaled = flat[sel], scaled[sel]
        out.reshape(-1)[flat] = scaled
    else:
        position = np.full((b, n_kept), -1, dtype=np.int64)
        np.put_along_axis(position, perms, np.arange(perms.shape[1])[None, :].repeat(b, 0), axis=1)
        pos = position[rows, ranks]
        sel = pos >= 0
        out[rows[sel], pos[sel]] = scaled[sel]
    return constant
