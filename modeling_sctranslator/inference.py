"""Predict proteins for many cells: chunked tokenization, decoder-sized passes, AnnData out.

The one prediction loop behind the pipeline, the CLI and the benchmarks. Cells stream through in
chunks (backed ``.h5ad`` files are read chunk by chunk), each chunk is tokenized once, and the
requested proteins are split into passes of at most ``config.max_proteins`` (the decoder's
length), so any number of proteins can be asked for.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokenization.antibody_targets import ANTIBODY_TARGETS, antibody_key
from tokenization.cell_files import CELL_FILE_SUFFIXES, is_delimited, proteins_in_obsm, read_cells, read_h5mu
from tokenization.checks import (
    InputQualityWarning,
    MixedFeaturesWarning,
    check_same_cells,
    modality,
    modality_columns,
)
from tokenization.gene_ids import ABSEQ_LABEL_RE
from tokenization.matrix import BULK_DETECTED_GENES, Matrix, ValueReading, check_numeric_columns, detected_per_row
from tokenization.scaling import SCALE_FLOOR, constant_cells_counted_apart, scale_between, warn_constant_cells
from tokenization.value_kinds import clr_counts, protein_transform_for, value_kind

from .default_model import DEFAULT_MODEL_DIR
from .gene_layout import MIN_LAYOUT_SHARE, UNKNOWN_NOTICE, GeneLayout
from .modeling_sctranslator import SCTranslatorForProteinPrediction

__all__ = [
    "counts_of_clr",
    "proteins_argument",
    "ProteinTargets",
    "encoding_options",
    "cell_rows",
    "check_vocab_compatible",
    "compute_precision",
    "default_batch_size",
    "count_cells",
    "low_precision_in_hardware",
    "warn_if_emulated",
    "decoder_passes",
    "warn_if_passes_scaled_apart",
    "predict_encoded",
    "predict_proteins",
    "progress_bar",
    "ProteinRequest",
    "protein_request",
    "read_rna",
    "resolve_device",
    "resolve_targets",
    "untrained_proteins",
]

SCALE_DESCRIPTION = (
    "scTranslator's training scale: per-cell max-min scaled protein abundance (measured values lie in [1e-8, 1]; "
    "predictions are not clipped and can fall slightly outside)"
)
LOG1P_DESCRIPTION = (
    "log1p protein counts (the scale of the count panels the model learnt from): the per-cell scaled predictions "
    "(layers['scaled']) brought back with each cell's predicted protein minimum and maximum; expm1 gives counts"
)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None → CUDA when available, else CPU; an unavailable CUDA request is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device this build of PyTorch knows; use cpu, cuda, "
                         "cuda:N, mps or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return device


def read_rna(rna: Any, gene_names: Sequence[str] | None = None) -> tuple[Any, Sequence[str] | None]:
    """Accept an AnnData, a path to ``.h5ad`` (opened backed), ``.h5mu`` or a Cell Ranger ``.h5`` or matrix folder,
    a MuData (its ``rna`` modality), a pandas DataFrame (cells x genes, gene names as columns) or
    ``(matrix, gene_names)``; return the cells × genes object and explicit gene names if any."""
    import anndata

    if isinstance(rna, (str, os.PathLike)):
        rna = read_cells(rna, "RNA file", backed=True)  # .h5ad backed (read in chunks); the others whole
    elif isinstance(rna, tuple) and len(rna) == 2:
        rna, gene_names = rna
    elif type(rna).__name__ == "DataFrame":  # cells as rows, genes as columns
        check_numeric_columns(rna, "RNA")
        import pandas as pd

        rna = anndata.AnnData(X=rna.to_numpy(dtype=np.float32), obs=pd.DataFrame(index=rna.index.astype(str)),
                              var=pd.DataFrame(index=rna.columns.astype(str)))
    if type(rna).__name__ == "MuData":
        rna = read_h5mu("the MuData", "RNA file", mdata=rna)  # the modality a .h5mu path gives
    import scipy.sparse as sp

    if sp.issparse(rna) and (rna.format != "csr" or not sp.isspmatrix(rna)):
        # COO (scipy.io.mmread of a 10x .mtx), CSC, and sparse arrays: cells are read in row slices
        rna = sp.csr_matrix(rna)
    return rna, gene_names


def proteins_argument(proteins: Any, rna: Any) -> Any:
    """``proteins`` as predict reads them: a cell file's path read as that file (its antibodies); the RNA's own
    AnnData given again, whose antibodies are in obsm (scvi-tools' ``protein_expression``), as those antibodies
    (its genes read as protein names gave thousands of 'proteins')."""
    if isinstance(proteins, (str, os.PathLike)) and os.path.isfile(proteins) and (
            is_delimited(proteins) or str(proteins).lower().endswith(CELL_FILE_SUFFIXES)):
        return read_cells(proteins, "protein file")
    if _same_cells_and_genes(proteins, rna) and modality_columns(getattr(rna, "var", None), "RNA")[0] is None:
        in_obsm = proteins_in_obsm(rna, "the AnnData")
        if in_obsm is not None:
            return in_obsm
    return proteins


def _same_cells_and_genes(proteins: Any, rna: Any) -> bool:
    """Whether ``proteins`` is the RNA's AnnData given again: the object itself, a copy or another view of it (the
    same cells and genes), whose antibodies are in obsm."""
    if proteins is rna:
        return hasattr(rna, "obsm")
    if not (hasattr(proteins, "obsm") and hasattr(rna, "obsm")) or proteins.shape != rna.shape:
        return False
    return bool((proteins.obs_names == rna.obs_names).all() and (proteins.var_names == rna.var_names).all())


def with_layer(rna: Any, layer: str | None) -> Any:
    """``rna`` (an AnnData, or any input :func:`read_rna` takes) with X taken from ``layers[layer]``, or from
    ``.raw`` for ``layer="raw"`` (its genes, often all of them where X holds a highly variable subset); ``rna`` itself
    for None. Where scanpy and Seurat exports keep the counts when X holds log-normalised or scaled values. A backed
    file is read into memory."""
    if layer is None:
        return rna
    import anndata

    rna = read_rna(rna)[0]
    if not hasattr(rna, "layers"):
        raise ValueError(f"layer={layer!r} needs an AnnData (or an .h5ad path), not a {type(rna).__name__}")
    if getattr(rna, "isbacked", False):
        rna = rna.to_memory()
    layers = sorted(rna.layers)
    if layer == "raw":
        if rna.raw is None:
            raise ValueError(f"layer='raw': this RNA input has no .raw; its layers are {layers}")
        return rna.raw.to_adata()
    if layer not in rna.layers:
        raise ValueError(f"this RNA input has no layer {layer!r}; its layers are {layers}"
                         + (" (and .raw: layer='raw')" if rna.raw is not None else ""))
    return anndata.AnnData(X=rna.layers[layer], obs=rna.obs, var=rna.var)


@dataclass
class ProteinTargets:
    """The proteins to predict: output names, their token ids, and what could not be used."""

    names: list[str]
    token_ids: list[int]
    unmapped: list[str] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str, int]] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    values: Any = None  # protein AnnData with measured values, when given
    columns: list[int] = field(default_factory=list)  # the column of ``values`` behind each name


def resolve_targets(tokenizer: Any, proteins: Any) -> ProteinTargets:
    """Resolve protein names (or a protein AnnData's ``var_names``) once, with the panel rules."""
    values = None
    is_control = None
    if hasattr(proteins, "var_names"):
        values = proteins = modality(proteins, "protein")  # a CITE-seq file in one piece: its antibody columns
        names = [str(n) for n in proteins.var_names]
        if "is_control" in proteins.var:
            is_control = [bool(c) for c in proteins.var["is_control"]]
    elif isinstance(proteins, str):
        if "," in proteins:  # "CD4,CD8A" would be read as one panel label (its first part): CD8A lost unseen
            raise ValueError(
                f"proteins is one string with commas ({proteins!r}); pass a list of names "
                f"({[p.strip() for p in proteins.split(',')]}), or a one-name list for a panel label such as "
                "['HLA-A,B,C']"
            )
        names = [proteins.strip()]
    elif proteins is None:
        raise ValueError("say which proteins to predict: proteins=[names] or a protein AnnData")
    elif isinstance(proteins, (set, frozenset)):  # no order of its own: columns in sorted order, the same every run
        names = sorted(str(p).strip() for p in proteins)
    else:  # names as written, less the spaces around them (which would stay in the output's var_names)
        names = [str(p).strip() for p in proteins]
    if not names:
        raise ValueError("the list of proteins to predict is empty")
    report = tokenizer.resolve(names, kind="protein", is_control=is_control)
    kept = report.columns
    targets = ProteinTargets(
        names=[report.names[i] for i in kept],
        token_ids=[int(report.token_ids[i]) for i in kept],
        unmapped=report.unmapped,
        controls=report.controls,
        duplicates=report.duplicates,
        routes=[report.routes[i] for i in kept],
        values=values,
        columns=[int(i) for i in kept],
    )
    if not targets.names:
        raise ValueError(
            f"none of the {len(names)} proteins maps to the vocabulary (e.g. {names[:5]}); check the names, "
            "pass overrides={'name': 'GENE_SYMBOL'}, or add new ones with tokenizer.add_genes([...]) and fine-tune"
        )
    left_out = {
        "are not in the vocabulary": (targets.unmapped, "unmapped_proteins"),
        "are isotype/blank controls": (targets.controls, "control_proteins"),
        "name the same protein as another column (one column per protein)": (
            [f"{a} (= {b})" for a, b, _ in targets.duplicates], "duplicate_proteins"),
    }
    warn_about_joined_names(tokenizer, targets)
    for why, (which, key) in left_out.items():
        if which:
            warnings.warn(
                f"{len(which)} of {len(names)} proteins {why} and are not predicted: {which[:10]} (a prediction "
                f"lists them in its uns['sctranslator']['{key}'])",
                UserWarning,
                stacklevel=3,
            )
    return targets


SMALL_PANEL = 10  # below it predictions swing with the panel's make-up (see predict_proteins' warning)
PROTEIN_CONTEXTS = ("auto", "model", "none")
CONTEXT_NOTE = ("asked together with the proteins the model's training panels measured, which were then dropped: a "
                "protein is predicted best inside a panel like those (protein_context='none' asks only these)")
PANEL_NOTE = ("asked inside the panel the model was fine-tuned on, in its order (any other proteins of that panel "
              "were then dropped): a fine-tuned model predicts best inside its own panel (protein_context='none' "
              "asks only these)")


def fine_tuned_panel(config: Any, asked: Sequence[int]) -> list[int] | None:
    """The smallest of the model's fine-tuning panels (``config.fine_tuned_panels``) that holds every protein
    ``asked``, or None."""
    wanted = set(asked)
    holding = [panel for panel in getattr(config, "fine_tuned_panels", None) or [] if wanted <= set(panel)]
    return min(holding, key=len) if holding and wanted else None


@dataclass
class ProteinRequest:
    """What one decoder pass is asked: ``token_ids`` in order, the asked-for proteins at ``positions`` (in the
    order of ``targets``), ``added`` other proteins whose predictions are dropped, ``note`` saying why, and whether
    it is one of the model's fine-tuning panels (``fine_tuned_panel``: then whole, or with ``added`` proteins)."""

    token_ids: list[int]
    positions: list[int]
    added: int = 0
    note: str = ""
    fine_tuned_panel: bool = False


def protein_request(config: Any, targets: ProteinTargets, protein_context: str | None) -> ProteinRequest:
    """The proteins to ask for ``targets``: the targets alone, or with others whose predictions are dropped.

    ``"auto"``: a request inside one of the model's fine-tuning panels is asked inside that panel, whatever its
    size; otherwise, requests of fewer than :data:`SMALL_PANEL` proteins are asked inside the model's training
    proteins (:attr:`~SCTranslatorConfig.protein_context`). ``"model"``: the same for every request. ``"none"`` (or
    a model that records neither): nothing. A protein AnnData (measured values, scaled per cell over its panel) is
    asked as it is. Measured with ``benchmarks/protein_context.py`` on the benchmark's test cells with
    sctranslator-base (per-protein r on log1p counts, six random requests each): 1 / 2 / 4 / 8 proteins asked bare
    score 0.34 / 0.33 / 0.38 / 0.45 on ECCITE and 0.32 / 0.30 / 0.47 / 0.51 on neurips, inside the training proteins
    0.50 / 0.56 / 0.48 / 0.43 and 0.62 / 0.72 / 0.64 / 0.61; a whole training panel is best asked as it is. After
    fine-tuning on six ECCITE proteins (``benchmarks/fine_tuned_panel.py``), requests of 1 / 2 / 3 / 4 of them score
    0.68 / 0.64 / 0.69 / 0.71 inside that panel, 0.59 / 0.54 / 0.61 / 0.61 inside the training proteins and 0.23 /
    0.59 / 0.65 / 0.65 bare. The context fills what one pass of ``max_proteins`` leaves
    beside the request; a fine-tuning panel is asked in its own order (the original's MLP translator reads protein
    positions)."""
    if protein_context is None:
        protein_context = "none"
    if protein_context not in PROTEIN_CONTEXTS:
        raise ValueError(f"protein_context must be one of {', '.join(PROTEIN_CONTEXTS)}, got {protein_context!r}")
    context = getattr(config, "protein_context", None)
    panel = fine_tuned_panel(config, targets.token_ids)
    if protein_context == "model" and not context and panel is None:
        raise ValueError("protein_context='model' needs a model that records the proteins it learnt from "
                         "(config.protein_context; pre-trained models do) or a fine-tuning panel holding the "
                         "request (config.fine_tuned_panels); this one has neither: use 'auto' or 'none'")
    if targets.values is not None:  # measured values are scaled over the panel given: predictions must be too
        if protein_context == "model":
            raise ValueError("protein_context='model' with measured proteins: they are scaled per cell over the panel "
                             "given, predictions inside the model's proteins would be scaled over another; give "
                             "protein names to predict inside them, or use 'auto' / 'none'")
        return _request(targets.token_ids)
    if protein_context == "none":
        return _request(targets.token_ids)
    asked = set(targets.token_ids)
    if panel is not None:
        return _request(panel, targets.token_ids, PANEL_NOTE, fine_tuned_panel=True)
    if not context or (protein_context == "auto" and len(targets.token_ids) >= SMALL_PANEL):
        return _request(targets.token_ids)
    room = max(int(config.max_proteins) - len(asked), 0)  # one pass: a panel split across passes is two contexts
    added = [int(t) for t in context if int(t) not in asked][:room]
    return _request([*targets.token_ids, *added], targets.token_ids, CONTEXT_NOTE)


def _request(order: Sequence[int], wanted: Sequence[int] | None = None, note: str = "",
             fine_tuned_panel: bool = False) -> ProteinRequest:
    where = {int(t): i for i, t in enumerate(order)}
    wanted = order if wanted is None else wanted
    added = len(order) - len(wanted)
    return ProteinRequest([int(t) for t in order], [where[int(t)] for t in wanted], added,
                          note if added or fine_tuned_panel else "", fine_tuned_panel)


def warn_about_joined_names(tokenizer: Any, targets: ProteinTargets) -> None:
    """A label with commas or slashes is read as a panel's (``HLA-A,B,C``: its first target), a mass-spec protein
    group (``GAPDH;GAPDHS``, ``KRT8|KRT18``) as its leading member; when its other parts name other proteins
    (``CD4,CD8A``: a list written on one line), say that only the first is predicted."""
    joined = []
    for name, token in zip(targets.names, targets.token_ids, strict=True):
        if antibody_key(name) in ANTIBODY_TARGETS or ABSEQ_LABEL_RE.match(name):  # one antigen: as the table
            continue  # names it (TCR gamma/delta), or a BD AbSeq label (antigen:clone|gene|catalogue number|pAbO)
        parts = [p.strip() for p in re.split(r"[,/;|]", name)[1:] if p.strip()]
        if parts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                others = tokenizer.resolve(parts, kind="protein")
            if any(t and t != token for t in others.token_ids.tolist()):
                joined.append(name)
    if joined:
        warnings.warn(
            f"{len(joined)} protein names join several names with ',', '/', ';' or '|' ({joined[:5]}): each is read as "
            "one panel label or protein group, i.e. its first (leading) member only. Give the proteins as separate "
            "names (a list, or one per line)",
            UserWarning, stacklevel=4,
        )


def default_batch_size(config: Any, device: torch.device) -> int:
    """Cells per forward pass when the caller does not say.

    On a CPU the compatible model is memory-bound: its per-cell FAVOR+ features are heads x max_genes x
    features floats (170 MB for the released model), and one cell at a time was fastest per cell there
    (1.55 s at batch 1 vs 2.01 s at 4 and 2.50 s at 16, benchmarks/inference.py). Batch so that a
    batch's features stay near 200 MB, between 1 and 8 cells; on accelerators, 8.
    """
    if torch.device(device).type != "cpu":
        return 8
    per_cell = config.num_attention_heads * config.max_genes * config.nb_random_features * 4
    return int(min(8, max(1, (200 << 20) // max(per_cell, 1))))


def check_vocab_compatible(config: Any, tokenizer: Any) -> None:
    """Refuse a tokenizer whose token ids the model's embeddings cannot hold."""
    if int(tokenizer.vocab_size) > int(config.vocab_size):
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} token ids but the model's embeddings hold {config.vocab_size}: "
            "they do not belong together. Use the tokenizer saved with the model (same folder)."
        )


def counts_of_clr(proteins: Any, source: Any = None) -> Any:
    """``proteins`` (an AnnData) with its CLR values (Seurat's, muon's) replaced by the counts behind them, with a
    warning and ``uns["sctranslator_measured_values"]`` saying so; as it is where they are no such values or their
    counts cannot be told (``value_kinds.clr_counts``). ``source``: the file, for the warning."""
    if value_kind(proteins.X) != "log":
        return proteins
    recovered = clr_counts(proteins.X)
    if recovered is None:
        return proteins
    counts, how = recovered
    warnings.warn(
        f"the measured protein values{' in ' + str(source) if source else ''} are CLR-normalised ({how}): brought "
        "back to their counts (every value a whole count again) and read as counts",
        UserWarning, stacklevel=3,
    )
    out = proteins.to_memory() if getattr(proteins, "isbacked", False) else proteins.copy()
    out.X = counts.astype(np.float32)
    out.uns["sctranslator_measured_values"] = f"CLR ({how}) -> counts"
    return out


def transformed_proteins(proteins: Any, transform: str) -> tuple[Any, str]:
    """A protein AnnData with ``log1p`` applied to its values (``transform="log1p"``), as it is (``"none"``),
    or what the kind of its values calls for (``"auto"``: log1p for counts and linear values, as training
    does for count panels; unchanged for log values and signed ones such as RPPA or TMT ratios; CLR-normalised
    ADT, Seurat's or muon's, brought back to its counts first: see ``value_kinds.clr_counts``); and the kind of
    the values as given, in words (``value_kind``'s, or how CLR values were read)."""
    if transform == "auto":
        proteins = counts_of_clr(proteins)  # as it is unless CLR values whose counts can be told
    values = proteins.X
    kind = value_kind(values)
    said = proteins.uns.get("sctranslator_measured_values", kind)  # counts read from CLR (here or by the CLI)
    if kind == "log" and transform == "auto":
        warnings.warn(
            "the measured protein values are log-scale values, not counts (log1p counts, log-normalised or CLR ADT, "
            "CLR rounded when written, whose counts cannot be told): they are compared as given, while predictions "
            "are log1p counts; correlations hold, MSE and cosine only if the values are log1p counts. Give the raw "
            "ADT counts (a counts layer: --protein-layer counts) to compare on one scale",
            InputQualityWarning, stacklevel=2,
        )
    transform = protein_transform_for(transform, kind if transform == "auto" else "")
    if transform == "none":
        return proteins, said
    if (values.min() if hasattr(values, "min") else np.nanmin(values)) < 0:
        raise ValueError("log1p needs non-negative protein values; these look already transformed: use 'none'")
    out = proteins.copy() if not proteins.isbacked else proteins.to_memory()
    out.X = values.log1p() if hasattr(values, "log1p") else np.log1p(values)
    return out, said


def count_cells(rna: Any) -> int:
    """The number of cells of ``rna`` (an AnnData or a cells x genes matrix); anything else is named."""
    shape = getattr(rna, "shape", None)
    if shape is None:
        raise TypeError(f"the RNA data is a {type(rna).__name__}: give an AnnData or a cells x genes matrix (numpy "
                        "array, scipy sparse; with gene_names), e.g. np.asarray(rows) for a list of cells")
    if len(shape) != 2:
        raise ValueError(f"the RNA data has shape {tuple(shape)}: give a cells x genes matrix (one cell: "
                         "values[None, :])")
    return int(shape[0])


def cell_rows(obj: Any, start: int, stop: int) -> Any:
    """Cells ``start:stop`` of an AnnData (also a view of a backed file) or a matrix."""
    if getattr(obj, "isbacked", False) and getattr(obj, "is_view", False):
        # anndata cannot take a view of a view of a backed file: index the file's object directly
        parent = obj._adata_ref
        rows = np.arange(parent.n_obs)[obj._oidx][start:stop]
        return parent[rows, obj._vidx]
    return obj[start:stop]


def encoding_options(config, layout: GeneLayout | None = None) -> dict[str, Any]:
    """Tokenizer settings that give the encoding ``config``'s model reads (prediction, attention, knockout).

    The compatible model: every mapped gene, padded to ``max_genes`` -- in the order of its gene layout when
    it records one (``layout``); the variant: each cell's expressed genes (plus ``expressed_zero_genes``),
    padded to the longest cell -- only the genes it learnt when it records them (a "set" layout): a mapped gene
    it never trained has a zero embedding, and its values would still move every other gene's scaling.
    """
    if config.pads_to_fixed_length:
        options = {"padding": "max_length", "encoder_inputs": "all_genes"}
        if layout is not None and layout.ordered:
            options["gene_layout"] = layout.token_ids
        return options
    options = {"padding": "longest", "encoder_inputs": config.encoder_inputs,
               "expressed_zero_genes": config.expressed_zero_genes}
    if layout is not None and layout.kind == "set":
        options["learnt_genes"] = layout.token_ids
    return options


def predict_proteins(
    model: SCTranslatorForProteinPrediction,
    tokenizer: Any,
    rna: Any,
    proteins: Any,
    gene_names: Sequence[str] | None = None,
    batch_size: int | None = None,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: bool | Callable[[int], None] = False,
    return_targets: bool = False,
    protein_transform: str = "auto",
    gene_layout: GeneLayout | None = None,
    protein_context: str = "auto",
) -> Any:
    """Predict ``proteins`` for every cell of ``rna``; returns an AnnData (cells × proteins).

    ``X`` holds predictions on the model's output scale (``uns['sctranslator']['output_scale']``, described
    in ``['scale']``): log1p counts for models with the protein scale part (``config.predict_protein_scale``;
    then ``layers['scaled']`` holds the per-cell scaled predictions), the per-cell scaled scale otherwise.
    ``obs`` is the RNA's; ``var`` has the token id and mapping route of each protein;
    ``uns['sctranslator']`` lists the proteins that were not predicted and why. With a protein AnnData,
    ``layers['measured']`` holds its values on ``X``'s scale (NaN where missing) for evaluation (and
    ``layers['measured_scaled']`` the scaled ones, with the scale part); ``protein_transform`` says what is
    applied to them first (see :func:`transformed_proteins`; ``"auto"``: ``log1p`` for counts, as training
    does for count panels, nothing for RPPA or mass-spec ratios). ``gene_layout``: the layout to read ``rna``
    in, default :func:`reading_layout` (give the one of a whole file when predicting parts of it). ``dtype``:
    the precision of the matrix products (``torch.bfloat16``: see :func:`compute_precision`); the model's
    weights are left as they are. ``protein_context``: a protein's prediction depends on the proteins asked with
    it, and a small request is predicted much worse than the same proteins inside a panel like the training ones;
    ``"auto"`` asks a request inside the model's fine-tuning panel that holds it (``config.fine_tuned_panels``),
    else requests of fewer than :data:`SMALL_PANEL` proteins inside the model's training proteins
    (``config.protein_context``), and returns only those asked; ``"model"`` does so for every request, ``"none"``
    asks exactly the request (see :func:`protein_request`; ``uns['sctranslator']['protein_context']`` says what
    was added).
    """
    import anndata
    import pandas as pd

    for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size)):
        if value is None and name == "batch_size":
            continue
        # a whole number: "2" from a config file or 2.5 would fail deep in the batching (or round silently)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    proteins = proteins_argument(proteins, rna)
    rna, gene_names = read_rna(rna, gene_names)
    check_vocab_compatible(model.config, tokenizer)
    targets = resolve_targets(tokenizer, proteins)
    measured_values = None
    if targets.values is not None:
        targets.values, measured_values = transformed_proteins(targets.values, protein_transform)
    config = model.config
    device = resolve_device(device) if device is not None else model.device
    model = model.to(device=device) if device != model.device else model
    model.eval()
    batch_size = batch_size or default_batch_size(config, device)
    n_cells = count_cells(rna)
    if n_cells == 0:
        raise ValueError("the RNA data has no cells")
    if targets.values is not None:  # whole files, before chunks: a chunk's check sees neither count nor extra cells
        check_same_cells(Matrix(rna, "RNA"), targets.values)
    n_targets = len(targets.token_ids)
    request = protein_request(config, targets, protein_context)
    if n_targets < SMALL_PANEL and not request.added and not request.fine_tuned_panel:
        warnings.warn(
            f"only {n_targets} protein{'s' if n_targets > 1 else ''} asked for: a protein's prediction depends on the "
            "panel it is asked with (the decoder attends across the proteins asked for, and each cell's values are "
            "scaled between its lowest and highest of them). Measured on ECCITE cells with sctranslator-base, CD4 "
            "correlates with measured CD4 at r 0.12 asked alone, 0.52-0.82 with three other proteins, 0.85 within "
            "the 49-protein panel. Ask for the whole panel you study, and compare predictions made with one panel"
            + ("" if protein_context == "none" or targets.values is not None
               else " (this model records no training proteins to ask them with, or has no room beside them)"),
            UserWarning, stacklevel=2,
        )
    modified = [name for name, route in zip(targets.names, targets.routes, strict=True) if route in MODIFIED_ROUTES]
    if modified:  # RPPA panels: a quarter of TCGA's antibodies are phospho or cleaved forms
        warnings.warn(
            f"{len(modified)} of the proteins asked name a modified form (a phospho-site or cleaved epitope, e.g. "
            f"{modified[:3]}): the model knows proteins, not their modifications, so each is predicted as its total "
            "protein (var['mapping_route'] marks them)",
            UserWarning, stacklevel=2,
        )
    if not getattr(config, "predict_protein_scale", False):
        warn_if_passes_scaled_apart(config, len(request.token_ids), "this model has no protein scale part",
                                    " or use a model with the scale part (sctranslator-base)")
    untrained_names = untrained_proteins(model, targets)
    layout = gene_layout or reading_layout(model, tokenizer, rna, gene_names, chunk_size)
    encoding = encoding_options(config, layout)  # the model decides the gene encoding
    with_scale = bool(getattr(config, "predict_protein_scale", False))
    predictions = np.empty((n_cells, n_targets), dtype=np.float32)
    genes_detected = np.zeros(n_cells, dtype=np.int64)  # of the genes the model reads: the cell's RNA evidence
    gene_ids = None
    log1p_predictions = np.empty((n_cells, n_targets), dtype=np.float32) if with_scale else None
    measured = np.full((n_cells, n_targets), np.nan, dtype=np.float32) if targets.values is not None else None
    measured_log = measured.copy() if measured is not None and with_scale else None
    rna_summary = rna_values = None
    untrained_genes = 0
    reading = reading_options(tokenizer, rna, chunk_size)  # one for every chunk
    bar = progress_bar(progress, n_cells)
    constant_rna = constant_measured = 0
    with constant_cells_counted_apart():  # around every chunk: inside it, the once-per-place rule of warnings holds
        for start in range(0, n_cells, chunk_size):
            stop = min(start + chunk_size, n_cells)
            protein_spec = (cell_rows(targets.values, start, stop) if targets.values is not None
                            else request.token_ids)  # measured values: never with a context
            encoded, report = tokenizer(
                rna=cell_rows(rna, start, stop),
                **reading,
                gene_names=gene_names,
                proteins=protein_spec,
                max_length=config.max_genes,
                protein_max_length=max(len(request.token_ids), 1),
                truncation="first",
                return_tensors="pt",
                return_report=True,
                return_cell_scale=with_scale,
                **encoding,
            )
            constant_rna += report.constant_rna_cells
            constant_measured += report.constant_protein_cells
            if rna_summary is None:
                layout_info = check_layout(model, report, layout)
                rna_summary = report.rna.summary()
                rna_values = report.rna_values  # how the values were read (raw counts, log1p of counts, CPM, ...)
                # counted among the genes it reads, not those it leaves out
                gene_ids = np.asarray(report.rna.token_ids[report.rna.read_columns(encoding.get("learnt_genes"))],
                                      dtype=np.int64)
                untrained_genes = int(untrained_ids(model.encoder.gene_embedding.weight, gene_ids).sum())
                first_cells = Matrix(cell_rows(rna, start, stop), "RNA").raw_rows(0, stop - start)  # read again
                warn_if_bulk(first_cells, config.max_genes, model)
                if getattr(reading.get("rna_reading"), "applied", "") == "log1p_cp10k":  # counts, normalised here
                    warn_if_non_gene_counts(first_cells, report.rna)
            if encoded["protein_ids"].shape[1] != len(request.token_ids):
                raise RuntimeError("the tokenizer mapped the proteins differently from resolve(); please report this")
            with compute_precision(device, dtype):
                scaled, unscaled = predict_encoded(
                    model, encoded, config.max_proteins, batch_size, device, by_length=not config.pads_to_fixed_length
                )
            predictions[start:stop] = scaled[:, request.positions]
            expressed = encoded["input_values"] > SCALE_FLOOR  # zeros (and padding) sit at or below the floor
            if "attention_mask" in encoded:
                expressed &= encoded["attention_mask"].bool()
            genes_detected[start:stop] = expressed.sum(dim=1).numpy()
            if log1p_predictions is not None:
                log1p_predictions[start:stop] = unscaled[:, request.positions]
            if measured is not None and "labels" in encoded:
                measured[start:stop] = encoded["labels"].numpy()
                if measured_log is not None:
                    measured_log[start:stop] = _dense(cell_rows(targets.values, start, stop).X)[:, targets.columns]
            bar(stop - start)
    warn_constant_cells(constant_rna, n_cells, "RNA", stacklevel=2)
    warn_constant_cells(constant_measured, n_cells, "measured protein", stacklevel=2)
    result = anndata.AnnData(
        X=log1p_predictions if with_scale else predictions,
        obs=pd.DataFrame(index=pd.Index(np.asarray(rna.obs_names), dtype=str)) if hasattr(rna, "obs_names")
        else pd.DataFrame(index=[str(i) for i in range(n_cells)]),
        var=pd.DataFrame(
            {"token_id": np.asarray(targets.token_ids, dtype=np.int64), "mapping_route": targets.routes,
             # the gene each name was read as (CD3 -> CD3E, B220 (CD45R) -> PTPRC), to check the mapping
             "gene": [gene or "" for gene in tokenizer.convert_ids_to_genes(targets.token_ids)]},
            index=pd.Index(targets.names, dtype=str),
        ),
    )
    if hasattr(rna, "obs"):
        result.obs = rna.obs.copy()
    result.obs[GENES_DETECTED_COLUMN] = genes_detected
    warn_few_genes_detected(genes_detected, int(gene_ids.size) if gene_ids is not None else 0, config.max_genes)
    if with_scale:
        result.layers["scaled"] = predictions
    if measured is not None:
        result.layers["measured"] = measured_log if with_scale else measured
        if with_scale:
            result.layers["measured_scaled"] = measured
    result.uns["sctranslator"] = {
        "model": str(getattr(config, "_name_or_path", "") or "in-memory model"),
        "output_scale": "log1p_counts" if with_scale else "per_cell_scaled",
        "scale": LOG1P_DESCRIPTION if with_scale else SCALE_DESCRIPTION,
        "unmapped_proteins": list(targets.unmapped),
        "control_proteins": list(targets.controls),
        "duplicate_proteins": [f"{a} = {b} (token {t})" for a, b, t in targets.duplicates],
        "rna_mapping": rna_summary or "",
        "rna_values": rna_values or "",
        "gene_layout": layout_info,
        "max_genes": int(config.max_genes),
        "untrained_proteins": untrained_names,
        "protein_context": {"mode": protein_context, "proteins_added": request.added,
                            "fine_tuned_panel": request.fine_tuned_panel, "why": request.note},
        # mapped genes whose embedding the model never trained (rows zeroed in shipped pre-trained models)
        "genes_never_trained": untrained_genes,
    }
    if measured_values is not None:  # the kind of the measured values as given (counts, log, signed, CLR)
        result.uns["sctranslator"]["measured_values"] = measured_values
    return (result, targets) if return_targets else result


GENES_DETECTED_COLUMN = "sctranslator_genes_detected"
MIN_GENES_DETECTED = 100  # below it a cell's prediction rests on a handful of genes (QC filters keep >= 200)


MODIFIED_ROUTES = ("phospho", "modified_epitope")  # how the resolver reports AKT1_pS473, Caspase-7_cleavedD198
# ... or nearly every column in every sample of a gene-selected bulk table: single cells kept to their 100-200 most
# detected genes are dense in a typical cell, but some cell of the first chunk always misses many (at most 75 %)
BULK_DETECTED_SHARE = 0.95
BULK_ON_DEFAULT_MODEL = (
    " sctranslator-base is a single-cell model (bulk proteomes were only its warm start): on the CPTAC COAD tumours it "
    "was pre-trained on, its mean per-protein r with the measured proteome is 0.02, each protein's own mRNA 0.33. "
    "Fine-tune it on paired bulk data first (README: Fine-tuning)"
)


def warn_if_bulk(block: Any, max_genes: int, model: Any) -> None:
    """Warn when the RNA looks like bulk samples (judged on ``block``, the RNA values of one chunk of them, as
    stored): the model reads at most ``max_genes`` genes of each, and a model trained on single cells is no bulk
    model."""
    detected = detected_per_row(block)
    typical, width = float(np.median(detected)), block.shape[1]
    if not (typical >= BULK_DETECTED_GENES or (width >= 100 and detected.min() >= BULK_DETECTED_SHARE * width)):
        return
    shipped = Path(str(getattr(model, "name_or_path", "") or "")).resolve() == DEFAULT_MODEL_DIR.resolve()
    left_out = (f"; a typical sample detects {int(np.median(np.maximum(detected - max_genes, 0))):,} more, left out "
                "(knock-outs and attention then find those genes not read)" if typical > max_genes else "")
    warnings.warn(
        f"these look like bulk RNA samples ({typical:,.0f} of {width:,} genes detected in a typical one; single cells "
        f"show hundreds to a few thousand): the model reads at most {max_genes:,} genes of each sample"
        f"{left_out}, "
        "and predicts proteins in the units of the panels it learnt (log1p antibody counts for count panels, per-cell "
        "scaled otherwise), not RPPA or mass-spec units."
        + (BULK_ON_DEFAULT_MODEL if shipped else " A model trained on single cells predicts bulk proteomes poorly "
           "unless fine-tuned on paired bulk data"),
        InputQualityWarning, stacklevel=3,
    )


# columns of an RNA file that hold no gene: ERCC spike-ins, antibody or hashtag counts left in without feature types
NON_GENE_COLUMN = re.compile(r"^(ERCC-\d+|(ADT|CITE|HTO|AB)[_\-.].+|.*(hashtag|totalseq|_prot$|_adt$).*)$",
                             re.IGNORECASE)


def warn_if_non_gene_counts(block: Any, genes: Any) -> None:
    """Counts in columns named as no gene (:data:`NON_GENE_COLUMN`) still count in each cell's library size when
    counts are normalised (log1p(CP10k)), lowering every gene's value; say so when they hold over 1 % of the counts
    of the first cells (``block``: their counts as stored, ``genes``: their mapping report)."""
    suspects = np.array([status == "unmapped" and bool(NON_GENE_COLUMN.match(str(name)))
                         for name, status in zip(genes.names, genes.status, strict=True)], dtype=bool)
    if not suspects.any() or suspects.size != block.shape[1]:
        return
    totals = np.asarray(block.sum(axis=0)).ravel()
    share = float(totals[suspects].sum() / max(totals.sum(), 1e-12))
    if share > 0.01:
        named = [genes.names[i] for i in np.flatnonzero(suspects)[:3]]
        warnings.warn(
            f"{int(suspects.sum())} RNA columns are named as spike-ins, antibody or hashtag counts, not genes (e.g. "
            f"{named}), and hold {share:.0%} of the counts: they count in each cell's library size, which lowers "
            "every gene's log1p(CP10k) value. Drop them (adata[:, ~mask].copy()) or label the sides in "
            "var['feature_types'] ('Gene Expression' / 'Antibody Capture')",
            InputQualityWarning, stacklevel=3,
        )


def warn_few_genes_detected(genes_detected: np.ndarray, genes_given: int, max_genes: int) -> None:
    """Cells that express few of the genes the model reads get predictions as confident as any other's (a cell
    thinned to 1 UMI predicted CD3 at 280 counts); say how many, and where the count is. Few: under
    :data:`MIN_GENES_DETECTED`, or under 1 % of the genes the input gives (a file of 3,000 highly variable genes: 30,
    where QC'd cells express 58 or more) and a quarter of a small model's positions."""
    minimum = max(1, min(MIN_GENES_DETECTED, genes_given // 100, max_genes // 4))
    few = genes_detected < minimum
    if few.any():
        warnings.warn(
            f"{int(few.sum())} of {few.size} cells express fewer than {minimum} of the {genes_given:,} genes the "
            f"model reads here (fewest: {int(genes_detected.min())}): their predictions rest on little RNA and are "
            f"unreliable. Check them, as QC does (cells with under 200 genes over the whole transcriptome are "
            f"usually removed); each cell's count is in obs['{GENES_DETECTED_COLUMN}']",
            InputQualityWarning, stacklevel=3,
        )


def _dense(values: Any) -> np.ndarray:
    return np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float32)


_NOTIFIED: set[str] = set()


def aligned_to_layout(model, tokenizer, rna: Any, gene_names: Sequence[str] | None) -> tuple[Any, Sequence[str] | None]:
    """``rna`` as an in-memory AnnData whose columns are the model's ordered gene layout (interpretation and
    knock-out, which index genes by column, then see exactly the positions the model reads); unchanged for
    models without an ordered layout. Values are taken after the tokenizer's RNA transform (library sizes over
    the whole file) and read back as they are; layout genes the file lacks are zero columns. Refuses, warns and
    reports as :func:`predict_proteins` does."""
    import anndata
    import pandas as pd

    from tokenization.matrix import align_to_layout, take_columns

    layout = reading_layout(model, tokenizer, rna, gene_names)
    if layout is None or not layout.ordered or not model.config.pads_to_fixed_length:
        return rna, gene_names
    report = _probe(tokenizer, rna, gene_names, gene_layout=layout.token_ids)
    check_layout(model, report, layout)
    columns, _, _, _ = align_to_layout(report.rna, layout.token_ids)
    aligned = take_columns(transformed_rna(tokenizer, rna), columns)
    names = [str(n) for n in tokenizer.convert_ids_to_genes(layout.token_ids)]
    obs = rna.obs.copy() if hasattr(rna, "obs") else pd.DataFrame(index=[str(i) for i in range(aligned.shape[0])])
    return anndata.AnnData(X=aligned, obs=obs, var=pd.DataFrame(index=pd.Index(names, dtype=str))), names


def takes_rna_reading(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` takes ``rna_reading=``: tokenizers saved with a model folder before it existed do not
    (their chunks are then read each on its own, as they were)."""
    import inspect

    return "rna_reading" in inspect.signature(tokenizer.__call__).parameters


def reading_options(tokenizer: Any, rna: Any, chunk_size: int | None = None) -> dict[str, ValueReading]:
    """``{"rna_reading": ...}`` for the tokenizer call of every chunk of ``rna``'s cells: how the RNA values of the
    whole input are read (their normalisation, from its first cells, read ``chunk_size`` rows at a time), chosen
    once. A chunk alone may show another -- one lone cell (the last of 257 at chunk_size 256) shows no common
    total, and its log1p(CPM) was read as log1p(CP10k). Empty for a tokenizer that takes none."""
    if not takes_rna_reading(tokenizer):
        return {}
    transform = getattr(tokenizer, "rna_transform", "none")
    return {"rna_reading": Matrix(rna, "RNA", transform).choose_reading(chunk_size)}


def transformed_rna(tokenizer, rna: Any):
    """Every cell of ``rna`` (AnnData or matrix) after the tokenizer's RNA transform, as CSR float32."""
    import scipy.sparse as sp

    matrix = Matrix(rna, "RNA", getattr(tokenizer, "rna_transform", "none"))
    matrix.adapt_transform()
    block = matrix.rows(0, matrix.shape[0])
    return sp.csr_matrix(block, dtype=np.float32)


def _probe(tokenizer, rna: Any, gene_names: Sequence[str] | None, **options: Any) -> Any:
    """The encoding report of ``rna``'s first cells, for how its columns map; its warnings are left to the pass
    that encodes every cell, which would otherwise show each of them twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", MixedFeaturesWarning)  # said once per input (Matrix), here if first
        _, report = tokenizer(rna=cell_rows(rna, 0, min(count_cells(rna), 2)), gene_names=gene_names, max_length=1,
                              return_report=True, return_tensors=None, **options)
    return report


def reading_layout(model, tokenizer, rna: Any, gene_names: Sequence[str] | None,
                   chunk_size: int = 256) -> GeneLayout | None:
    """The gene layout ``rna`` is read in: the model's own (saved with it), or -- for a position-reading model
    without an ordered one whose input maps more genes than its ``max_genes`` positions -- the ``max_genes``
    mapped genes with the highest mean value over all the input's cells (values as given), kept in the file's
    order: a deliberate cut that keeps the informative genes instead of whatever columns
    come first (10x files are in chromosome order). The choice is this input's, so a part of a file can read
    other genes than the whole (predict whole files, pass the whole file's layout, or select genes first);
    nothing is saved."""
    layout: GeneLayout | None = getattr(model, "gene_layout", None)
    config = model.config
    if (layout is not None and layout.ordered) or not config.pads_to_fixed_length:
        return layout
    report = _probe(tokenizer, rna, gene_names)
    columns, token_ids = np.asarray(report.rna.columns), np.asarray(report.rna.kept_token_ids)
    if columns.size <= config.max_genes:
        return layout
    means = column_means(tokenizer, rna, columns, chunk_size)  # one extra pass over the cells, in chunks
    if not np.isfinite(means).all():  # NaN, inf or negative values: the tokenizer's checks say which and where
        return layout
    kept = np.sort(np.argsort(-means, kind="stable")[: config.max_genes])
    return GeneLayout("ordered", token_ids[kept].tolist(), source=f"{SELECTED_BY_EXPRESSION}: {config.max_genes} of "
                      f"{columns.size} mapped genes")


SELECTED_BY_EXPRESSION = "this input's most expressed genes (highest mean over its cells), in file order"


def column_means(tokenizer, rna: Any, columns: np.ndarray, chunk_size: int = 256) -> np.ndarray:
    """Mean over all cells of ``rna``'s ``columns``, values as stored, read in row chunks; NaN for a column with a
    NaN, infinite or negative value."""
    matrix = Matrix(rna, "RNA")
    total = np.zeros(columns.size, dtype=np.float64)
    for start in range(0, matrix.shape[0], chunk_size):
        block = matrix.raw_rows(start, min(start + chunk_size, matrix.shape[0]))[:, columns]
        total += np.asarray(block.sum(axis=0), dtype=np.float64).ravel()
        total[np.asarray((block < 0).sum(axis=0)).ravel() > 0] = np.nan
    return total / max(matrix.shape[0], 1)


def check_layout(model, report, layout: GeneLayout | None = None) -> dict[str, Any]:
    """What was done to fit the input to the gene layout it is read in (``layout``, from :func:`reading_layout`;
    default the model's) for ``uns``; refuses an input that holds less than :data:`MIN_LAYOUT_SHARE` of the
    model's ordered layout, warns when layout genes were filled with zeros, and tells once per model that a
    position-reading model without a recorded layout reads file order (and which genes a cut kept)."""
    own: GeneLayout | None = getattr(model, "gene_layout", None)
    layout = own if layout is None else layout
    if layout is not None and layout.ordered and (own is None or not own.ordered):
        return _unknown_layout_info(model, own, genes=len(layout.token_ids) + report.layout_dropped,
                                    left_out=int(report.layout_dropped))
    if layout is not None and layout.ordered:
        n = len(layout.token_ids)
        share = 1 - report.layout_filled / n
        if share < MIN_LAYOUT_SHARE:
            raise ValueError(
                f"the input holds {share:.0%} of the {n} genes this model reads (it was trained on them, by position; "
                f"at least {MIN_LAYOUT_SHARE:.0%} are needed): give the genes it was trained on ({layout.source}); "
                "check that gene names map (gene_names=, the report) and that it is the right model")
        if report.layout_filled:
            warnings.warn(
                f"{report.layout_filled} of the {n} genes this model reads are not in the input and were set to zero "
                f"({share:.0%} present); predictions lean on the genes that are there", UserWarning, stacklevel=3)
        return {"kind": "ordered", "genes": n, "filled_with_zeros": int(report.layout_filled),
                "left_out": int(report.layout_dropped), "source": layout.source}
    if layout is not None and layout.kind == "set":
        outside = int(report.rna.columns.size - report.rna.read_columns(layout.token_ids).size)
        genes_read = int(report.rna.columns.size) - outside
        warn_if_few_genes(genes_read, len(layout.token_ids), "genes this model learnt")
        warn_if_gene_selected(genes_read, len(layout.token_ids))
        return {"kind": "set", "genes": len(layout.token_ids), "input_genes_outside": outside, "source": layout.source}
    warn_if_few_genes(int(report.rna.columns.size), model.config.max_genes, "gene positions this model reads")
    return _unknown_layout_info(model, layout, genes=int(report.rna.columns.size), left_out=0)


# a transcriptome maps thousands of genes and a gene-selected file a few hundred (the shared TCGA BRCA bulk set
# keeps 200); an input reading fewer than this many (and under a tenth of what the model reads) is most likely
# not one: a protein (ADT) panel passed as RNA maps a few dozen antibody targets (ECCITE-seq's 49 antibodies: 29)
FEW_GENES = 100


def warn_if_few_genes(genes_read: int, model_genes: int, what: str) -> None:
    """Warn when an input gives a model reading ``model_genes`` genes only ``genes_read`` of them (models
    with an ordered layout refuse such inputs instead, see :data:`MIN_LAYOUT_SHARE`)."""
    if genes_read >= min(FEW_GENES, 0.1 * model_genes):
        return
    warnings.warn(
        f"the input gives only {genes_read} of the {model_genes} {what}; a transcriptome gives thousands (a "
        "gene-selected file a few hundred), and predictions from so few genes are unreliable. If this is the "
        "protein (ADT) matrix, pass it as the proteins (proteins= / --protein) and the cells' RNA as rna",
        InputQualityWarning, stacklevel=4)


# a file subset to highly variable genes (1,000-5,000) maps a fraction of the genes a model reading genes by
# identity learnt from whole transcriptomes (sctranslator-base: 22,187); below this share the input is most likely one
GENE_SELECTED_SHARE = 0.25


def warn_if_gene_selected(genes_read: int, model_genes: int) -> None:
    """Warn when an input gives a model that reads every expressed gene (the variant) under
    :data:`GENE_SELECTED_SHARE` of the genes it learnt, as a file subset to highly variable genes does (inputs
    :func:`warn_if_few_genes` warns about are left to it)."""
    if genes_read >= GENE_SELECTED_SHARE * model_genes or genes_read < min(FEW_GENES, 0.1 * model_genes):
        return
    warnings.warn(
        f"the input gives {genes_read} of the {model_genes} genes this model learnt, as a gene-selected file (highly "
        "variable genes, a targeted panel) does. The model reads every expressed gene, and fewer genes cost "
        "accuracy: measured with sctranslator-base on held-out cells (mean per-protein r, log1p counts), 1,000 "
        "highly variable genes instead of all gave ECCITE-seq 0.416 instead of 0.536, REAP-seq 0.337 instead of "
        "0.463, 10x PBMC 0.683 instead of 0.722. Give all genes if the file has them (e.g. adata.raw.to_adata())",
        InputQualityWarning, stacklevel=4)


def _unknown_layout_info(model, layout: GeneLayout | None, genes: int, left_out: int) -> dict[str, Any]:
    """Notice (once per model) and ``uns`` entry for a model without an ordered layout that read ``genes``
    mapped genes, ``left_out`` of them cut by :func:`reading_layout`."""
    config = model.config
    why = layout.source if layout is not None else "saved before sctranslator recorded layouts, or converted"
    if config.pads_to_fixed_length:
        key = str(getattr(config, "_name_or_path", "") or id(model))
        if key not in _NOTIFIED:
            _NOTIFIED.add(key)
            warnings.warn(UNKNOWN_NOTICE.format(why=why), UserWarning, stacklevel=4)
    if left_out:
        warnings.warn(f"{left_out} of the {genes} mapped genes were not read: this model reads {config.max_genes} "
                      f"positions and records no gene layout, so it read {SELECTED_BY_EXPRESSION} (counted in "
                      "uns['sctranslator']['gene_layout'])", UserWarning, stacklevel=4)
    return {"kind": "unknown", "why": why, "genes_read": genes - left_out, "genes_cut": left_out,
            "rule": f"every mapped gene in file order; beyond max_genes, {SELECTED_BY_EXPRESSION}"
            if config.pads_to_fixed_length else "each cell's expressed genes (by identity)"}


def untrained_ids(embedding: torch.Tensor, token_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """(len(token_ids),) True where the id's embedding row is all zero: an id the model never trained on
    (pre-trained models shipped by ``training/pretrain.py`` zero those rows; a random row cannot be told
    from a trained one, so other models report none)."""
    ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64))
    if ids.numel() == 0:
        return np.zeros(0, dtype=bool)
    with torch.no_grad():
        rows = embedding.detach()[ids.to(embedding.device)]
        return (rows == 0).all(dim=-1).cpu().numpy()


def untrained_proteins(model: Any, targets: ProteinTargets, stacklevel: int = 3) -> list[str]:
    """The proteins asked for whose embedding the model never trained (see :func:`untrained_ids`), with a warning
    naming them: predictions, attention maps and knockout effects of such a protein carry nothing of it."""
    untrained = untrained_ids(model.decoder.gene_embedding.weight, targets.token_ids)
    names = [targets.names[i] for i in np.flatnonzero(untrained)]
    if names:
        warnings.warn(
            f"{len(names)} of {len(targets.token_ids)} proteins were never trained by this model (no panel it learnt "
            f"from measured them: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}); their predictions "
            "carry no protein-specific information. Fine-tune on cells whose panel measures them (listed as "
            "untrained_proteins: in uns['sctranslator'], or of an attention or knockout result)",
            UserWarning, stacklevel=stacklevel,
        )
    return names


_DTYPE_NAMES = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
                "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


def compute_precision(device: torch.device | str, dtype: torch.dtype | str | None):
    """Context for running a model with its matrix products in ``dtype`` (``torch.bfloat16`` / ``float16``:
    autocast; the weights stay float32). The steps whose rounding would swamp the small differences between
    cells run in float32 inside the model (``favor_attention.in_float32``). None or float32: full precision.

    On a CPU with AVX512-BF16 a 20,000-gene cell runs x2.3 faster; predictions move by ~1e-3 of their range,
    which a trained model's cell-to-cell differences dwarf but an untrained model's (whose outputs barely vary
    across cells) do not: ``benchmarks/inference.py --padding`` measures both. A device without such
    instructions emulates them, slower than float32 (x13 on a 2-core AVX2 EPYC): a warning says so, once.
    """
    import contextlib

    if isinstance(dtype, str):  # "bfloat16", "bf16", "torch.float16", as --dtype and configs write it
        dtype = _DTYPE_NAMES.get(dtype.strip().lower().removeprefix("torch."), dtype)
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be float32, bfloat16 or float16 (a torch.dtype or its name), not {dtype!r}")
    device_type = torch.device(device).type
    warn_if_emulated(device_type, dtype)
    return torch.autocast(device_type, dtype=dtype)


# instruction sets that multiply these types in hardware on x86 CPUs (torch.cpu.get_capabilities() keys)
_X86_LOW_PRECISION_KEYS = {torch.bfloat16: ("avx512_bf16", "amx_bf16"), torch.float16: ("avx512_fp16", "amx_fp16")}


def low_precision_in_hardware(device_type: str, dtype: torch.dtype) -> bool | None:
    """Whether ``device_type`` ("cpu", "cuda") multiplies ``dtype`` matrices in hardware; None: cannot tell.

    Without such instructions (x86 CPUs before AVX512-BF16 / AVX512-FP16, CUDA before Ampere for bfloat16)
    PyTorch emulates the type, which is slower than float32, not faster."""
    if device_type == "cuda":
        if dtype == torch.bfloat16:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        return True
    if device_type != "cpu" or dtype not in _X86_LOW_PRECISION_KEYS:
        return None
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # older PyTorch: no way to ask
        return None
    if capabilities.get("architecture") != "x86_64":  # Arm and others name their features differently
        return None
    return any(capabilities.get(key, False) for key in _X86_LOW_PRECISION_KEYS[dtype])


@functools.cache
def warn_if_emulated(device_type: str, dtype: torch.dtype) -> None:
    """Warn (once per device type and dtype) when ``dtype`` would run emulated, slower than float32."""
    if low_precision_in_hardware(device_type, dtype) is not False:
        return
    name = str(dtype).removeprefix("torch.")
    if device_type == "cpu":
        hardware = "AVX512-BF16 or AMX" if dtype == torch.bfloat16 else "AVX512-FP16 or AMX-FP16"
        measured = (" (x13 slower at 20,000 genes on a 2-core AVX2 CPU; benchmarks/inference.py --padding)"
                    if dtype == torch.bfloat16 else "")
        device_label = "CPU"
    else:
        hardware, measured, device_label = "Ampere or newer", "", "GPU"
    warnings.warn(
        f"{name} was asked for, but this {device_label} has no {name} matrix instructions ({hardware}): PyTorch "
        f"emulates them, slower than float32, not faster{measured}. Use float32 here (leave dtype / --dtype unset).",
        UserWarning, stacklevel=3,
    )


def warn_if_passes_scaled_apart(config: Any, n_asked: int, why: str, alternative: str = "") -> None:
    """Warn when ``n_asked`` proteins take several decoder passes whose scaled predictions cannot be put on one
    scale (``why``: no protein scale part, or a use of the scaled predictions themselves)."""
    if n_asked <= config.max_proteins:
        return
    n_passes = -(-n_asked // config.max_proteins)
    warnings.warn(
        f"{n_asked} proteins run in {n_passes} decoder passes (max_proteins={config.max_proteins}) and {why}, so "
        "each pass is scaled per cell within its own proteins: within a cell, values of proteins from different "
        f"passes are not on one scale (across cells each protein is). Ask at most {config.max_proteins} proteins at "
        f"a time{alternative}",
        UserWarning, stacklevel=3,
    )


def decoder_passes(protein_ids: torch.Tensor | np.ndarray, max_proteins: int, by_id: bool) -> list[np.ndarray]:
    """The protein columns of each decoder pass: all in one pass when they fit in ``max_proteins``. ``by_id``
    (models that read no protein positions): ``ceil(n / max_proteins)`` passes of equal size (within one), the
    columns dealt into them in order of token id, so a protein is asked with the same others however the request
    is ordered. Otherwise consecutive runs of ``max_proteins`` in the order given, as ``tokenizer.split_proteins``
    cuts them: the MLP translator reads positions, and a fine-tuned panel's proteins keep theirs."""
    n_proteins = len(protein_ids)
    if n_proteins <= max_proteins:
        return [np.arange(n_proteins)]
    if not by_id:
        return [np.arange(first, min(first + max_proteins, n_proteins)) for first in range(0, n_proteins, max_proteins)]
    order = np.argsort(np.asarray(protein_ids), kind="stable")
    return np.array_split(order, -(-n_proteins // max_proteins))


def predict_encoded(
    model, encoded, max_proteins: int, batch_size: int, device: torch.device, by_length: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run one tokenized chunk through the model: mini-batches of cells × decoder-sized protein passes
    (:func:`decoder_passes`).

    Returns the scaled predictions and, when the model has the protein scale part and ``encoded`` holds
    ``cell_covariates``, the log1p-count ones (else None); each pass brings its proteins back with the bounds
    predicted for them. A request in several passes is then scaled again as one panel: between the lowest of
    the passes' predicted minima and the highest of their maxima, so the scaled predictions of one cell are
    one affine map of its log1p ones (without the scale part each pass stays scaled within itself).
    ``by_length`` (models whose predictions do not depend on padding or order: the cross-attention variant):
    cells are batched in order of length and each batch is cut to its longest cell, so little
    padding is computed; results are scattered back to the input order; such models' passes are dealt by
    protein id.
    """
    n_cells, n_proteins = encoded["protein_ids"].shape
    out = np.empty((n_cells, n_proteins), dtype=np.float32)
    covariates = encoded.get("cell_covariates") if getattr(model, "scale_head", None) is not None else None
    out_log1p = np.empty_like(out) if covariates is not None else None
    passes = decoder_passes(encoded["protein_ids"][0], max_proteins, by_id=by_length) if n_cells else []
    bounds = np.empty((n_cells, len(passes), 2), dtype=np.float64) if out_log1p is not None else None
    order = None
    if by_length:
        lengths = encoded["attention_mask"].sum(dim=1)
        order = torch.argsort(lengths, stable=True)
    with torch.inference_mode():
        for first in range(0, n_cells, batch_size):
            cells = slice(first, first + batch_size)
            if order is not None:
                cells = order[cells]
                width = max(int(lengths[cells].max()), 1)  # valid genes are left-aligned
                rna_side = {
                    key: encoded[key][cells, :width].to(device)
                    for key in ("input_ids", "input_values", "attention_mask")
                }
            else:
                rna_side = {
                    key: encoded[key][cells].to(device) for key in ("input_ids", "input_values", "attention_mask")
                }
            rows = cells.numpy() if order is not None else np.arange(n_cells)[cells]
            for index, columns in enumerate(passes):
                proteins = torch.as_tensor(columns)
                result = model(
                    **rna_side,
                    protein_ids=encoded["protein_ids"][cells][:, proteins].to(device),
                    protein_attention_mask=encoded["protein_attention_mask"][cells][:, proteins].to(device),
                    cell_covariates=None if covariates is None else covariates[cells].to(device),
                )
                out[np.ix_(rows, columns)] = result.predictions.float().cpu().numpy()
                if out_log1p is not None:
                    out_log1p[np.ix_(rows, columns)] = result.log1p_predictions.float().cpu().numpy()
                    bounds[rows, index] = result.protein_scale.float().cpu().numpy()
    if out_log1p is not None and len(passes) > 1:
        out = scale_between(out_log1p, bounds[:, :, :1].min(axis=1), bounds[:, :, 1:].max(axis=1)).astype(np.float32)
    return out, out_log1p


def progress_bar(progress: bool | Callable[[int], None], total: int) -> Callable[[int], None]:
    if callable(progress):
        return progress
    if not progress:
        return lambda n: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="cell", desc="predicting")

    def update(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return update
