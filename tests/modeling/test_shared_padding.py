"""Padded gene positions computed once give the plain path's predictions, encoder states and gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.modeling_sctranslator import shared_padding_length

CONFIG = dict(hidden_size=16, num_attention_heads=2, attention_head_dim=8, num_encoder_layers=2, num_decoder_layers=1,
              max_genes=300, max_proteins=12, nb_random_features=16, vocab_size=500)


def _inputs(lengths, generator):
    cells = len(lengths)
    ids = torch.zeros(cells, 300, dtype=torch.long)
    values = torch.zeros(cells, 300)
    mask = torch.zeros(cells, 300, dtype=torch.bool)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(1, 500, (n,), generator=generator)
        values[i, :n] = torch.rand(n, generator=generator)
        mask[i, :n] = True
    proteins = torch.randint(1, 500, (cells, 7), generator=generator)
    return {"input_ids": ids, "input_values": values, "attention_mask": mask, "protein_ids": proteins,
            "labels": torch.rand(cells, 7, generator=generator)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SCTranslatorForProteinPrediction(SCTranslatorConfig(**CONFIG, translator_depth=3))


@pytest.mark.parametrize("lengths", [[40], [40, 120, 7], [250, 10]])
def test_shared_padding_matches_the_plain_path(model, lengths):
    inputs = _inputs(lengths, torch.Generator().manual_seed(len(lengths)))
    assert shared_padding_length(inputs["input_ids"], inputs["input_values"], inputs["attention_mask"],
                                 model.config) == max(lengths) + 1
    plain = copy.deepcopy(model).train()
    plain.use_shared_padding = False
    shared = copy.deepcopy(model).train()
    for m in (plain, shared):  # dropout off, random features fixed: the two paths see the same function
        m.translator.dropouts.apply(lambda d: setattr(d, "p", 0.0))
        m.fix_projection_matrices_()
    a, b = plain(**inputs), shared(**inputs)
    torch.testing.assert_close(b.predictions, a.predictions, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.encoder_last_hidden_state, a.encoder_last_hidden_state, atol=1e-5, rtol=1e-5)
    a.loss.backward()
    b.loss.backward()
    for (name, pa), (_, pb) in zip(plain.named_parameters(), shared.named_parameters(), strict=True):
        if pa.grad is None:
            assert pb.grad is None, name
            continue
        torch.testing.assert_close(pb.grad, pa.grad, atol=1e-5, rtol=1e-4, msg=name)
    # one cell alone equals the same cell in the batch
    single = {k: v[:1] for k, v in inputs.items()}
    shared.eval()
    with torch.no_grad():
        torch.testing.assert_close(shared(**single).predictions, shared(**inputs).predictions[:1], atol=1e-5,
                                   rtol=1e-5)


def test_inputs_where_it_would_not_be_exact_take_the_plain_path(model):
    inputs = _inputs([40, 60], torch.Generator().manual_seed(0))
    ids, values, mask = inputs["input_ids"], inputs["input_values"], inputs["attention_mask"]
    holes = mask.clone()
    holes[0, 10] = False  # a padded position between real genes
    assert shared_padding_length(ids, values, holes, model.config) is None
    odd = ids.clone()
    odd[0, 100] = 5  # a padded position with a gene id
    assert shared_padding_length(odd, values, mask, model.config) is None
    full = torch.ones_like(mask)
    assert shared_padding_length(ids, values, full, model.config) is None  # nothing to share
