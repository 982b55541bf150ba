"""``pipeline("protein-prediction", model=...)``: AnnData in, AnnData of predicted proteins out."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pandas as pd
import torch
from transformers import Pipeline

from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from .inference import predict_proteins, proteins_argument, with_layer


class ProteinPredictionPipeline(Pipeline):
    """Predict protein abundances for the cells of an AnnData (or ``.h5ad`` path, MuData, or
    ``(matrix, gene_names)``).

    Example::

        predictor = pipeline("protein-prediction", model="path/or/hub-id")
        proteins = predictor(adata, proteins=["CD4", "CD8A", "HLA-DR"])       # AnnData, cells x proteins
        predictor(adata, proteins=protein_adata, inplace=True)                # -> adata.obsm["sctranslator_proteins"]

    Any number of proteins may be asked for: they are split into passes of the decoder's length.
    Keyword arguments: ``proteins``, ``gene_names``, ``batch_size`` (cells per forward; default: the one given to
    ``pipeline(...)``, else ``inference.default_batch_size``),
    ``chunk_size`` (cells tokenized at once), ``inplace``, ``obsm_key``, ``progress``, and
    ``protein_transform`` (what puts measured proteins given as a protein AnnData on the training scale
    in ``layers["measured"]``: "auto", the default, takes log1p of counts and leaves RPPA or mass-spec
    values as they are; "log1p" or "none" force it), and ``compute_dtype`` (``torch.bfloat16``: matrix
    products in bfloat16, the weights and precision-sensitive steps float32; see
    ``inference.compute_precision``), and ``protein_context`` ("auto": proteins of the model's fine-tuning panel are
    asked inside that panel, else fewer than 10 proteins inside the model's training proteins, and only those asked
    are returned; "model", "none"; see ``inference.predict_proteins``), and ``layer`` (an AnnData's layer to read the
    RNA from, e.g. "counts", or "raw" for ``.raw``: where the counts are when X holds normalised or scaled values).
    The tokenizer is the model folder's (``preprocessor_config.json`` + ``gene_vocab.json``), or the one passed
    as ``feature_extractor=`` or ``tokenizer=`` (an ``SCTranslatorTokenizer`` or a folder).
    """

    # The pipeline loads its tokenizer itself (see __init__): transformers' AutoFeatureExtractor (from 5.25) builds
    # feature extractors from preprocessor_config.json alone and never reads the gene vocabulary beside it.
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        _check_device(kwargs.get("device"))  # else torch's "Torch not compiled with CUDA enabled" from .to(device)
        super().__init__(model, *args, **kwargs)
        weights = next(self.model.parameters(), None)
        if weights is not None and weights.dtype != torch.float32:  # pipeline(..., dtype=torch.bfloat16) casts them all
            warnings.warn(
                f"the model's weights are {str(weights.dtype).removeprefix('torch.')} (pipeline(dtype=...) casts every "
                "weight, the embeddings and normalisers too: predictions moved by up to 0.09 log1p on ECCITE); for "
                "bfloat16 speed with the precision-sensitive steps in float32, load in float32 and call with "
                "compute_dtype=torch.bfloat16", UserWarning, stacklevel=3)
        given = self.feature_extractor if self.feature_extractor is not None else self.tokenizer
        self.tokenizer = None  # one tokenizer, kept as the feature extractor: the base class reads tokenizers as text
        self.feature_extractor = self._load_gene_tokenizer(given)

    def _load_gene_tokenizer(self, given: Any) -> Any:
        """The tokenizer passed, read from a folder passed, or from the model's own folder (or Hub repo, at the
        revision the model was read from); None where the model came from no folder."""
        if given is not None and not isinstance(given, (str, os.PathLike)):
            return given
        if given is not None:
            return SCTranslatorTokenizer.from_pretrained(given)
        source = str(getattr(self.model, "name_or_path", "") or "")
        if not source:
            return None
        if os.path.isabs(source) or os.path.exists(source) or source.startswith("."):  # a folder, maybe gone since
            if not os.path.isfile(os.path.join(source, "preprocessor_config.json")):
                return None  # __call__ says what to pass
            return SCTranslatorTokenizer.from_pretrained(source)
        revision = getattr(self.model.config, "_commit_hash", None)
        try:
            return SCTranslatorTokenizer.from_pretrained(source, **({"revision": revision} if revision else {}))
        except (OSError, ValueError) as error:  # pipeline() hands its token and cache_dir to its own loaders only
            raise OSError(
                f"the tokenizer of {source} could not be read ({error}); for a private repo or another cache, pass "
                f"feature_extractor=SCTranslatorTokenizer.from_pretrained({source!r}, token=..., cache_dir=...) "
                "to pipeline(...)"
            ) from error

    def _sanitize_parameters(self, **kwargs: Any):
        return {}, {}, kwargs

    def __call__(
        self,
        rna: Any,
        proteins: Any = None,
        gene_names: Any = None,
        batch_size: int | None = None,
        chunk_size: int = 256,
        inplace: bool = False,
        obsm_key: str = "sctranslator_proteins",
        progress: bool = False,
        protein_transform: str = "auto",
        compute_dtype: Any = None,
        protein_context: str = "auto",
        layer: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        if batch_size is None:  # pipeline(..., batch_size=N) sets the default, as for transformers' pipelines
            batch_size = self._batch_size
        given = rna  # inplace=True writes to the AnnData given, whichever layer was read
        proteins = proteins_argument(proteins, given)  # the AnnData itself: its antibodies in obsm
        rna = with_layer(rna, layer)
        if self.feature_extractor is None:
            raise ValueError(
                "this model folder has no tokenizer (preprocessor_config.json + gene_vocab.json): pass "
                "feature_extractor=SCTranslatorTokenizer.from_pretrained(...) to pipeline(...)"
            )
        result = predict_proteins(
            self.model,
            self.feature_extractor,
            rna,
            proteins,
            gene_names=gene_names,
            batch_size=batch_size,
            chunk_size=chunk_size,
            device=self.device,
            progress=progress,
            protein_transform=protein_transform,
            dtype=compute_dtype,
            protein_context=protein_context,
        )
        if not inplace:
            return result
        rna = given
        if not hasattr(rna, "obsm"):
            raise ValueError("inplace=True needs an in-memory AnnData as input")
        if getattr(rna, "is_view", False):  # anndata turns the view into a copy: the AnnData it came from gets nothing
            warnings.warn("inplace=True on a view (adata[...]): the results go into the view, which anndata turns "
                          "into a copy of its own; the AnnData it was taken from gets nothing. Pass that AnnData (or "
                          "keep the copy: view = adata[...].copy())", UserWarning, stacklevel=2)
        if obsm_key in rna.obsm:  # an earlier run's predictions (another panel, another model) are replaced
            warnings.warn(f"obsm[{obsm_key!r}] held earlier predictions; they are replaced (pass obsm_key= to keep "
                          "both)", UserWarning, stacklevel=2)
        rna.obsm[obsm_key] = result.to_df()
        rna.obsm.pop(f"{obsm_key}_scaled", None)
        if "scaled" in result.layers:  # the per-cell scaled values beside the log1p counts, as predict's layers
            rna.obsm[f"{obsm_key}_scaled"] = pd.DataFrame(result.layers["scaled"], index=result.obs_names,
                                                          columns=result.var_names)
        rna.uns[obsm_key] = result.uns["sctranslator"]
        return None

    # The whole dataset is handled by __call__ (chunked, multi-pass); these satisfy the base class.
    def preprocess(self, inputs: Any, **kwargs: Any) -> Any:
        return inputs

    def _forward(self, model_inputs: Any, **kwargs: Any) -> Any:
        return self.model(**model_inputs)

    def postprocess(self, model_outputs: Any, **kwargs: Any) -> Any:
        return model_outputs


def _check_device(device: Any) -> None:
    """A ``device=`` this machine cannot run on, named with the fix, before the base class moves the model."""
    import torch

    if device is None or isinstance(device, bool):
        return
    try:
        kind = ("cpu" if device < 0 else "cuda") if isinstance(device, int) else torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a device this build of PyTorch knows; use 'cpu', 'cuda', "
                         "'cuda:N' or 'mps'") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA device is available here; use device='cpu' "
                         "(or leave device out)")
