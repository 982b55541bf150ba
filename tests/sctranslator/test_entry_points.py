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


@pytest.mark.parametrize(("script", "argv", "message"), [
    ("tokenizer", ["--repeats", "0"], "argument --repeats: 0 must be at least 1"),
    ("tokenizer", ["--density", "2"], "argument --density: 2.0 must be above 0 and at most 1"),
    ("protein_context", ["--model", "no/such/folder"], "no/such/folder is not a folder: give a saved model folder"),
])
def test_benchmark_arguments_are_checked_before_any_work(script, argv, message):
    """--repeats 0 divided by zero after the data loaded, --density 2 drew impossible matrices, a missing model folder
    was read as a Hub repo id: each a traceback."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(root / "benchmarks" / f"{script}.py"), *argv], capture_output=True,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)},
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr


def test_version_is_the_installed_distributions(capsys):
    """Bug reports need the version; there was no --version."""
    from importlib.metadata import version

    from sctranslator.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"sctranslator {version('sctranslator')}"
