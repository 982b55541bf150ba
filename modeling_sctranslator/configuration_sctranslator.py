"""Configuration of the scTranslator encoder–translator–decoder."""

import math

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
        sctranslator_format: version of the saved-folder format; readers refuse newer formats.
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

    def __post_init__(self, **kwargs):
        if self.nb_random_features is None:
            self.nb_random_features = int(self.attention_head_dim * math.log(self.attention_head_dim))
        self._check_sizes()
        super().__post_init__(**kwargs)

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


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


__all__ = ["SCTranslatorConfig"]
