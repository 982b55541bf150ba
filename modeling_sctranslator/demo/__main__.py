"""``python -m modeling_sctranslator.demo`` runs ``python -m sctranslator.demo`` (run by name: no import upwards)."""

import runpy

runpy.run_module("sctranslator.demo", run_name="__main__", alter_sys=True)
