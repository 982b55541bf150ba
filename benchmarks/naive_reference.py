"""A naive wiring of the original architecture from performer-pytorch modules, for side-by-side runs.

It mirrors how the original code base assembles scTranslator (performer-pytorch's ``Performer``
for both stacks, ``nn.Linear`` translator applied between two transposes, the original parameter
names) and is loaded with the *same* weights as our model, so outputs can be compared and timed
together. Only benchmarks use it.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.convert_original_checkpoint import _ALIAS, _rename

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from performer_pytorch import Performer


class NaiveStack(nn.Module):
    def __init__(self, config: SCTranslatorConfig, depth: int) -> None:
        super().__init__()
        self.to_vector = nn.Linear(1, config.hidden_size)
        self.pos_emb = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        self.performer = Performer(
            config.hidden_size, depth, config.num_attention_heads, config.attention_head_dim,
            nb_features=config.nb_random_features,
        )
        self.to_out = nn.Linear(config.hidden_size, 1)


class NaiveTranslator(nn.Module):
    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__()
        widths = config.translator_widths
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            setattr(self, f"fc{i}", nn.Linear(n_in, n_out))
        self.depth = len(widths) - 1
        self.dropouts = nn.ModuleList(nn.Dropout(p) for p in config.translator_dropouts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = getattr(self, f"fc{i}")(x)
            if i < self.depth - 1:
                x = torch.relu(self.dropouts[i](x))
        return x


class NaiveSCTranslator(nn.Module):
    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__()
        self.enc = NaiveStack(config, config.num_encoder_layers)
        self.translator = NaiveTranslator(config)
        self.dec = NaiveStack(config, config.num_decoder_layers)

    def forward(self, values, gene_ids, protein_ids, enc_mask, dec_mask):
        x = self.enc.to_vector(values.unsqueeze(-1)) + self.enc.pos_emb(gene_ids)
        encodings = self.enc.performer(x, mask=enc_mask)
        translated = self.translator(encodings.transpose(1, 2).contiguous()).transpose(1, 2).contiguous()
        y = translated + self.dec.pos_emb(protein_ids)
        decoded = self.dec.performer(y, mask=dec_mask)
        return encodings, self.dec.to_out(decoded).squeeze(-1)


def naive_copy_of(model: SCTranslatorForProteinPrediction) -> NaiveSCTranslator:
    """A :class:`NaiveSCTranslator` holding the same weights and random features as ``model``."""
    naive = NaiveSCTranslator(model.config).eval()
    ours = model.state_dict()
    state = {}
    for key in naive.state_dict():
        if _ALIAS.match(key):
            continue
        if "dropouts" in key:
            continue
        state[key] = ours[_rename(key)]
    naive.load_state_dict(state, strict=False)
    for stack in (naive.enc, naive.dec):
        stack.performer.fix_projection_matrices_()
    return naive
