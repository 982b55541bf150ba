"""Data side of sctranslator: gene vocabularies, gene/protein id resolution and the gene tokenizer.

Nothing here imports the model code (``modeling_sctranslator``).
"""
