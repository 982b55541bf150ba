"""Atomic outputs get the permissions a plain write would give (mkstemp/mkdtemp alone give 0600/0700)."""

from __future__ import annotations

import os
import stat

from tokenization.atomic_io import atomic_output_dir, atomic_output_file


def test_atomic_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output_file(tmp_path / "out.h5ad") as staging:
            staging.write_text("x")
        with atomic_output_dir(tmp_path / "folder") as staging:
            (staging / "a.json").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.h5ad").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
