"""Configuration of the scTranslator encoder–translator–decoder."""

import math
from collections.abc import Iterable

from transformers import PreTrainedConfig


class SCTranslatorConfig(PreTrainedConfig):
    r"""Configuration for :class:`SCTranslatorForProteinPrediction`.

    Every default is the released scTranslator configuration (117,411,371 parameters), so
    ``SCTranslatorConfig()`` describes the published checkpoints.

    Args:
        vocab_size: rows of the gene/protein id embeddings (75,500 known ids + 10,000 reserved).
        hidden_size: model width ``d``.
        num_attention_heads: heads per attention layer.
        attention_head_dim: width of one head; the inner attention width is
            ``num_attention_heads * attention_head_dim`` and does not depend on ``hidden_size``.
        num_encoder_layers / num_decoder_layers: Performer blocks in the encoder / decoder.
        max_genes: encoder length (genes per cell). The MLP translator's input width, so every
            cell is padded or truncated to exactly this length.
        max_proteins: decoder length (proteins per pass); the translator's output width.
        translator_depth: linear layers of the MLP translator; widths shrink geometrically from
            ``max_genes`` to ``max_proteins``.
        translator_dropout: dropout after the translator's first layer (deeper layers scale it
            as the original did).
        ff_mult: feed-forward expansion factor.
        nb_random_features: FAVOR+ random features per head; ``None`` means
            ``int(attention_head_dim * ln(attention_head_dim))`` (266 for 64).
        feature_redraw_interval: in training, random features are redrawn every this many forward
            calls of a stack; ``None`` fixes them.
        kernel_epsilon: the constant the FAVOR+ softmax kernel adds to every feature.
        layer_norm_eps: epsilon of the pre-norm LayerNorms.
        sctranslator_format: version of the saved-folder format; readers refuse newer formats (1: the
            compatible model; 2: folders that need the cross-attention variant; 3: the protein scale part).
        predict_protein_scale: add the per-cell protein scale part (absent in the original and in converted
            checkpoints): a small head that predicts what the per-cell max-min scaling of the proteins
            removed -- the cell's minimum and maximum protein value on the log scale (log1p counts) -- from
            what the RNA scaling removed (library size, detected genes, RNA minimum and maximum) and the
            encoder's and decoder's pooled states. The model then also returns ``log1p_predictions``. Its
            loss is added to the scaled MSE (times ``scale_loss_weight``) where the targets are counts; its
            gradients stop at the pooled states, so the scaled predictions are those the model would learn
            without it.
        scale_loss_weight: weight of the scale part's loss in the training loss.
        protein_context: token ids of the proteins the model's training panels measured (a pre-trained model: the
            union of its single-cell panels), or None. A protein's prediction depends on the proteins asked with
            it (the decoder attends across them; training scaled each cell over its panel), and a model predicts
            best inside panels like those it learnt from: ``predict_proteins`` asks small requests inside these
            (``protein_context``), and returns only the proteins asked for.
        fine_tuned_panels: the protein panels of the model's last fine-tuning (token ids, in the order they were
            asked), or None. A fine-tuned model predicts its own panel best: ``predict_proteins`` asks a request
            inside the smallest of these panels that holds all of it (before ``protein_context``).

    Variant (order-invariant, expressed genes only; the defaults above are the compatible model):

    Args:
        translator_type: ``"mlp"`` (the original MLP over gene *positions*; every cell is padded to
            exactly ``max_genes`` genes and ``max_proteins`` proteins) or ``"cross_attention"``
            (protein-id embeddings attend over the encoder outputs with exact, masked softmax
            attention; any number of genes and proteins per cell, batches padded to the longest cell;
            predictions do not depend on gene order or padding). ``max_genes`` is then only the
            tokenizer's cap on genes per cell and ``max_proteins`` the proteins per pass in
            ``predict_proteins``. Switching this one field selects the whole variant: the two fields
            below follow it unless given.
        encoder_inputs: ``"all_genes"`` (every mapped gene, zeros included, as the original) or
            ``"expressed"`` (only the cell's non-zero genes, plus ``expressed_zero_genes`` sampled
            zero genes). Default: ``"all_genes"`` for ``mlp``, ``"expressed"`` for
            ``cross_attention``. Read by ``predict_proteins`` and the training collator, which hand it
            to the tokenizer (the model config is the one place it is decided).
        expressed_zero_genes: with ``encoder_inputs="expressed"``, zero-expression genes added per
            cell (chosen by a hash of their token ids, so independent of gene order; per cell at
            random in training).
        attention_masking: ``"original"`` (FAVOR+ with the original's quirk: the mask only zeroes
            padded values), ``"masked"`` (FAVOR+ with padded keys left out of the normaliser and the
            key maximum) or ``"exact"`` (exact softmax attention with a key padding mask; quadratic
            in length; no random features). Applies to encoder and decoder. Default: ``"original"``
            for ``mlp``, ``"masked"`` for ``cross_attention`` (fewer FLOPs than exact beyond ~500
            genes per cell; measured ~1.3x faster on typical cells, see ``benchmarks/inference.py``).
    """

    model_type = "sctranslator"

    vocab_size: int = 85500
    hidden_size: int = 128
    num_attention_heads: int = 8
    attention_head_dim: int = 64
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    max_genes: int = 20000
    max_proteins: int = 1000
    translator_depth: int = 2
    translator_dropout: float | int = 0.1
    ff_mult: int = 4
    nb_random_features: int | None = None
    feature_redraw_interval: int | None = 1000
    kernel_epsilon: float = 1e-4
    layer_norm_eps: float = 1e-5
    pad_token_id: int | None = 0
    sctranslator_format: int = 1
    translator_type: str = "mlp"
    encoder_inputs: str | None = None
    expressed_zero_genes: int = 0
    attention_masking: str | None = None
    predict_protein_scale: bool = False
    scale_loss_weight: float = 1.0
    protein_context: list[int] | None = None
    fine_tuned_panels: list[list[int]] | None = None

    def __post_init__(self, **kwargs):
        _check_choice("translator_type", self.translator_type, TRANSLATOR_TYPES)
        variant = self.translator_type == "cross_attention"
        if self.encoder_inputs is None:
            self.encoder_inputs = "expressed" if variant else "all_genes"
        if self.attention_masking is None:
            self.attention_masking = "masked" if variant else "original"
        _check_choice("encoder_inputs", self.encoder_inputs, ENCODER_INPUTS)
        _check_choice("attention_masking", self.attention_masking, ATTENTION_MASKING)
        if self.encoder_inputs == "expressed" and not variant:
            raise ValueError(
                'encoder_inputs="expressed" needs translator_type="cross_attention": the MLP translator '
                "reads fixed gene positions"
            )
        if not isinstance(self.expressed_zero_genes, int) or self.expressed_zero_genes < 0:
            raise ValueError(f"expressed_zero_genes must be an integer >= 0, got {self.expressed_zero_genes!r}")
        # readers that predate a part must refuse folders that need it, not load them as something else
        if int(self.sctranslator_format) > SUPPORTED_FORMAT:
            raise ValueError(
                f"this model was saved by a newer sctranslator (folder format {self.sctranslator_format}; this "
                f"version reads formats up to {SUPPORTED_FORMAT}): upgrade sctranslator (pip install -U "
                "sctranslator); a Python process that does not import sctranslator can load the folder with the code "
                "saved in it: AutoModel.from_pretrained(folder, trust_remote_code=True)"
            )
        self.sctranslator_format = max(self.sctranslator_format, self.required_format)
        if self.protein_context is not None:
            self.protein_context = sorted(set(self._protein_ids("protein_context", self.protein_context)))
        if self.fine_tuned_panels is not None:
            if not all(isinstance(panel, (list, tuple)) for panel in self.fine_tuned_panels):
                raise ValueError("fine_tuned_panels is a list of panels, each a list of protein token ids")
            panels = [self._protein_ids("fine_tuned_panels", panel) for panel in self.fine_tuned_panels]
            if any(len(set(panel)) != len(panel) or len(panel) > self.max_proteins for panel in panels):
                raise ValueError(f"each of fine_tuned_panels must hold distinct token ids, at most max_proteins="
                                 f"{self.max_proteins} of them")
            self.fine_tuned_panels = [panel for panel in panels if panel] or None
        if not self.scale_loss_weight >= 0:
            raise ValueError(f"scale_loss_weight must be >= 0, got {self.scale_loss_weight!r}")
        if self.nb_random_features is None:
            self.nb_random_features = int(self.attention_head_dim * math.log(self.attention_head_dim))
        self._check_sizes()
        super().__post_init__(**kwargs)

    def _protein_ids(self, name: str, ids: Iterable[int]) -> list[int]:
        """``ids`` as ints, each a token id of this vocabulary (0 is padding)."""
        ids = [int(t) for t in ids]
        if any(t <= 0 or t >= self.vocab_size for t in ids):
            raise ValueError(f"{name} holds token ids outside 1..{self.vocab_size - 1}")
        return ids

    def _check_sizes(self) -> None:
        """Reject sizes the model cannot be built with, naming the field."""
        _check_positive(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            attention_head_dim=self.attention_head_dim,
            num_encoder_layers=self.num_encoder_layers,
            num_decoder_layers=self.num_decoder_layers,
            max_genes=self.max_genes,
            max_proteins=self.max_proteins,
            translator_depth=self.translator_depth,
            ff_mult=self.ff_mult,
            nb_random_features=self.nb_random_features,
        )
        if not 0.0 <= self.translator_dropout < 1.0:
            raise ValueError(f"translator_dropout must be in [0, 1), got {self.translator_dropout}")
        if self.feature_redraw_interval is not None and self.feature_redraw_interval < 0:
            raise ValueError("feature_redraw_interval must be >= 0, or None to fix the random features")

    @property
    def required_format(self) -> int:
        """The oldest saved-folder format that holds this configuration: 3 with the protein scale part, 2 for
        the cross-attention variant, else 1."""
        if self.predict_protein_scale:
            return 3
        return 2 if self.translator_type == "cross_attention" else 1

    @property
    def pads_to_fixed_length(self) -> bool:
        """True when every cell is padded to exactly ``max_genes`` / ``max_proteins`` (the MLP translator)."""
        return self.translator_type == "mlp"

    @property
    def translator_widths(self) -> list[int]:
        """Widths of the translator's layers, input first: ``[max_genes, ..., max_proteins]``.

        The original shrinks by ``(max_genes / max_proteins) ** (1 / depth)`` per layer, rounding
        up (20,000 → 4,473 → 1,000 for the released model).
        """
        factor = pow(self.max_genes / self.max_proteins, 1 / self.translator_depth)
        hidden = [math.ceil(self.max_genes / factor**i) for i in range(1, self.translator_depth)]
        return [self.max_genes, *hidden, self.max_proteins]

    @property
    def translator_dropouts(self) -> list[float]:
        """Dropout after each translator layer but the last, as the original schedules it."""
        depth, p = self.translator_depth, self.translator_dropout
        rates = [p]
        for i in range(1, depth - 1):
            if i < math.ceil(depth / 2) and 1.1 ** (i + 1) * p < 1:
                rates.append(1.1 ** (i + 1) * p)
            elif i >= math.ceil(depth / 2) and 1.1 ** (depth - 1 - i) * p < 1:
                rates.append(1.1 ** (depth - 1 - i) * p)
            else:
                rates.append(p)
        return rates[: depth - 1]


# saved-folder formats this code reads (2: the cross-attention variant, 3: the protein scale part); bump when saved
# folders change incompatibly
SUPPORTED_FORMAT = 3
TRANSLATOR_TYPES = ("mlp", "cross_attention")
ENCODER_INPUTS = ("all_genes", "expressed")
ATTENTION_MASKING = ("original", "masked", "exact")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


__all__ = ["SCTranslatorConfig"]
