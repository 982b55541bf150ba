"""``python -m modeling_sctranslator.cli`` runs ``python -m sctranslator.cli`` (run by name: no import upwards)."""

import runpy

runpy.run_module("sctranslator.cli", run_name="__main__", alter_sys=True)
