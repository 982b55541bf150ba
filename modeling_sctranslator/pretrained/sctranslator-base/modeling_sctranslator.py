"""scTranslator: a Performer encoder, an MLP translator along the sequence axis, a Performer decoder.

Data flow for one pass (shapes for the released configuration)::

    input_values (B, 20000), input_ids (B, 20000)
      → Linear(1, d)(value) + Embedding(gene id)          (B, 20000, d)
      → encoder: Performer blocks (pre-norm, FAVOR+)       (B, 20000, d)   encoder_last_hidden_state
      → translator: MLP over positions 20000 → 4473 → 1000 (B, 1000, d)    translator_output
      → + Embedding(protein id)
      → decoder: Performer blocks                          (B, 1000, d)    decoder_last_hidden_state
      → Linear(d, 1)                                       (B, 1000)       predictions

Every cell is padded to exactly ``max_genes`` genes and ``max_proteins`` proteins (the translator's
widths), with the original's masking: see :mod:`.favor_attention`. Shorter inputs are padded
here with id 0 / value 0 / mask False, which is what the original tokenizer produced.

The variant (``config.translator_type="cross_attention"``) replaces the MLP by cross-attention::

    input_values (B, L), input_ids (B, L)        L = any length (e.g. the cell's expressed genes)
      → embeddings, encoder (padding masked out)                 (B, L, d)
      → translator: protein-id embeddings attend over the encoder outputs (exact softmax, masked),
        then a feed-forward                                      (B, P, d)      P = any
      → + Embedding(protein id) → decoder (padding masked out) → Linear(d, 1)   (B, P)

Nothing there depends on gene positions, so predictions do not change when a cell's genes are
permuted or padding is added; inputs are not padded to ``max_genes`` / ``max_proteins``.

The optional protein scale part (``config.predict_protein_scale``) undoes the per-cell protein scaling::

    mean of encoder outputs over genes, mean of decoder outputs over proteins  (B, d), (B, d)   detached
      + cell_covariates: log library size, log detected genes, RNA min, max    (B, 4)
      → MLP → protein_scale: the cell's min and max protein value (log1p counts)  (B, 2)
    log1p_predictions = min + (predictions − 1e-8) / (1 − 1e-8) · (max − min)     (B, 1000)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_sctranslator import SCTranslatorConfig
from .favor_attention import (
    CrossAttention,
    FavorSelfAttention,
    FeedForward,
    gaussian_orthogonal_random_matrix,
    in_float32,
)
from .gene_layout import GeneLayout


@dataclass
class SCTranslatorOutput(ModelOutput):
    """Output of :class:`SCTranslatorForProteinPrediction`.

    Args:
        loss: masked MSE over valid protein positions (only when ``labels`` are given).
        predictions: (batch, proteins) predicted scaled protein values, one per protein id given.
            Positions whose ``protein_attention_mask`` is False are predicted too (the original
            does not zero them); ignore them.
        encoder_last_hidden_state: (batch, max_genes, hidden) encoder output (no final norm).
        translator_output: (batch, max_proteins, hidden) translator output, before the protein
            id embedding is added.
        decoder_last_hidden_state: (batch, max_proteins, hidden) decoder output before the head.
        encoder_hidden_states / decoder_hidden_states: with ``output_hidden_states``, the stack's
            input (embeddings) and the output of every block.
        encoder_attentions / decoder_attentions: with ``output_attentions``, one
            (batch, heads, length, length) tensor per block: the FAVOR+ attention each block applied.
        cross_attentions: with ``output_attentions`` and the cross-attention variant, one
            (batch, heads, proteins, genes) tensor: each protein query's softmax weights over the cell's
            genes (padding 0). None for the MLP translator, which has no attention.
        protein_scale: with the protein scale part and ``cell_covariates``: (batch, 2) each cell's
            predicted minimum and maximum protein value on the log scale (log1p counts).
        log1p_predictions: with ``protein_scale``: (batch, proteins) ``predictions`` brought back to
            that scale (the inverse of the per-cell max-min scaling, with the predicted bounds).
        scale_loss: with ``protein_scale_labels``: MSE of ``protein_scale`` over the cells that have
            them (already included in ``loss``, times ``config.scale_loss_weight``).
    """

    loss: torch.Tensor | None = None
    predictions: torch.Tensor | None = None
    encoder_last_hidden_state: torch.Tensor | None = None
    translator_output: torch.Tensor | None = None
    decoder_last_hidden_state: torch.Tensor | None = None
    encoder_hidden_states: tuple[torch.Tensor, ...] | None = None
    decoder_hidden_states: tuple[torch.Tensor, ...] | None = None
    encoder_attentions: tuple[torch.Tensor, ...] | None = None
    decoder_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None
    protein_scale: torch.Tensor | None = None
    log1p_predictions: torch.Tensor | None = None
    scale_loss: torch.Tensor | None = None


@dataclass
class StackOutput:
    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    attentions: tuple[torch.Tensor, ...] | None


class PerformerBlock(nn.Module):
    """``x + Attention(LN(x))`` then ``x + FeedForward(LN(x))``."""

    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = FavorSelfAttention(
            config.hidden_size,
            config.num_attention_heads,
            config.attention_head_dim,
            config.nb_random_features,
            config.kernel_epsilon,
            config.attention_masking,
        )
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config.hidden_size, config.ff_mult)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool,
        key_counts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(self.attention_norm(hidden_states), attention_mask, output_attentions,
                                           key_counts)
        hidden_states = hidden_states + attended
        hidden_states = hidden_states + self.ffn(self.ffn_norm(hidden_states))
        return hidden_states, weights


class PerformerStack(nn.Module):
    """One side of the model (the original's ``scPerformerLM``): embeddings, blocks, a head.

    Encoder and decoder are built alike, as in the original; the encoder uses the value embedding
    and not the head, the decoder the head and not the value embedding. The unused layers are kept
    so original checkpoints convert without loss and parameter counts match the original's.
    """

    def __init__(self, config: SCTranslatorConfig, num_layers: int) -> None:
        super().__init__()
        self.config = config
        self.value_embedding = nn.Linear(1, config.hidden_size)
        self.gene_embedding = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layers = nn.ModuleList([PerformerBlock(config) for _ in range(num_layers)])
        self.output_head = nn.Linear(config.hidden_size, 1)
        # forward calls since the random features were last redrawn (the original's counter)
        self.register_buffer("calls_since_last_redraw", torch.zeros((), dtype=torch.long), persistent=True)

    @in_float32  # expression values differ between cells in digits bfloat16 does not keep
    def embed(self, input_ids: torch.Tensor, input_values: torch.Tensor) -> torch.Tensor:
        """Token embeddings of genes with their values: (B, L) ids and values → (B, L, hidden_size).

        ``value_embedding(x) + gene_embedding(id)``, as the original; the one place this is computed.
        """
        values = input_values.to(self.value_embedding.weight.dtype).unsqueeze(-1)
        return self.value_embedding(values) + self.gene_embedding(input_ids)

    def redraw_projections_if_due(self) -> None:
        """The original's schedule: in training, every ``feature_redraw_interval + 1``-th call."""
        interval = self.config.feature_redraw_interval
        if not self.training or interval is None:
            return
        if self.calls_since_last_redraw >= interval:
            for layer in self.layers:
                layer.attention.redraw_projection_matrix()
            self.calls_since_last_redraw.zero_()
        else:
            self.calls_since_last_redraw += 1

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        key_counts: torch.Tensor | None = None,
    ) -> StackOutput:
        self.redraw_projections_if_due()
        all_hidden = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, attention_mask, output_attentions, key_counts)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            if all_attentions is not None:
                all_attentions.append(weights)
        return StackOutput(
            hidden_states,
            tuple(all_hidden) if all_hidden is not None else None,
            tuple(all_attentions) if all_attentions is not None else None,
        )


class MLPTranslator(nn.Module):
    """An MLP along the *sequence* axis: (B, max_genes, d) → (B, max_proteins, d).

    Layer ``i`` mixes positions: ``out[b, j, c] = Σ_n W_i[j, n] · x[b, n, c] + bias_i[j]``, with
    dropout then ReLU between layers, as the original (which transposes, applies
    ``nn.Linear`` and transposes back; multiplying from the left is the same and skips the copies).
    """

    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__()
        widths = config.translator_widths
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:], strict=True))
        self.dropouts = nn.ModuleList(nn.Dropout(p) for p in config.translator_dropouts)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``hidden_states`` (B, max_genes, d), or with shared padding (B, n + 1, d): positions 0..n-1 as they
        are and position n standing for every padded position n..max_genes-1 (identical states), whose
        columns of the first layer then enter as one summed column."""
        shared = hidden_states.shape[1] < self.layers[0].in_features
        for i, layer in enumerate(self.layers):
            if i == 0 and shared:
                n = hidden_states.shape[1] - 1
                pad_columns = layer.weight[:, n:].sum(dim=1, keepdim=True)
                hidden_states = (torch.matmul(layer.weight[:, :n], hidden_states[:, :n])
                                 + pad_columns * hidden_states[:, n:] + layer.bias[:, None])
            else:
                hidden_states = torch.matmul(layer.weight, hidden_states) + layer.bias[:, None]
            if i < len(self.dropouts):
                hidden_states = F.relu(self.dropouts[i](hidden_states))
        return hidden_states


class CrossAttentionTranslator(nn.Module):
    """The variant's translator: (B, L, d) gene states → (B, P, d), one output per protein asked for.

    ``t = CrossAttention(LN(protein embedding), LN(encoder output))``, dropout, then
    ``t = t + FeedForward(LN(t))``. Queries are the decoder's protein-id embeddings; keys and values
    the encoder outputs, padded genes excluded. Order of genes and amount of padding do not matter.
    """

    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__()
        self.query_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.context_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = CrossAttention(config.hidden_size, config.num_attention_heads, config.attention_head_dim)
        self.dropout = nn.Dropout(config.translator_dropout)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config.hidden_size, config.ff_mult)

    def forward(
        self,
        protein_embeddings: torch.Tensor,
        encoder_states: torch.Tensor,
        gene_mask: torch.Tensor | None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        translated, weights = self.attention(
            self.query_norm(protein_embeddings), self.context_norm(encoder_states), gene_mask, output_attentions
        )
        translated = self.dropout(translated)
        translated = translated + self.ffn(self.ffn_norm(translated))
        return translated, weights


SCALE_FLOOR = 1e-8  # the bottom of the per-cell scaled range (tokenization.scale_between's formula)
CELL_COVARIATES = ("log1p library size", "log1p detected genes", "RNA minimum", "RNA maximum")
COVARIATE_SCALE = 10.0  # the covariates are log-scale numbers up to ~12: divided, they are O(1) like the normed states


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, d) states averaged over the positions where ``mask`` (B, L) is True; (B, d)."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class ProteinScaleHead(nn.Module):
    """Predicts each cell's protein bounds (min, max on the log scale) that the per-cell scaling removed.

    Inputs: the encoder's states averaged over the cell's genes (what the cell expresses), the decoder's
    averaged over the proteins asked for (which panel the bounds are taken over), both detached so this
    part cannot change the scaled predictions, and the RNA covariates the tokenizer's scaling removed
    (:data:`CELL_COVARIATES`). ``max = min + softplus(·)`` keeps the bounds ordered.
    """

    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.gene_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.protein_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.hidden = nn.Linear(2 * d + len(CELL_COVARIATES), d)
        self.output = nn.Linear(d, 2)

    @in_float32
    def forward(self, *states_masks_covariates: torch.Tensor) -> torch.Tensor:
        """(batch, 2) bounds from :meth:`pool`'s inputs."""
        return self.bounds(self.pool(*states_masks_covariates))

    def pool(
        self,
        gene_states: torch.Tensor,
        gene_mask: torch.Tensor,
        protein_states: torch.Tensor,
        protein_mask: torch.Tensor,
        cell_covariates: torch.Tensor,
    ) -> torch.Tensor:
        """The head's fixed inputs (batch, 2 * hidden + covariates): nothing here is trained, so a head can be
        fitted again on pooled inputs computed once (``training.scale_head_refit``)."""
        return torch.cat(
            [
                masked_mean(gene_states.detach(), gene_mask),
                masked_mean(protein_states.detach(), protein_mask),
                cell_covariates.to(gene_states.dtype) / COVARIATE_SCALE,
            ],
            dim=-1,
        )

    def bounds(self, pooled: torch.Tensor) -> torch.Tensor:
        """(batch, 2) min and max from :meth:`pool`'s output."""
        d = self.gene_norm.normalized_shape[0]
        features = torch.cat([self.gene_norm(pooled[:, :d]), self.protein_norm(pooled[:, d:2 * d]), pooled[:, 2 * d:]],
                             dim=-1)
        low, log_span = self.output(F.gelu(self.hidden(features))).unbind(-1)
        return torch.stack([low, low + F.softplus(log_span)], dim=-1)


# the output head's values are compared across cells: kept in float32 under autocast
_linear_in_float32 = in_float32(F.linear)


def unscale(predictions: torch.Tensor, protein_scale: torch.Tensor) -> torch.Tensor:
    """Scaled predictions (B, P) back on the scale of ``protein_scale``'s (B, 2) bounds: the inverse of
    ``1e-8 + (v - min) / (max - min) * (1 - 1e-8)``."""
    low, high = protein_scale[:, :1], protein_scale[:, 1:]
    return low + (predictions - SCALE_FLOOR) / (1 - SCALE_FLOOR) * (high - low)


class SCTranslatorPreTrainedModel(PreTrainedModel):
    config_class = SCTranslatorConfig
    base_model_prefix = "sctranslator"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    accepts_loss_kwargs = False  # the loss is a plain masked mean; Trainer must not pass num_items_in_batch
    _no_split_modules = ["PerformerBlock"]

    @classmethod
    def from_pretrained(cls, *args, allow_incomplete_weights: bool = False, **kwargs):
        """``PreTrainedModel.from_pretrained``, refusing checkpoints whose weights do not match the model.

        transformers only warns about missing, unexpected or mis-shaped weights and initialises the
        missing ones at random, which would give plausible-looking but meaningless predictions. Pass
        ``allow_incomplete_weights=True`` to accept that (e.g. to start a new head from a checkpoint).
        """
        wants_info = kwargs.pop("output_loading_info", False)
        kwargs.setdefault("ignore_mismatched_sizes", True)  # reported below, with the other problems
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        model.gene_layout = GeneLayout.find(source, **kwargs) if source is not None else None
        problems = {key: sorted(map(str, info.get(key) or [])) for key in ("missing_keys", "unexpected_keys",
                                                                           "mismatched_keys")}
        problems = {key: names for key, names in problems.items() if names}
        if problems and not allow_incomplete_weights:
            details = "; ".join(f"{key.replace('_', ' ')}: {names[:5]}{' ...' if len(names) > 5 else ''}"
                                for key, names in problems.items())
            raise ValueError(
                f"the checkpoint {args[0] if args else kwargs.get('pretrained_model_name_or_path')} does not match "
                f"the model ({details}). It was saved from another configuration or is damaged; pass "
                "allow_incomplete_weights=True to load it anyway with the missing weights initialised at random."
            )
        return (model, info) if wants_info else model

    gene_layout: GeneLayout | None = None  # the genes it reads (gene_layout.json); None: not recorded

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """``PreTrainedModel.save_pretrained`` plus the model's gene layout (``gene_layout.json``), leaving no weights
        of an earlier save beside the new ones: transformers removes old shards only, so saved sharded into a folder
        holding ``model.safetensors``, the folder kept that file, and loading it gave the old weights."""
        index = Path(save_directory) / "model.safetensors.index.json"
        before = index.stat().st_mtime_ns if index.is_file() else None
        super().save_pretrained(save_directory, *args, **kwargs)
        single = Path(save_directory) / "model.safetensors"
        if index.is_file() and index.stat().st_mtime_ns != before:  # saved in shards now
            if single.is_file() and "model.safetensors" not in json.loads(index.read_text())["weight_map"].values():
                single.unlink()
        elif index.is_file() and single.is_file():  # saved whole now: the shards' index is an earlier save's
            for shard in set(json.loads(index.read_text())["weight_map"].values()):
                (Path(save_directory) / shard).unlink(missing_ok=True)
            index.unlink()
        if self.gene_layout is not None:
            self.gene_layout.save(save_directory)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default initialisation, as the original was trained from; fresh random features.

        Uses ``transformers.initialization`` so tensors loaded from a checkpoint are left alone.
        """
        if isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(module.weight.shape[1])
            init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, FavorSelfAttention):
            matrix = module.projection_matrix
            if matrix.device.type != "meta":
                init.copy_(matrix, gaussian_orthogonal_random_matrix(*matrix.shape, device=matrix.device))
        elif isinstance(module, PerformerStack):
            init.zeros_(module.calls_since_last_redraw)


class SCTranslatorForProteinPrediction(SCTranslatorPreTrainedModel):
    """Predicts a cell's (scaled) protein abundances from its (scaled) RNA expression.

    Inputs come from :class:`tokenization.SCTranslatorTokenizer`. Cells shorter than
    ``config.max_genes`` genes or ``config.max_proteins`` proteins are padded here exactly as the
    original tokenizer pads them; longer ones are refused (truncate or split in the tokenizer).
    """

    def __init__(self, config: SCTranslatorConfig) -> None:
        super().__init__(config)
        self.encoder = PerformerStack(config, config.num_encoder_layers)
        if config.translator_type == "cross_attention":
            self.translator = CrossAttentionTranslator(config)
        else:
            self.translator = MLPTranslator(config)
        self.decoder = PerformerStack(config, config.num_decoder_layers)
        # Built without drawing from the generator the weights are drawn from (post_init replaces its
        # construction-time values, and initialises it last), so every other weight starts as without it.
        self.scale_head = None
        if config.predict_protein_scale:
            device = torch.get_default_device()  # the CPU generator, and a GPU's when models are built on one
            with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
                self.scale_head = ProteinScaleHead(config)
        self.post_init()

    # compute padded gene positions once (see shared_padding_length); False: the plain path, for reference
    use_shared_padding: bool = True

    def get_input_embeddings(self) -> nn.Embedding:
        """The encoder's gene embedding (the decoder has its own, for protein ids)."""
        return self.encoder.gene_embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.gene_embedding = value

    def resize_token_embeddings(self, *args, **kwargs):
        """Refused: the vocabulary is fixed at ``config.vocab_size`` ids, ids of released checkpoints, whose last
        10,000 are reserved for genes the tables lack (``tokenizer.add_genes``); it needs no resizing."""
        raise NotImplementedError(
            f"the gene vocabulary is fixed ({self.config.vocab_size:,} ids; the released checkpoints' ids) and "
            "reserves its last 10,000 for new genes: add one with tokenizer.add_genes([...]) and fine-tune, no "
            "resizing needed"
        )

    def fix_projection_matrices_(self) -> None:
        """Stop redrawing random features in training (kept in the saved config)."""
        self.config.feature_redraw_interval = None

    def redraw_projection_matrices_(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh random features for every attention layer now (e.g. from a seeded generator)."""
        for stack in (self.encoder, self.decoder):
            for layer in stack.layers:
                layer.attention.redraw_projection_matrix(generator)
            stack.calls_since_last_redraw.zero_()

    def forward(
        self,
        input_ids: torch.Tensor,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        protein_ids: torch.Tensor | None = None,
        protein_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cell_covariates: torch.Tensor | None = None,
        protein_scale_labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        **kwargs,
    ) -> SCTranslatorOutput | tuple:
        r"""
        Args:
            input_ids: (batch, genes) gene token ids, 0 = padding; genes ≤ ``config.max_genes``.
            input_values: (batch, genes) scaled expression (the tokenizer's max-min to [1e-8, 1]).
            attention_mask: (batch, genes) True for real genes; default all True.
            protein_ids: (batch, proteins) protein token ids; proteins ≤ ``config.max_proteins``.
            protein_attention_mask: (batch, proteins) True for real proteins; default all True.
            labels: (batch, proteins) scaled protein targets; NaN marks a missing value.
            cell_covariates: (batch, 4) what the tokenizer's RNA scaling removed (``return_cell_scale=True``);
                models with the protein scale part need them for ``protein_scale`` / ``log1p_predictions``
                (without them those are None and the scaled predictions are unchanged).
            protein_scale_labels: (batch, 2) each cell's measured protein minimum and maximum on the log
                scale (the tokenizer's, with protein values and ``return_cell_scale=True``); NaN rows
                (targets that are not counts) are left out of the scale loss.
        A single cell may be given as 1-D tensors. ``predictions`` is always (batch, proteins).
        """
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        if protein_ids is None:
            raise ValueError("protein_ids is required: the token ids of the proteins to predict")
        fixed = self.config.pads_to_fixed_length  # the MLP needs exactly max_genes / max_proteins
        input_ids, input_values, attention_mask = prepare_side(
            input_ids, input_values, attention_mask, self.config.max_genes if fixed else None,
            self.config.vocab_size, "genes",
        )
        n_proteins = protein_ids.shape[-1]
        protein_ids, _, protein_attention_mask = prepare_side(
            protein_ids, None, protein_attention_mask, self.config.max_proteins if fixed else None,
            self.config.vocab_size, "proteins",
        )
        if input_ids.shape[0] != protein_ids.shape[0]:
            raise ValueError(
                f"genes are given for {input_ids.shape[0]} cells but proteins for {protein_ids.shape[0]}"
            )
        shared = None
        if fixed and self.use_shared_padding and not (output_attentions or output_hidden_states):
            shared = shared_padding_length(input_ids, input_values, attention_mask, self.config)
        key_counts = None
        if shared is not None:  # one position stands for every padded one (identical states)
            full_length = input_ids.shape[1]
            input_ids, input_values, attention_mask = (x[:, :shared] for x in (input_ids, input_values, attention_mask))
            key_counts = torch.ones(shared, dtype=torch.float32, device=input_ids.device)
            key_counts[-1] = full_length - shared + 1
        embedded = self.encoder.embed(input_ids, input_values)
        encoded = self.encoder(embedded, attention_mask, output_attentions, output_hidden_states, key_counts)

        protein_embeddings = self.decoder.gene_embedding(protein_ids)
        cross_attentions = None
        if fixed:
            translated = self.translator(encoded.last_hidden_state)
        else:
            translated, weights = self.translator(
                protein_embeddings, encoded.last_hidden_state, attention_mask, output_attentions
            )
            cross_attentions = (weights,) if output_attentions else None
        decoded = self.decoder(
            translated + protein_embeddings,
            protein_attention_mask,
            output_attentions,
            output_hidden_states,
        )
        head = self.decoder.output_head
        predictions = _linear_in_float32(decoded.last_hidden_state, head.weight, head.bias).squeeze(-1)[:, :n_proteins]

        protein_scale = log1p_predictions = scale_loss = None
        if self.scale_head is not None and cell_covariates is not None:
            covariates = torch.as_tensor(cell_covariates, device=predictions.device).reshape(len(predictions), -1)
            if covariates.shape[1] != len(CELL_COVARIATES):
                raise ValueError(f"cell_covariates must be (batch, {len(CELL_COVARIATES)}): "
                                 f"{', '.join(CELL_COVARIATES)}; got {tuple(covariates.shape)}")
            protein_scale = self.scale_head(encoded.last_hidden_state, attention_mask, decoded.last_hidden_state,
                                            protein_attention_mask, covariates)
            log1p_predictions = unscale(predictions, protein_scale)
            if protein_scale_labels is not None:
                scale_loss = masked_mse_loss(protein_scale, protein_scale_labels, torch.ones_like(protein_scale,
                                                                                              dtype=torch.bool))
        elif protein_scale_labels is not None and self.scale_head is not None:
            raise ValueError("protein_scale_labels need cell_covariates: encode with return_cell_scale=True")

        loss = None
        if labels is not None:
            loss = masked_mse_loss(predictions, labels, protein_attention_mask[:, :n_proteins])
            if scale_loss is not None:
                loss = loss + self.config.scale_loss_weight * scale_loss

        encoder_states = encoded.last_hidden_state
        if shared is not None:  # every padded position's state, as the plain path returns them
            pad = encoder_states[:, -1:].expand(-1, full_length - shared, -1)
            encoder_states = torch.cat([encoder_states, pad], dim=1)
        output = SCTranslatorOutput(
            loss=loss,
            predictions=predictions,
            encoder_last_hidden_state=encoder_states,
            translator_output=translated,
            decoder_last_hidden_state=decoded.last_hidden_state,
            encoder_hidden_states=encoded.hidden_states,
            decoder_hidden_states=decoded.hidden_states,
            encoder_attentions=encoded.attentions,
            decoder_attentions=decoded.attentions,
            cross_attentions=cross_attentions,
            protein_scale=protein_scale,
            log1p_predictions=log1p_predictions,
            scale_loss=scale_loss,
        )
        return output if return_dict else output.to_tuple()


def shared_padding_length(
    input_ids: torch.Tensor, input_values: torch.Tensor, attention_mask: torch.Tensor, config: SCTranslatorConfig
) -> int | None:
    """Positions the compatible model needs when padding is computed once: the longest cell's genes plus one
    padded position standing for all the others; None when that saves nothing or does not hold exactly.

    It holds with the original masking when every cell is real genes then padding (id 0, value 0): padded
    positions then carry the same state through every block (no positional embedding; the mask only zeroes
    their values), so one of them, counted ``max_genes - n`` times in the FAVOR+ normaliser, and the column
    sum of the translator's padded weights give the plain path's result (the key maximum is over the same
    states). Gradients are the same computation.
    """
    if config.attention_masking != "original":
        return None
    length = int(attention_mask.sum(dim=1).max()) if attention_mask.numel() else 0
    if length + 1 >= input_ids.shape[1]:
        return None
    padded = ~attention_mask
    if bool((padded[:, :-1] & attention_mask[:, 1:]).any()):  # a real gene after padding
        return None
    if bool((input_ids[padded] != 0).any()) or bool((input_values[padded] != 0).any()):
        return None
    return length + 1


def masked_mse_loss(predictions: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over positions where ``mask`` is True and the label is not NaN.

    The original zeroed NaN positions on both sides and kept them in the mean's denominator; here
    they are left out entirely. With no valid position the loss is 0 (and still differentiable).
    """
    labels = labels.to(predictions.dtype).reshape(predictions.shape)
    valid = mask.reshape(predictions.shape) & ~torch.isnan(labels)
    if not bool(valid.any()):
        return predictions.sum() * 0.0
    return F.mse_loss(predictions[valid], labels[valid])


def prepare_side(
    ids: torch.Tensor,
    values: torch.Tensor | None,
    mask: torch.Tensor | None,
    length: int | None,
    vocab_size: int,
    what: str,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Check one side's tensors and pad them to the model's fixed length, as the original tokenizer.

    ``length=None`` (the cross-attention variant): any length, no padding added.
    """
    ids = torch.as_tensor(ids)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
        values = None if values is None else torch.as_tensor(values).unsqueeze(0)
        mask = None if mask is None else torch.as_tensor(mask).unsqueeze(0)
    if ids.dim() != 2:
        raise ValueError(f"{what} ids must be (batch, length), got shape {tuple(ids.shape)}")
    if ids.is_floating_point():
        raise TypeError(f"{what} ids must be integer token ids, got {ids.dtype}")
    batch, given = ids.shape
    if length is not None and given > length:
        raise ValueError(
            f"{given} {what} per cell exceed the model's fixed length {length}: truncate in the "
            "tokenizer (max_length / truncation) or split the proteins into several passes"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"{what} ids must lie in [0, {vocab_size}); got values from {int(ids.min())} to {int(ids.max())}. "
            "Was the tokenizer built for this model's vocabulary?"
        )
    mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=ids.device)
    if mask.shape != ids.shape:
        raise ValueError(f"{what} attention mask has shape {tuple(mask.shape)}, ids {tuple(ids.shape)}")
    mask = mask.bool()
    if values is not None:
        values = torch.as_tensor(values, device=ids.device)
        if values.shape != ids.shape:
            raise ValueError(f"{what} values have shape {tuple(values.shape)}, ids {tuple(ids.shape)}")
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"{what} values contain NaN or infinity; the tokenizer should have rejected them")
    if length is not None and given < length:
        pad = length - given
        ids = F.pad(ids, (0, pad), value=0)
        mask = F.pad(mask, (0, pad), value=False)
        values = None if values is None else F.pad(values, (0, pad), value=0.0)
    return ids, values, mask


__all__ = ["SCTranslatorForProteinPrediction", "SCTranslatorOutput", "SCTranslatorPreTrainedModel"]
