"""Training recipes for sctranslator (see the training issue; not implemented yet)."""
