"""Interpretation of a trained model: attention maps (encoder, decoder, gene→protein) and in-silico knockout.

Above the model package, beside ``training``: it reads models and tokenizers, never the other way round.

* :mod:`.maps` per-layer attention rows, the map recipes, sums by gene;
* :mod:`.attention` maps aggregated over cells (:func:`attention_analysis`), the recipes explained;
* :mod:`.knockout` in-silico gene knockout (:func:`knockout_analysis`);
* :mod:`.outputs` tables, AnnData, heatmaps and ranked gene lists from their results.

The ``sctranslator attention`` / ``knockout`` commands are in :mod:`sctranslator.interpretation_commands`.
"""

from .attention import (
    MAP_NAMES,
    RECIPES,
    AttentionResult,
    attention_analysis,
    attention_maps,
    attention_received,
    minmax_normalize,
    resolve_recipe,
)
from .knockout import KnockoutResult, knockout_analysis, knockout_encoding
from .outputs import write_attention, write_knockout

__all__ = [
    "MAP_NAMES",
    "RECIPES",
    "AttentionResult",
    "KnockoutResult",
    "attention_analysis",
    "attention_maps",
    "attention_received",
    "knockout_analysis",
    "knockout_encoding",
    "minmax_normalize",
    "resolve_recipe",
    "write_attention",
    "write_knockout",
]
