"""The application: the ``sctranslator`` command line, the demo and the Hub commands.

The top layer: it uses ``interpretation``, ``training``, ``modeling_sctranslator`` and ``tokenization``;
nothing below imports it (see the import-linter contract in ``pyproject.toml``).
"""
