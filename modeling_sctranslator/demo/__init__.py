"""Moved to :mod:`sctranslator.demo` (the application layer, above this package).

Only ``python -m modeling_sctranslator.demo`` still forwards there (``__main__.py``), for command lines
written before the move; importing this package imports nothing, so the model package stays below the
application.
"""
