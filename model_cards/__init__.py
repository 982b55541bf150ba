"""Model card templates and their rendering (one place for every card sctranslator writes).

Templates are Jinja files in this folder, rendered with ``huggingface_hub.ModelCard``'s conventions
(``{{ card_data }}`` is the YAML metadata block); they may ``{% include %}`` each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

TEMPLATES = Path(__file__).resolve().parent
COMMON_TAGS = ["single-cell", "proteomics", "CITE-seq", "scTranslator", "performer", "sctranslator"]

__all__ = ["COMMON_TAGS", "TEMPLATES", "card_data", "render_card"]


def card_data(**fields: Any) -> ModelCardData:
    """Card metadata with the fields every sctranslator card shares (library, pipeline tag, tags)."""
    tags = [*COMMON_TAGS, *fields.pop("tags", [])]
    return ModelCardData(
        library_name="transformers",
        pipeline_tag="tabular-regression",
        license=fields.pop("license", "apache-2.0"),
        tags=list(dict.fromkeys(tags)),
        **fields,
    )


def render_card(template: str, data: ModelCardData, **fields: Any) -> ModelCard:
    """Render ``template`` (a file name in this folder) with ``data`` as its metadata block."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True)
    text = environment.get_template(template).render(card_data=data.to_yaml(), **fields)
    return ModelCard(text)  # parses the YAML block: malformed metadata fails here
