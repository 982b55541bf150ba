"""Training recipes for sctranslator: corpora (``corpus``), streaming + collator (``data``), Trainer pieces
(``trainer``), model cards (``model_card``), metric maths (``metrics``) and the stage runner (``run_stage``)."""
