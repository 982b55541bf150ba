"""The command line's entry points after the move to the application package (issue #21)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["sctranslator.cli", "modeling_sctranslator.cli", "sctranslator.demo",
                                    "modeling_sctranslator.demo"])
def test_python_dash_m_entry_points_run(module):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_the_forwarders_import_nothing_above_the_model_package():
    script = ("import sys, modeling_sctranslator.cli, modeling_sctranslator.demo\n"
              "above = sorted(m for m in sys.modules if m.split('.')[0] in ('sctranslator', 'training', "
              "'interpretation'))\n"
              "assert not above, above\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
