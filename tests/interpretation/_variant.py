"""The variant's tiny model, tokenizer and cells shared by the interpretation tests of the variant."""

from __future__ import annotations

import anndata as ad
import numpy as np
import torch

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import TINY_MODEL

PROTEINS = ["CD4", "CD8A", "CD19", "PTPRC"]
N_GENES = 40


def variant(masking: str = "masked", **overrides) -> SCTranslatorForProteinPrediction:
    torch.manual_seed(0)
    config = SCTranslatorConfig(**{**TINY_MODEL, "max_proteins": 4, **overrides}, translator_type="cross_attention",
                                attention_masking=masking)
    return SCTranslatorForProteinPrediction(config).eval()


def variant_tokenizer(vocab_dir) -> SCTranslatorTokenizer:
    return SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=TINY_MODEL["max_genes"],
                                                      protein_max_length=4)


def mapped_gene_names(tokenizer, data_dir, n: int = N_GENES) -> list[str]:
    """The first ``n`` ECCITE gene names the tokenizer maps."""
    candidates = list(ad.read_h5ad(data_dir / "eccite_rna.h5ad", backed="r").var_names[:300])
    report = tokenizer.resolve(candidates, "gene")
    return [candidates[i] for i in report.columns][:n]


def counts_matrix(n_cells: int, seed: int = 0, driver: int | None = None) -> np.ndarray:
    """Poisson counts with many zeros, so every cell expresses a different set of genes."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 2.0, size=(n_cells, N_GENES)) * (rng.random((n_cells, N_GENES)) < 0.6)
    if driver is not None:
        rate[:, driver] = 3 * rng.gamma(2.0, 2.0, size=n_cells) * (rng.random(n_cells) < 0.8)  # often the maximum
    counts = rng.poisson(rate).astype(np.float32)
    counts[:, 0] = 0  # never expressed
    return counts
