"""Input checks of the tokenizer: option values, RNA values, matching cells, and warnings about inputs that
give plausible-looking but poor predictions (:class:`InputQualityWarning`).

Imports nothing of the package but the mapping report's type, so every other tokenizer module may use it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .gene_ids import MappingReport, is_species_mix, species_counts

__all__ = ["FEATURE_TYPES", "FEW_MAPPED", "InputQualityWarning", "MixedFeaturesWarning", "check_choice", "check_rna",
           "check_rna_mapped", "check_same_cells", "check_zero_genes", "modality", "modality_columns",
           "protein_in_rna_order", "protein_rows_in_rna_order", "repeated_names", "warn_about_duplicates",
           "warn_about_input_quality"]


def check_zero_genes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"expressed_zero_genes must be an integer >= 0, got {value!r}")
    return int(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


class MixedFeaturesWarning(UserWarning):
    """An input holds genes and antibodies (a CITE-seq file in one piece); each side reads its own features."""


# 10x Genomics' names in var["feature_types"] (Cell Ranger's matrices; scanpy.read_10x_h5(gex_only=False) and
# muon keep them): a CITE-seq file saved in one piece holds both sides, and each side reads only its own.
FEATURE_TYPES = {"RNA": "Gene Expression", "protein": "Antibody Capture"}
# ... and the other labels tools write for the two sides, in any case: NeurIPS 2021 / openproblems "GEX" and "ADT",
# Cell Ranger's older "Protein Expression", Seurat and muon exports' "RNA" and "Protein"
FEATURE_TYPE_LABELS = {
    "gene expression": "RNA", "gex": "RNA", "rna": "RNA",
    "antibody capture": "protein", "adt": "protein", "protein expression": "protein", "protein": "protein",
    "prot": "protein",  # muon's name for the protein modality
}
# the column holding them: 10x's own name, the singular some exports write, and what other tools call it
FEATURE_TYPE_COLUMNS = ("feature_types", "feature_type", "modality", "assay")


def _feature_type_column(var: Any) -> str | None:
    """The first of :data:`FEATURE_TYPE_COLUMNS` that holds a label of :data:`FEATURE_TYPE_LABELS`."""
    columns = {str(c).lower(): c for c in getattr(var, "columns", ())}
    for name in FEATURE_TYPE_COLUMNS:
        if name in columns:
            labels = {str(kind).strip().lower() for kind in np.unique(np.asarray(var[columns[name]]).astype(str))}
            if labels & FEATURE_TYPE_LABELS.keys():
                return columns[name]
    return None


def modality_columns(var: Any, what: str) -> tuple[np.ndarray | None, str]:
    """Positions of ``what``'s ("RNA" or "protein") features in a var table whose ``feature_types`` column mixes
    kinds (a CITE-seq file in one piece), and the warning that says what is left out; (None, "") when the table has
    no such column or every feature is of one kind. Left in, antibody counts would be read as the RNA of the
    genes their names map to (CD4 for the CD4 antibody) and would count in every cell's library size.

    The labels are read in any case, with the other names tools give the two sides (:data:`FEATURE_TYPE_LABELS`),
    from a column ``feature_types``, ``feature_type``, ``modality`` or ``assay``; a column holding none of them means
    something else (CELLxGENE writes gene biotypes in ``feature_type``) and is not read. Raises ValueError when no
    feature is of ``what``'s kind (the protein file given as RNA, or the other way round)."""
    column = _feature_type_column(var) if what in FEATURE_TYPES else None
    if column is None:
        return None, ""
    kinds = np.asarray(var[column]).astype(str)
    sides = np.array([FEATURE_TYPE_LABELS.get(kind.strip().lower(), "") for kind in kinds.tolist()], dtype=object)
    if not sides.any():  # another meaning: CELLxGENE's var['feature_type'] is the gene's biotype (protein_coding)
        return None, ""
    where = f"var[{str(column)!r}]"
    wanted = sorted(set(kinds[sides == what].tolist()))
    wanted_text = " / ".join(map(repr, wanted)) or repr(FEATURE_TYPES[what])
    if kinds.size == 0 or (kinds == kinds[0]).all():
        other = "protein" if what == "RNA" else "RNA"
        if kinds.size and sides[0] == other:
            raise ValueError(f"every feature of this {what} input is {str(kinds[0])!r} ({where}), none "
                             f"{FEATURE_TYPES[what]!r}: is it the {other} file?")
        return None, ""
    columns = np.flatnonzero(sides == what)
    others = Counter(kinds[sides != what].tolist())
    listed = ", ".join(f"{kind} {n:,}" for kind, n in others.most_common())
    if not columns.size:
        known = ", ".join(sorted({f"{label!r}" for label, side in FEATURE_TYPE_LABELS.items() if side == what}))
        raise ValueError(f"no feature of this {what} input is labelled as {what} ({where} holds {listed}; {what} "
                         f"labels read, in any case: {known}): give the file that holds the {what}, or relabel its "
                         f"{what} features")
    return columns, (f"the {what} input holds several kinds of features ({where}): its "
                     f"{columns.size:,} {wanted_text} ones are read as the {what}, {sum(others.values()):,} others "
                     f"are left out ({listed})")


def modality(adata: Any, what: str) -> Any:
    """``adata`` restricted to ``what``'s features (:func:`modality_columns`, with its warning): a copy, or
    ``adata`` itself. For inputs read whole; :class:`~tokenization.matrix.Matrix` selects the same columns in
    each chunk it reads (a backed file cannot be viewed twice)."""
    columns, message = modality_columns(getattr(adata, "var", None), what)
    if columns is None:
        return adata
    warnings.warn(message, MixedFeaturesWarning, stacklevel=2)
    return adata[:, columns].copy()


def check_same_cells(matrix: Any, proteins: Any) -> None:
    n_rna = matrix.shape[0]
    n_prot = proteins.shape[0]
    if matrix.obs_names is None:
        if n_rna != n_prot:
            raise ValueError(f"the RNA matrix has {n_rna} cells but the protein AnnData has {n_prot}")
        return
    rna_names = matrix.obs_names
    prot_names = list(map(str, proteins.obs_names))
    if rna_names == prot_names:
        repeated = repeated_names(rna_names)
        if repeated:  # e.g. two 10x lanes concatenated, both with barcodes AAAC...-1: their order is not checked
            warnings.warn(
                f"{len(repeated)} cell names repeat (e.g. {repeated[0]!r}): the RNA and protein cells are paired by "
                "position, which the names cannot confirm (two lanes with the same barcodes, concatenated in another "
                "order in one of the files, would be paired wrongly). Make the names unique the same way in both "
                "files, e.g. anndata.concat(..., index_unique='-') per lane",
                UserWarning, stacklevel=3)
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


def repeated_names(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, each once, in order of first occurrence."""
    return [name for name, count in Counter(names).items() if count > 1]


def _repeated_names_advice(rna_names: Sequence[str], prot_names: Sequence[str]) -> str:
    """Which obs_names repeat, and how to make them unique without pairing the wrong cells: barcodes repeat across
    samples merged without a sample prefix, and ``obs_names_make_unique`` on each file numbers the copies in that
    file's order, so it pairs cells correctly only when both files list them in one order."""
    repeated = {side: repeated_names(names) for side, names in (("RNA", rna_names), ("protein", prot_names))}
    where = "; ".join(f"{side}: {len(names)} repeat, e.g. {names[0]!r}" for side, names in repeated.items() if names)
    return (f" (some obs_names repeat -- {where}: barcodes of samples merged without a sample prefix? Give each cell "
            "one name in both files, e.g. anndata.concat(..., index_unique='_') or the sample prefixed; "
            "obs_names_make_unique() on each file pairs the right cells only if both list them in one order)")


def protein_in_rna_order(name: str, rna_cells: Sequence[str], prot: Any,
                         drop_extra: bool = False) -> tuple[Any, int]:
    """``prot`` with the RNA's cells (``rna_cells``, its obs_names) in the RNA's order, and how many protein
    cells were left out (:func:`protein_rows_in_rna_order`)."""
    rows, extra = protein_rows_in_rna_order(name, rna_cells, prot.obs_names, drop_extra)
    return (prot if rows is None else prot[rows]), extra


def protein_rows_in_rna_order(name: str, rna_cells: Sequence[str], protein_cells: Sequence[str],
                              drop_extra: bool = False) -> tuple[np.ndarray | None, int]:
    """The protein file's rows of the RNA's cells (``rna_cells``, its obs_names), in the RNA's order (None where the
    two list the same cells in one order), and how many protein cells were left out: with ``drop_extra``, a protein
    file may hold cells the RNA file lacks (a panel measured on more cells). A clear error, with both files' cell
    counts, when the RNA holds cells the protein file lacks or obs_names repeat (``name``: what the message starts
    with; "" for nothing)."""
    rna_names, prot_names = [str(c) for c in rna_cells], [str(c) for c in protein_cells]
    if rna_names == prot_names:
        return None, 0
    rna_set, prot_set = set(rna_names), set(prot_names)
    unique = len(rna_set) == len(rna_names) and len(prot_set) == len(prot_names)  # else a name is ambiguous
    extra = len(prot_set - rna_set)
    if unique and rna_set <= prot_set and (drop_extra or not extra):
        row_of = {cell: row for row, cell in enumerate(prot_names)}
        return np.array([row_of[cell] for cell in rna_names], dtype=np.int64), extra
    raise ValueError(
        f"{name + ': ' if name else ''}the RNA file has {len(rna_names)} cells and the protein file "
        f"{len(prot_names)}, {len(rna_set & prot_set)} shared obs_names"
        + ("" if unique else _repeated_names_advice(rna_names, prot_names))
        + ": the two files must hold the same cells (subset both to the shared cells first)"
        # few shared names are mostly two spellings of one barcode (a '-1' suffix, a sample prefix): show both
        + (f"; the names differ in form? e.g. RNA {next(n for n in rna_names if n not in prot_set)!r}, protein "
           f"{next(n for n in prot_names if n not in rna_set)!r}"
           if len(rna_set & prot_set) < min(len(rna_set), len(prot_set)) / 2 else ""))


def first_bad_dense_row(bad: np.ndarray) -> int:
    return int(np.argmax(bad.any(axis=1)))


def _cell_label(obs_names: Sequence[str] | None, index: int) -> str:
    return repr(obs_names[index]) if obs_names is not None else f"#{index}"


class InputQualityWarning(UserWarning):
    """The input looks unlike what the model was trained on (few genes mapped, mixed species, log values)."""


FEW_MAPPED = 0.10  # under this share of mapped genes the input is warned about (none mapped: refused)


def human_ensembl_hint(unmapped: Sequence[str], column_hint: str = "") -> str:
    """What to do when most unmapped names are human Ensembl ids (the original id tables have none); else "".
    ``column_hint`` (from the tokenizer: a var column of this input that names genes it knows) replaces the
    generic advice."""
    if column_hint:
        return column_hint
    if sum(str(n).upper().startswith("ENSG") for n in unmapped) <= len(unmapped) / 2:
        return ""
    return (" Most unmapped names are human Ensembl ids (ENSG...) this vocabulary does not know: pass the symbols "
            "(gene_names=adata.var['gene_symbols']). Vocabularies built with HGNC's table know the current Ensembl "
            "ids (sctranslator vocab from-original, the default since it was added; the original tables alone "
            "have none), not retired ones.")


def check_rna_mapped(report: MappingReport, n_vars: int, column_hint: str = "") -> None:
    """Raise when none of the input's genes maps to the vocabulary, naming the accepted formats (and the var
    column that would do, ``column_hint``)."""
    if report.columns.size == 0:
        examples = ", ".join(report.names[:5])
        raise ValueError(
            f"none of the {n_vars} genes is in the scTranslator vocabulary (first names: {examples}). "
            "Accepted formats: human symbols or aliases (CD4), Entrez ids ('920'), human Ensembl ids (ENSG..., "
            "with HGNC's table), mouse symbols (Cd4), mouse Ensembl ids (ENSMUSG..., version suffix ok), any of "
            "these after a genome's name (GRCh38_CD4), or token ids via gene_ids=... / var['my_Id']. If "
            "the names are elsewhere (e.g. adata.var['gene_symbols']), pass gene_names=adata.var[...]."
            + human_ensembl_hint(report.unmapped, column_hint)
        )


def warn_about_duplicates(report: MappingReport) -> None:
    """Warn (for the tokenizer's caller) when gene columns map to a token another column already has: names
    that repeat exactly (a renamed or merged column: the value read may not be the gene's) apart from other
    names of one gene (aliases the id tables share)."""
    if not report.n_duplicates:
        return
    same_name = [(a, b) for a, b, _ in report.duplicates if a == b]
    if same_name:
        repeated = Counter(report.names)
        names = list(dict.fromkeys(a for a, _ in same_name))
        examples = ", ".join(f"{a!r} ({repeated[a]} columns)" for a in names[:5]) + (", ..." if len(names) > 5 else "")
        warnings.warn(
            f"{len(same_name)} gene columns repeat another column's name ({examples}): only the first "
            "column of each name is read, the others are dropped. Check how the file was made (a renamed or "
            "merged column), and keep the column you mean",
            UserWarning,
            stacklevel=3,
        )
    aliases = [(a, b) for a, b, _ in report.duplicates if a != b]
    if aliases:
        warnings.warn(
            f"{len(aliases)} gene columns are other names of a gene another column has (e.g. {aliases[0][0]!r} = "
            f"{aliases[0][1]!r}: the id tables give both one token); the column named as the token's gene is kept "
            "(else the name that sorts first), the others dropped (see the report's duplicates)",
            UserWarning,
            stacklevel=3,
        )


def warn_about_input_quality(report: MappingReport, matrix: Any, column_hint: str = "") -> None:
    """Warn (once per call) about inputs that give plausible-looking but poor predictions."""
    dates = report.spreadsheet_dates
    if dates:
        warnings.warn(
            f"{len(dates)} gene names are dates a spreadsheet made of gene symbols ({', '.join(dates[:4])}"
            f"{', ...' if len(dates) > 4 else ''}: 1-Mar was MARCHF1 or MTARC1, 9-Sep SEPTIN9); they cannot be told "
            "back and are left out. Export the table without opening it in a spreadsheet (or rename those columns)",
            InputQualityWarning, stacklevel=3,
        )
    if report.n_non_control >= 20 and report.mapped_fraction < FEW_MAPPED:
        warnings.warn(
            f"only {report.mapped_fraction:.1%} of {report.n_non_control} genes map to the vocabulary; predictions "
            f"from so few genes are unreliable.{human_ensembl_hint(report.unmapped, column_hint)} See the report "
            "(return_report=True) for what did not map.",
            InputQualityWarning, stacklevel=3,
        )
    human, mouse = species_counts(report.route_counts)
    if is_species_mix(human, mouse):
        warnings.warn(
            f"the genes look like a mix of species ({human} mapped as human, {mouse} as mouse symbols or ids); "
            "if that is not intended, load the tokenizer with species='human' or 'mouse' (SCTranslatorTokenizer"
            ".from_pretrained(MODEL, species=...), given to pipeline(..., feature_extractor=...))",
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
            "the expression values are normalised but not logged (e.g. TPM, or counts per 10,000 over more genes "
            "than given): they are read as log1p of the values; raw counts (adata.layers['counts'] or adata.raw) "
            "match the training data best",
            InputQualityWarning, stacklevel=3,
        )
    elif getattr(getattr(matrix, "reading", None), "beyond_cp10k", False):
        warnings.warn(
            "the expression values look logged but some exceed log1p(10,000), the most a log1p(CP10k) value can "
            "be, and their cells share no total in base e, 2 or 10 (a gene subset of log1p(CPM), log2(TPM+1)?): "
            "they are read as they are, off the scale the model learnt. Pass raw counts (adata.layers['counts'] "
            "or adata.raw)",
            InputQualityWarning, stacklevel=3,
        )
    elif getattr(getattr(matrix, "reading", None), "total_unknown", False):
        warnings.warn(
            "the expression values are log values whose cells share no total (a gene subset of normalised cells?): "
            "they are read as log1p(counts per 10,000), the scale the model learnt. Normalised to another total "
            "(scanpy's normalize_total without target_sum uses the median count, often 2,000-5,000), every value "
            "sits off that scale and predictions move (up to 1.9 log1p, 0.4 on average, measured): pass raw counts "
            "(adata.layers['counts'] or adata.raw), or normalise with target_sum=1e4 before selecting genes",
            InputQualityWarning, stacklevel=3,
        )
    elif getattr(matrix, "ambient_corrected", False):
        warnings.warn(
            "the expression values are non-integer, not logged, and no cell-wise multiple of counts: they are "
            "read as counts corrected for ambient RNA (SoupX, DecontX) and log-normalised like raw counts. If "
            "they are normalised values of a gene subset instead, pass the raw counts",
            InputQualityWarning, stacklevel=3,
        )


def check_block(block, start: int, obs_names) -> None:
    import scipy.sparse as sp

    if sp.issparse(block):
        check_rna(block.data, start, obs_names,
                   lambda bad: int(np.searchsorted(block.indptr, np.argmax(bad), side="right") - 1))
    else:
        check_rna(block, start, obs_names, first_bad_dense_row)


def check_rna(values: np.ndarray, start: int, obs_names, first_row) -> None:
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
                "expression: fill them (e.g. numpy.nan_to_num; in bulk tables, where NaN marks an unmeasured gene, "
                "the sample's lowest value, as pre-training did) or drop those cells"
            )
    if values.size and values.min() < 0:
        raise ValueError(
            f"the RNA matrix has negative values (min {float(values.min()):.4g}, first in cell "
            f"{_cell_label(obs_names, start + first_row(values < 0))}); it looks scaled/centred (e.g. "
            "sc.pp.scale). "
            "Pass raw counts or log-normalised values (adata.raw, adata.layers['counts']; the pipeline reads them with "
            "layer='raw' or layer='counts'). Bulk values on a signed log scale (array log ratios, log2(TPM + 0.001)) "
            "can be shifted per sample to start at 0, as pre-training read them: X - X.min(axis=1, keepdims=True)"
        )
