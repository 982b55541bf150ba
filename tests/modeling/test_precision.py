"""bfloat16 matrix products (``dtype=torch.bfloat16``): the weights stay float32, the precision-sensitive steps
run in float32, and a trained model's predictions keep their cell-to-cell pattern."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import torch

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR
from modeling_sctranslator.favor_attention import softmax_kernel_features
from modeling_sctranslator.inference import compute_precision, predict_proteins, warn_if_emulated
from modeling_sctranslator.metrics import pearson_per_protein
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import TINY_MODEL


def test_compute_precision_is_autocast_for_low_precision_only():
    with compute_precision("cpu", None):
        assert not torch.is_autocast_enabled("cpu")
    with compute_precision("cpu", torch.float32):
        assert not torch.is_autocast_enabled("cpu")
    with compute_precision("cpu", torch.bfloat16):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
        compute_precision("cpu", torch.int8)
    # the names --dtype and configs use: "bfloat16" was refused as "not bfloat16"
    for name in ("bfloat16", "bf16", "torch.bfloat16"):
        with compute_precision("cpu", name):
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with compute_precision("cpu", "float32"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="a torch.dtype or its name.*'bfloat61'"):
        compute_precision("cpu", "bfloat61")


@pytest.mark.parametrize(("capabilities", "warns"), [
    ({"architecture": "x86_64", "avx2": True, "avx512_bf16": False, "amx_bf16": False}, True),  # AVX2 EPYC
    ({"architecture": "x86_64", "avx512_bf16": True}, False),
    ({"architecture": "x86_64", "amx_bf16": True}, False),
    ({"architecture": "aarch64"}, False),  # cannot tell: no warning rather than a wrong one
])
def test_bfloat16_on_a_cpu_that_emulates_it_warns_once(monkeypatch, capabilities, warns):
    """Emulated bfloat16 ran x13 slower than float32 here: a user asking for speed must hear so, once."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    warn_if_emulated.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):  # predict_proteins enters it once per chunk
                with compute_precision("cpu", torch.bfloat16):
                    assert torch.is_autocast_enabled("cpu")  # still runs as asked
    finally:
        warn_if_emulated.cache_clear()
    messages = [str(w.message) for w in caught if "matrix instructions" in str(w.message)]
    assert len(messages) == (1 if warns else 0), messages
    if warns:
        assert "slower than float32" in messages[0] and "AVX512-BF16" in messages[0]
        assert "Use float32" in messages[0]


def test_float16_on_a_cpu_that_emulates_it_warns_without_bfloat16s_numbers(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"architecture": "x86_64", "avx512_fp16": False})
    warn_if_emulated.cache_clear()
    try:
        with pytest.warns(UserWarning, match=r"float16 matrix instructions \(AVX512-FP16 or AMX-FP16\)") as caught:
            warn_if_emulated("cpu", torch.float16)
    finally:
        warn_if_emulated.cache_clear()
    assert "x13" not in str(caught[0].message)  # that slowdown was measured for bfloat16


def test_the_embedding_and_the_outputs_stay_float32_under_bfloat16():
    torch.manual_seed(0)
    model = SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY_MODEL, predict_protein_scale=True)).eval()
    ids, values = torch.randint(1, 500, (2, 64)), torch.rand(2, 64)
    with torch.no_grad(), compute_precision("cpu", torch.bfloat16):
        assert model.encoder.embed(ids, values).dtype == torch.float32  # expression values kept to float32
        projected = softmax_kernel_features(torch.randn(1, 2, 10, 8), torch.randn(12, 8), True, 1e-4)
        assert projected.dtype == torch.bfloat16  # the FAVOR+ features: bfloat16 (where the speed is)
    batch = {"input_ids": torch.randint(1, 500, (3, 64)), "input_values": torch.rand(3, 64),
             "protein_ids": torch.randint(1, 500, (3, 6)), "cell_covariates": torch.rand(3, 4)}
    with torch.no_grad():
        reference = model(**batch)
        with compute_precision("cpu", torch.bfloat16):
            low = model(**batch)
    assert low.predictions.dtype == torch.float32 and low.log1p_predictions.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights are not cast
    torch.testing.assert_close(low.predictions, reference.predictions, atol=5e-2, rtol=0)
    assert not torch.equal(low.predictions, reference.predictions)  # the products did run in bfloat16


def test_a_trained_models_predictions_keep_their_pattern_across_cells(data_dir):
    """The shipped model on 60 real cells: per-protein r with float32 >= 0.999 on both output scales (an
    untrained model's outputs barely vary across cells, so there bfloat16 rounding is of their size: see the
    README's speed section)."""
    model = SCTranslatorForProteinPrediction.from_pretrained(DEFAULT_MODEL_DIR).eval()
    tokenizer = SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:60].copy()
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:60].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = predict_proteins(model, tokenizer, rna, adt)
        low = predict_proteins(model, tokenizer, rna, adt, dtype=torch.bfloat16)
    for layer in (None, "scaled"):
        a = np.asarray(full.layers[layer] if layer else full.X, np.float64)
        b = np.asarray(low.layers[layer] if layer else low.X, np.float64)
        r = pearson_per_protein(b, a)
        assert np.nanmin(r) >= 0.999, (layer, np.sort(r)[:3])
        assert 0 < np.abs(a - b).max() < 0.1


def test_bfloat16_on_a_gpu_before_ampere_warns(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    warn_if_emulated.cache_clear()
    try:
        with pytest.warns(UserWarning, match=r"this GPU has no bfloat16 matrix instructions \(Ampere or newer\)"):
            warn_if_emulated("cuda", torch.bfloat16)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warn_if_emulated("cuda", torch.float16)  # every CUDA GPU multiplies float16
    finally:
        warn_if_emulated.cache_clear()
