"""sctranslator's model side: configuration, model, conversion of original checkpoints, pipeline, CLI.

Importing this package registers ``SCTranslatorConfig`` / ``SCTranslatorForProteinPrediction`` with
``AutoConfig`` / ``AutoModel``, the gene tokenizer with ``AutoTokenizer`` (and ``AutoFeatureExtractor``, which reads
its vocabulary only before transformers 5.25), and the
``"protein-prediction"`` pipeline. Config, model and tokenizer are marked for ``auto_map`` so every
saved folder carries its code and loads with ``trust_remote_code=True`` where this package is not
installed.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoTokenizer
from transformers.pipelines import PIPELINE_REGISTRY

from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from .configuration_sctranslator import SCTranslatorConfig
from .default_model import DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME
from .modeling_sctranslator import (
    SCTranslatorForProteinPrediction,
    SCTranslatorOutput,
    SCTranslatorPreTrainedModel,
)
from .pipeline_sctranslator import ProteinPredictionPipeline

AutoConfig.register(SCTranslatorConfig.model_type, SCTranslatorConfig, exist_ok=True)
AutoModel.register(SCTranslatorConfig, SCTranslatorForProteinPrediction, exist_ok=True)
AutoFeatureExtractor.register(SCTranslatorConfig, SCTranslatorTokenizer, exist_ok=True)
AutoTokenizer.register(SCTranslatorConfig, tokenizer_class=SCTranslatorTokenizer, exist_ok=True)
SCTranslatorConfig.register_for_auto_class()
SCTranslatorForProteinPrediction.register_for_auto_class("AutoModel")
SCTranslatorTokenizer.register_for_auto_class("AutoFeatureExtractor")
# pipeline("protein-prediction") without a model: the pre-trained folder shipped in the package
PIPELINE_REGISTRY.register_pipeline(
    "protein-prediction", pipeline_class=ProteinPredictionPipeline, pt_model=AutoModel, type="multimodal",
    default={"model": (str(DEFAULT_MODEL_DIR), None)},
)

__all__ = [
    "DEFAULT_MODEL_DIR",
    "DEFAULT_MODEL_NAME",
    "ProteinPredictionPipeline",
    "SCTranslatorConfig",
    "SCTranslatorForProteinPrediction",
    "SCTranslatorOutput",
    "SCTranslatorPreTrainedModel",
    "SCTranslatorTokenizer",
]
