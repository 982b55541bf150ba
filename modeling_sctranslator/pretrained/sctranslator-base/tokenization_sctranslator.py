"""SCTranslatorTokenizer: expression matrices -> scTranslator inputs (gene ids, scaled values, masks).

A ``transformers`` feature extractor: ``save_pretrained`` writes ``preprocessor_config.json`` plus the
gene vocabulary in ``gene_vocab.json`` next to it, ``from_pretrained`` / ``AutoTokenizer`` read both
(``AutoFeatureExtractor`` too before transformers 5.25, which builds it from the settings alone). Only
same-folder relative imports, so ``register_for_auto_class`` can copy this file and its siblings into a
saved folder for ``trust_remote_code``. Never imports the model code.

The work is done in sibling modules, one seam each: :mod:`.matrix` (row chunks of any matrix, the RNA
transform), :mod:`.scaling` (the per-cell scaling rule), :mod:`.truncation` (which genes are kept),
:mod:`.encoders` (all genes, expressed genes, proteins) and :mod:`.checks` (input checks, warnings).
This module resolves names to token ids and holds the settings that are saved.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import BatchFeature, FeatureExtractionMixin

from .checks import (
    FEW_MAPPED,
    InputQualityWarning,
    check_choice,
    check_rna_mapped,
    check_same_cells,
    check_zero_genes,
    warn_about_duplicates,
    warn_about_input_quality,
)
from .encoders import encode_all_genes, encode_expressed, encode_proteins, protein_passes
from .gene_ids import MappingReport, RowNumberNames, is_missing_name, report_from_token_ids, resolve_names
from .matrix import RNA_TRANSFORMS, Matrix, ValueReading, align_to_layout, cell_covariates, is_anndata
from .scaling import SCALE_FLOOR, ConstantCellWarning, scale_between, scale_rows, warn_constant_cells
from .truncation import TRUNCATIONS
from .vocab import GeneVocab

TOKENIZER_CONFIG = "tokenizer_config.json"  # AutoTokenizer's entry point (the settings: preprocessor_config.json)

logger = logging.getLogger(__name__)

__all__ = [
    "ConstantCellWarning",
    "InputQualityWarning",
    "RNA_TRANSFORMS",
    "SCALE_FLOOR",
    "EncodingReport",
    "SCTranslatorTokenizer",
    "VOCAB_FILE_NAME",
    "protein_passes",
    "scale_rows",
    "scale_between",
]

VOCAB_FILE_NAME = "gene_vocab.json"
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")
ENCODER_INPUTS = ("all_genes", "expressed")


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



# --------------------------------------------------------------------------- the tokenizer
def _with_hgnc(vocab: GeneVocab, hgnc: bool | str | os.PathLike[str] | None) -> GeneVocab:
    """``vocab`` with the names of HGNC's table ``hgnc`` (:func:`.hgnc.hgnc_table`), or as it is."""
    from .hgnc import apply_hgnc, hgnc_table

    table = hgnc_table(hgnc)
    if table is None:
        return vocab
    updated, update = apply_hgnc(vocab, table)
    logger.info("%s", update.summary())
    return updated


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
      column named as the token's own gene wins, else the name that sorts first, so column order never
      matters; for proteins the first column (a :class:`UserWarning` says how many).
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
        self.padding = _padding_choice(padding, "max_length")
        self.truncation = _truncation_choice(truncation, "first")
        self.species = check_choice("species", species, ("auto", "human", "mouse"))
        self.overrides = dict(overrides or {})
        self.vocab_file = vocab_file
        self.encoder_inputs = check_choice("encoder_inputs", encoder_inputs, ENCODER_INPUTS)
        self.expressed_zero_genes = check_zero_genes(expressed_zero_genes)
        self.rna_transform = check_choice("rna_transform", rna_transform, RNA_TRANSFORMS)
        self._cache: dict[Any, MappingReport] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_original_tables(
        cls, directory: str | os.PathLike[str], hgnc: bool | str | os.PathLike[str] = True, **kwargs: Any
    ) -> SCTranslatorTokenizer:
        """Tokenizer with the released checkpoints' token ids, from the four original tables (TSV or pickles).

        ``hgnc``: resolve names by HGNC's ranking (approved, then previous symbol, then the table's alias pick)
        and add Ensembl gene ids — ``True`` with the HGNC table bundled with sctranslator, a path for another
        download of it, ``False`` for the original tables exactly as they are (old symbols such as ``SEPT2``
        then reach the wrong gene; see ``tokenization.hgnc``). Token ids are the same either way.
        """
        return cls(vocab=_with_hgnc(GeneVocab.from_original_tables(directory), hgnc), **kwargs)

    @classmethod
    def from_ncbi_gene_info(
        cls,
        path: str | os.PathLike[str],
        tax_id: int = 9606,
        gene_types: Sequence[str] | None = None,
        hgnc: bool | str | os.PathLike[str] = True,
        **kwargs: Any,
    ) -> SCTranslatorTokenizer:
        """A fresh vocabulary from NCBI ``gene_info`` (ids are *not* those of the released checkpoints);
        ``hgnc`` as in :meth:`from_original_tables`, for human (tax id 9606) only."""
        vocab = GeneVocab.from_ncbi_gene_info(path, tax_id=tax_id, gene_types=gene_types)
        return cls(vocab=_with_hgnc(vocab, hgnc if tax_id == 9606 else False), **kwargs)

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

    # transformers' tokenizer names for the same lookups (code written for text tokenizers calls these)
    def convert_tokens_to_ids(self, tokens: Sequence[str] | str) -> list[int | None] | int | None:
        """:meth:`convert_genes_to_ids` (gene names are this tokenizer's tokens); the ``Entrez:N`` names
        :meth:`get_vocab` gives ids without a symbol map back to their id."""
        def plain(token: str) -> str:
            return token[len("Entrez:"):] if str(token).startswith("Entrez:") else token

        return self.convert_genes_to_ids(plain(tokens) if isinstance(tokens, str) else [plain(t) for t in tokens])

    def convert_ids_to_tokens(self, ids: Sequence[int] | int) -> list[str | None] | str | None:
        """:meth:`convert_ids_to_genes`; one id gives one name, as transformers' tokenizers do."""
        if isinstance(ids, (int, np.integer)):
            return self.convert_ids_to_genes([ids])[0]
        return self.convert_ids_to_genes(ids)

    def get_vocab(self) -> dict[str, int]:
        """Each token id's readable name -> the id (the tables' many aliases per gene are left out)."""
        return {name: token for token, name in self._vocab.token_names().items()}

    def __len__(self) -> int:
        """The number of token ids: the embedding rows a model needs (85,500 for the released vocabulary)."""
        return self.vocab_size

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
        padding: str | bool | None = None,
        truncation: str | bool | None = None,
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
        learnt_genes: Sequence[int] | None = None,
        rna_reading: ValueReading | None = None,
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
                column -- the count total, also for values normalised per cell to one total, where it is
                recovered; other values summed as given --, log1p of the mapped genes detected, the RNA minimum
                and maximum the values were scaled between) and, with protein values, ``protein_scale_labels``
                (float32, cells x 2: the minimum and maximum the proteins were scaled between; NaN when none is
                measured).

            gene_layout: the ordered token ids a position-reading model was trained on: the input's genes are
                reordered to it, layout genes the input lacks are true zeros, and mapped genes outside it are
                left out of the encoding and the per-cell scaling (they still count in the library size).
                The report says how many were filled and left out.
            learnt_genes: the token ids a model that reads genes by identity learnt (a "set" gene layout):
                mapped genes outside it are left out of the encoding and the per-cell scaling, as they were
                absent when it trained (their embeddings are untrained); the report counts them as left out.
            rna_reading: how to read the RNA values (``Matrix(whole_input, "RNA", rna_transform).choose_reading()``),
                for cells encoded in chunks: one reading for the whole input, where each chunk alone might show
                another (a lone last cell cannot show its normalisation). Default: chosen from these cells.

        Returns:
            ``BatchFeature`` with ``input_ids`` (int64), ``input_values`` (float32), ``attention_mask``
            (bool), and with proteins ``protein_ids`` (int64), ``protein_attention_mask`` (bool), plus
            ``labels`` (float32, scaled, NaN where missing, 0 at padding) when values are known.
        """
        max_length = int(max_length or self.max_length)
        protein_max_length = int(protein_max_length or self.protein_max_length)
        padding = _padding_choice(padding, self.padding)
        truncation = _truncation_choice(truncation, self.truncation)
        encoder_inputs = check_choice("encoder_inputs", encoder_inputs or self.encoder_inputs, ENCODER_INPUTS)
        if expressed_zero_genes is None:
            expressed_zero_genes = self.expressed_zero_genes
        zero_genes = check_zero_genes(expressed_zero_genes)
        if rna is None:
            raise ValueError("pass the expression matrix as rna=... (AnnData, sparse or dense cells x genes)")
        transform = getattr(self, "rna_transform", "none") if rna_transform is None else rna_transform
        matrix = Matrix(rna, "RNA", transform)
        n_cells, n_vars = matrix.shape
        if n_cells == 0 or n_vars == 0:
            raise ValueError(f"the RNA matrix is empty ({n_cells} cells x {n_vars} genes); nothing to encode")
        rna_values = matrix.adapt_transform(rna_reading)

        rna_report = self._rna_report(matrix, gene_names, gene_ids, species, overrides)
        columns = rna_report.columns
        column_hint = self._gene_column_hint(matrix, rna_report, species) if gene_names is None else ""
        check_rna_mapped(rna_report, n_vars, column_hint)
        warn_about_duplicates(rna_report)
        warn_about_input_quality(rna_report, matrix, column_hint)
        tokens = rna_report.kept_token_ids
        filled = dropped = 0
        if gene_layout is not None:
            columns, tokens, filled, dropped = align_to_layout(rna_report, gene_layout)
        elif learnt_genes is not None:
            learnt_columns = rna_report.read_columns(learnt_genes)
            if not learnt_columns.size:
                raise ValueError(f"none of the input's {tokens.size} mapped genes is one this model learnt; is it the "
                                 "right data (and the right gene names)?")
            dropped = int(columns.size - learnt_columns.size)
            columns = learnt_columns
            tokens = rna_report.token_ids[columns]
        n_kept = int(columns.size)
        if encoder_inputs == "expressed":
            ids, values, mask, n_const = encode_expressed(
                matrix, columns, tokens, max_length, padding, truncation, seed, zero_genes, chunk_size,
            )
        else:
            width = max_length if padding == "max_length" else min(n_kept, max_length)
            ids, values, mask, n_const = encode_all_genes(
                matrix, columns, tokens, width, max_length, truncation, seed, chunk_size
            )
        warn_constant_cells(n_const, n_cells, "RNA", f"the {n_kept} mapped genes")
        data: dict[str, Any] = {"input_ids": ids, "input_values": values, "attention_mask": mask}
        if return_cell_scale:
            data["cell_covariates"] = cell_covariates(matrix, columns, chunk_size)

        protein_report = None
        n_const_p = 0
        if proteins is not None:
            protein_report, protein_values = self._protein_inputs(proteins, protein_values, matrix, n_cells, species,
                                                                  overrides)
            pdata, n_const_p = encode_proteins(protein_report, protein_values, n_cells, protein_max_length, padding,
                                               protein_truncation)
            if not return_cell_scale:
                pdata.pop("protein_scale_labels", None)
            data.update(pdata)
        features = BatchFeature(data=data, tensor_type=return_tensors)
        if return_report:
            report = EncodingReport(rna_report, protein_report, n_cells, n_const, n_const_p, rna_values,
                                    layout_filled=filled, layout_dropped=dropped)
            return features, report
        return features

    def _rna_report(self, matrix: Matrix, gene_names, gene_ids, species, overrides) -> MappingReport:
        n_vars = matrix.shape[1]
        if gene_names is not None and gene_ids is not None:
            raise ValueError("pass either gene_names or gene_ids, not both")
        if gene_ids is not None:
            ids = np.asarray(matrix.own_columns(np.asarray(gene_ids)))
            if ids.shape != (n_vars,):
                raise ValueError(
                    f"gene_ids has {ids.size} entries but the RNA matrix has {n_vars} gene columns; "
                    "give one token id per column, in column order"
                )
            return report_from_token_ids(self._vocab, ids)
        if isinstance(gene_names, str):  # a column's name, not the names: its letters would be counted as genes
            raise ValueError(f"gene_names is one string ({gene_names!r}); pass one name per column, e.g. "
                             f"adata.var[{gene_names!r}] for the names in that var column")
        if gene_names is not None:
            names = [str(n) for n in matrix.own_columns(list(gene_names))]
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
        try:
            return self.resolve(matrix.var_names, "gene", species, overrides)
        except RowNumberNames as error:  # the names may be in a var column (a Seurat export's _index, gene_symbols)
            raise RowNumberNames(f"{error}.{self._columns_naming_genes(matrix, species)}") from None

    def _gene_column_hint(self, matrix: Matrix, report: MappingReport, species: str | None) -> str:
        """When few var_names map (Ensembl ids, feature ids), the var columns of this input whose names do
        (CELLxGENE's ``feature_name``, 10x's ``gene_symbols``), best first, as advice; "" when none or not needed."""
        if matrix.var is None or report.mapped_fraction >= FEW_MAPPED:  # the only inputs whose messages show it
            return ""
        if matrix.obs_names and self._map_share(matrix.obs_names, species) >= 0.5:
            return (" Its obs_names (the rows) are gene names: the matrix looks transposed, genes x cells (as R and "
                    "Seurat store it); pass adata.T.")
        return self._columns_naming_genes(matrix, species)

    def _columns_naming_genes(self, matrix: Matrix, species: str | None) -> str:
        """Advice naming the var columns of this input whose values are gene names the vocabulary knows, best
        first; "" when there are none."""
        best = self.gene_name_columns(matrix.var, species)
        if not best:
            return ""
        listing = ", ".join(f"{column!r} ({share:.0%} of a sample map)" for column, share in best[:3])
        return (f" This input's var column(s) {listing} name genes the vocabulary knows: pass "
                f"gene_names=adata.var[{best[0][0]!r}].")

    def gene_name_columns(self, var: Any, species: str | None = None) -> list[tuple[str, float]]:
        """The text columns of a var table (``adata.var``; None: none) whose values mostly map to genes: (column,
        share of a sample that maps), best first -- where a file keeps its gene names when its var_names are ids
        or numbers (10x's ``gene_symbols``, CELLxGENE's ``feature_name``, a Seurat export's ``_index``)."""
        scores = []
        for column in getattr(var, "columns", ()):
            values = var[column]
            if values.dtype.kind not in "OSU" and str(values.dtype) not in ("category", "string"):
                continue
            share = self._map_share(list(values), species)
            if share >= 0.5:
                scores.append((str(column), share))
        return sorted(scores, key=lambda item: (-item[1], item[0]))

    def _map_share(self, names: Sequence[Any], species: str | None) -> float:
        """The share of up to 200 evenly spaced ``names`` that map to genes, 0.0 for none; missing names and numbers
        are left out (a sample of AnnData's default cell names 0..n-1 would read as Entrez ids)."""
        sample = [str(v) for v in names[:: max(1, len(names) // 200)]
                  if not is_missing_name(v) and not str(v).strip().isdigit()][:200]
        if not sample:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return self.resolve(sample, "gene", species).mapped_fraction
            except ValueError:  # row numbers as names: none of them a gene
                return 0.0

    def _protein_inputs(self, proteins, protein_values, matrix, n_cells, species, overrides):
        """The proteins' mapping report and their values (cells x proteins as given, or None)."""
        values = None
        is_control = None
        if is_anndata(proteins):
            if protein_values is not None:
                raise ValueError(
                    "protein values come from the protein AnnData's X; do not pass protein_values too"
                )
            check_same_cells(matrix, proteins)
            pm = Matrix(proteins, "protein")  # a CITE-seq file in one piece: its antibody columns
            names = pm.var_names
            if "is_control" in pm.var.columns:
                is_control = pm.var["is_control"].astype(bool).tolist()
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
                pv = Matrix(protein_values, "protein_values")
                values = pv.rows(0, pv.shape[0])
                values = values.toarray() if hasattr(values, "toarray") else np.asarray(values)
                if values.shape != (n_cells, len(plist)):
                    raise ValueError(
                        f"protein_values has shape {values.shape}, expected ({n_cells} cells, "
                        f"{len(plist)} proteins)"
                    )
        return report, values

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
        written = [*written, self._save_auto_tokenizer_entry(save_directory)]
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

    @staticmethod
    def _save_auto_tokenizer_entry(save_directory: str | os.PathLike[str]) -> str:
        """``tokenizer_config.json`` naming this class, so ``AutoTokenizer.from_pretrained(folder)`` loads it too, as
        ``AutoFeatureExtractor`` does: through the registration with our package imported, or through the folder's
        own copy of this module with ``trust_remote_code=True`` (without it, transformers guessed a
        text tokenizer and failed with an unrelated sentencepiece error). The settings stay in
        ``preprocessor_config.json``."""
        import json

        from .atomic_io import atomic_output_file

        path = os.path.join(save_directory, TOKENIZER_CONFIG)
        entry = {"tokenizer_class": "SCTranslatorTokenizer",
                 "auto_map": {"AutoTokenizer": [f"{__name__.rsplit('.', 1)[-1]}.SCTranslatorTokenizer", None]}}
        with atomic_output_file(path, overwrite=True) as staging:
            with open(staging, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, indent=2, sort_keys=True)
                handle.write("\n")
        return path

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any):
        """Load ``preprocessor_config.json`` and the vocabulary next to it (local folder or Hub repo).

        ``vocab=`` (a :class:`GeneVocab`) keeps the saved settings but uses that vocabulary instead of the
        saved one (e.g. a model trained before a renaming, shipped with the current tables). It must give the
        genes the same token ids as the saved one (only names may differ): a vocabulary of another size is refused."""
        replacement = kwargs.pop("vocab", None)
        if replacement is not None and not isinstance(replacement, GeneVocab):
            raise TypeError(f"vocab= takes a GeneVocab, not {type(replacement).__name__}")
        hub = {k: kwargs[k] for k in _HUB_KWARGS if kwargs.get(k) is not None}
        config, unused = cls.get_feature_extractor_dict(pretrained_model_name_or_path, **kwargs)
        for key in (*_HUB_KWARGS, "trust_remote_code", "code_revision"):
            unused.pop(key, None)
        if replacement is not None:
            saved_size = config.get("vocab_size")
            if saved_size is not None and int(saved_size) != replacement.vocab_size:
                raise ValueError(f"vocab= has {replacement.vocab_size} token ids, the saved tokenizer "
                                 f"{saved_size}: a vocabulary with other token ids would pair the model's "
                                 "embeddings with other genes")
            return cls.from_dict(dict(config, vocab=replacement), **unused)
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

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict[str, Any], **kwargs: Any):
        """Build from saved settings plus ``vocab`` (a :class:`GeneVocab`), as :meth:`from_pretrained` does.

        Settings read from a saved ``preprocessor_config.json`` without the vocabulary beside it (transformers 5.25's
        ``AutoFeatureExtractor`` passes no folder) get an error that names the loaders that read it."""
        if "vocab" not in feature_extractor_dict and "vocab" not in kwargs and "vocab_file" in feature_extractor_dict:
            raise OSError(
                f"the gene vocabulary ({feature_extractor_dict['vocab_file']}) was not read: this transformers "
                "version's AutoFeatureExtractor builds a tokenizer from preprocessor_config.json alone. Load the "
                "folder with AutoTokenizer.from_pretrained(folder) (trust_remote_code=True where our package is not "
                "installed) or SCTranslatorTokenizer.from_pretrained(folder)"
            )
        return super().from_dict(feature_extractor_dict, **kwargs)

    def __repr__(self) -> str:
        settings = {k: v for k, v in self.to_dict().items() if k != "overrides"}
        return f"{type(self).__name__}({self._vocab!r}, {settings})"


def _padding_choice(padding: str | bool | None, default: str) -> str:
    """``padding`` as this tokenizer names it, read as transformers' tokenizers read theirs: True is ``"longest"``,
    None the default; ``False`` / ``"do_not_pad"`` are refused (they fell back to the default in silence): cells
    hold different numbers of genes, and a batch needs one length."""
    if padding is None:
        return default
    if padding is True:
        return "longest"
    if padding is False or padding == "do_not_pad":
        raise ValueError(f"padding={padding!r}: the cells of a batch hold different numbers of genes and must be "
                         "padded to one length: padding='longest' (or True) or 'max_length'")
    return check_choice("padding", padding, ("max_length", "longest"))


def _truncation_choice(truncation: str | bool | None, default: str) -> str:
    """``truncation``: True or None is the default rule; ``False`` / ``"do_not_truncate"`` are refused (they fell back
    to the default in silence): a cell never gives the model more than ``max_length`` genes."""
    if truncation is None or truncation is True:
        return default
    if truncation is False or truncation == "do_not_truncate":
        raise ValueError(f"truncation={truncation!r}: a cell with more genes than max_length is always cut to "
                         "max_length (the model reads at most its max_genes); raise max_length to keep more genes")
    return check_choice("truncation", truncation, TRUNCATIONS)
