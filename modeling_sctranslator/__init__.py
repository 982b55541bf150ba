"""sctranslator's model side: configuration, model, conversion of original checkpoints, CLI.

Importing this package registers ``SCTranslatorConfig`` and ``SCTranslatorForProteinPrediction``
with ``AutoConfig`` / ``AutoModel``, and marks both for ``auto_map`` so that every saved folder
carries its code and loads with ``trust_remote_code=True`` where this package is not installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_sctranslator import SCTranslatorConfig
from .modeling_sctranslator import (
    SCTranslatorForProteinPrediction,
    SCTranslatorOutput,
    SCTranslatorPreTrainedModel,
)

AutoConfig.register(SCTranslatorConfig.model_type, SCTranslatorConfig, exist_ok=True)
AutoModel.register(SCTranslatorConfig, SCTranslatorForProteinPrediction, exist_ok=True)
SCTranslatorConfig.register_for_auto_class()
SCTranslatorForProteinPrediction.register_for_auto_class("AutoModel")

__all__ = [
    "SCTranslatorConfig",
    "SCTranslatorForProteinPrediction",
    "SCTranslatorOutput",
    "SCTranslatorPreTrainedModel",
]
