"""Outputs never destroy what a user wrote: not the input, not another run's result, no litter after a kill."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from tokenization.atomic_io import OutputExistsError, atomic_output_dir, atomic_output_file


@pytest.fixture(scope="module")
def cells(data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "cells.h5ad"
    ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:6].copy().write_h5ad(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _predict(model: Path, rna: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", "--model", str(model), "--rna", str(rna), "--proteins", "CD4,CD19", "--out", str(out), *extra]


def test_predict_refuses_to_write_over_its_input(tiny_model_dir, cells, capsys):
    from sctranslator.cli import main

    before = _digest(cells)
    assert main(_predict(tiny_model_dir, cells, cells, "--overwrite")) == 2
    err = capsys.readouterr().err
    assert "is the input file" in err and "Traceback" not in err
    assert _digest(cells) == before
    link = cells.parent / "same_cells.h5ad"  # the same file under another name
    link.symlink_to(cells)
    assert main(_predict(tiny_model_dir, cells, link, "--overwrite")) == 2
    assert _digest(cells) == before


@pytest.fixture(scope="module")
def measured(data_dir, cells) -> Path:
    """The measured proteins of ``cells`` (the same cells, in order), a few columns."""
    path = cells.parent / "measured.h5ad"
    ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:6, ["CD4", "CD19", "CD14"]].copy().write_h5ad(path)
    return path


def _evaluate(model: Path, rna: Path, protein: Path, json_path: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model", str(model), "--rna", str(rna), "--protein", str(protein), "--json",
            str(json_path), "--device", "cpu", *extra]


def test_evaluate_json_is_guarded_like_predict_out(tiny_model_dir, cells, measured, tmp_path, capsys, monkeypatch):
    """``evaluate --json`` replaced any file (a user's protein list) and found a missing folder only after
    the whole prediction: now it is refused before any work, as ``predict --out`` is."""
    import sctranslator.cli as cli

    mine = tmp_path / "proteins.txt"
    mine.write_text("CD4\nCD19\n")
    real_load = cli.load_model_and_tokenizer

    def no_work(*args, **kwargs):
        pytest.fail("the model was loaded although --json cannot be written")

    monkeypatch.setattr(cli, "load_model_and_tokenizer", no_work)
    for target, extra, message in (
        (mine, (), "already exists; choose another output path or pass overwrite=True (--overwrite)"),
        (tmp_path / "missing" / "m.json", (), f"the folder {tmp_path / 'missing'} for the output m.json does not"),
        (measured, ("--overwrite",), "is the input file"),
        (cells, ("--overwrite",), "is the input file"),
    ):
        before = _digest(target) if target.exists() else None
        assert cli.main(_evaluate(tiny_model_dir, cells, measured, target, *extra)) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert (_digest(target) if target.exists() else None) == before
    assert mine.read_text() == "CD4\nCD19\n"

    monkeypatch.setattr(cli, "load_model_and_tokenizer", real_load)
    assert cli.main(_evaluate(tiny_model_dir, cells, measured, mine, "--overwrite")) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert mine.read_text() == printed + "\n" and json.loads(printed)["cells"] == 6
    assert not list(tmp_path.glob(".*.partial"))


def test_an_out_that_is_not_h5ad_is_refused_with_the_way_to_a_table(tiny_model_dir, cells, tmp_path, capsys):
    """``--out pred.csv`` used to get AnnData's HDF5 bytes under a .csv name: now refused before any work."""
    from sctranslator.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(_predict(tiny_model_dir, cells, tmp_path / "pred.csv"))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "must end in .h5ad (e.g. pred.h5ad)" in err and ".to_df().to_csv('pred.csv')" in err
    assert not (tmp_path / "pred.csv").exists()
    assert main(_predict(tiny_model_dir, cells, tmp_path / "pred.H5AD")) == 0  # the suffix in any case


def test_a_folder_as_out_is_refused_before_any_work(tiny_model_dir, cells, tmp_path, capsys):
    from sctranslator.cli import main

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    started = time.perf_counter()
    assert main(_predict(tiny_model_dir, cells, folder, "--overwrite")) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err
    assert (folder / "keep.txt").read_text() == "mine" and time.perf_counter() - started < 5


def test_a_folder_that_refuses_files_is_named_before_any_work(tiny_model_dir, cells, tmp_path, capsys, monkeypatch):
    """A read-only mount (or /proc, which access() calls writable for root) failed at the end of the run, naming the
    staging file '.pred.h5ad.5712.ma5132nk.partial' rather than the folder."""
    import tempfile

    from sctranslator.cli import main

    def read_only_mount(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only_mount)
    assert main(_predict(tiny_model_dir, cells, tmp_path / "pred.h5ad")) == 2
    err = capsys.readouterr().err
    assert f"cannot write into {tmp_path}: Read-only file system; give an output in a folder you can write" in err
    assert ".partial" not in err and not list(tmp_path.iterdir())


def test_a_result_written_meanwhile_by_another_run_is_kept(tmp_path):
    target = tmp_path / "pred.h5ad"
    with pytest.raises(OutputExistsError, match="written by another run") as raised:
        with atomic_output_file(target) as staging:
            staging.write_text("this run")
            target.write_text("the other run")  # appears after the existence check, before the publish
    assert target.read_text() == "the other run"
    kept = Path(str(raised.value).rsplit(" ", 1)[-1])
    assert kept.read_text() == "this run"
    assert not list(tmp_path.glob(".*.partial"))


def test_a_folder_written_meanwhile_by_another_run_is_kept(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(OutputExistsError, match="written by another run"):
        with atomic_output_dir(target) as staging:
            (staging / "config.json").write_text("this run")
            target.mkdir()
            (target / "config.json").write_text("the other run")
    assert (target / "config.json").read_text() == "the other run"


def test_two_runs_to_one_path_never_both_claim_it(tmp_path):
    target = tmp_path / "pred.h5ad"
    with atomic_output_file(target) as first:
        first.write_text("first")
    with pytest.raises(OutputExistsError, match="already exists"):
        with atomic_output_file(target) as second:
            second.write_text("second")
    assert target.read_text() == "first"


def test_sigterm_leaves_no_partial_file(tmp_path):
    script = tmp_path / "writer.py"
    target = tmp_path / "out.txt"
    script.write_text(
        "import sys, time\n"
        "from sctranslator.cli import _stop_cleanly_on_sigterm\n"
        "from tokenization.atomic_io import atomic_output_file\n"
        "_stop_cleanly_on_sigterm()\n"
        f"with atomic_output_file({str(target)!r}) as staging:\n"
        "    staging.write_text('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "writing"
    assert list(tmp_path.glob(".out.txt.*.partial"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".out.txt.*")) and not target.exists()


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, monkeypatch, capsys):
    """Ctrl-C printed a traceback of ~30 frames, where every other stop is one line."""
    import sctranslator.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_check_input_files", interrupted)
    monkeypatch.delenv("SCTRANSLATOR_DEBUG", raising=False)
    code = cli.main(["predict", "--rna", str(tmp_path / "rna.h5ad"), "--proteins", "CD4", "--out",
                     str(tmp_path / "out.h5ad")])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and err.strip().splitlines() == [
        "sctranslator predict: interrupted; an output not finished is not written (an existing one is unchanged)"]


def test_sigkill_litter_is_swept_by_the_next_write(tmp_path):
    target = tmp_path / "out.txt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.txt.{int(dead.stdout)}.abc123.partial"  # a writer killed with SIGKILL
    stale.write_text("half")
    alive = tmp_path / f".out.txt.{os.getpid()}.def456.partial"  # this process: another write in progress
    alive.write_text("in progress")
    with atomic_output_file(target) as staging:
        staging.write_text("done")
    assert target.read_text() == "done" and not stale.exists() and alive.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, tmp: a + ["--device", "tpu"], "is not a device this build of PyTorch knows"),
        (lambda a, tmp: [tmp if x == "RNA" else x for x in a],
         "is a folder; give the .h5ad, .h5mu or Cell Ranger .h5 file inside it"),
        (lambda a, tmp: a + ["--model", f"{tmp}/model.pt"], "convert-original"),
        (lambda a, tmp: [f"{tmp}/cells.zarr" if x == "RNA" else x for x in a],
         "is a zarr store, which is not read here: write it as .h5ad"),
    ],
    ids=["unknown_device", "folder_as_rna", "checkpoint_file_as_model", "zarr_store_as_rna"],
)
def test_cli_mistakes_get_one_line_with_the_fix(tiny_model_dir, cells, tmp_path, capsys, change, message):
    from sctranslator.cli import main

    (tmp_path / "model.pt").write_bytes(b"not a folder")
    (tmp_path / "cells.zarr").mkdir()
    (tmp_path / "cells.zarr" / "zarr.json").write_text("{}")  # a zarr v3 store's root
    argv = ["predict", "--rna", "RNA", "--proteins", "CD4", "--out", str(tmp_path / "o.h5ad")]
    argv = [str(cells) if x == "RNA" else x for x in change(argv, str(tmp_path))]
    if "--model" not in argv:
        argv += ["--model", str(tiny_model_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_controls_and_duplicates_are_warned_and_counted(tiny_model_dir, cells, tmp_path, capsys):
    from sctranslator.cli import main

    out = tmp_path / "o.h5ad"
    with pytest.warns(UserWarning) as caught:
        assert main(["predict", "--model", str(tiny_model_dir), "--rna", str(cells), "--proteins",
                     "CD4,CD4,IgG1,NOT_A_PROTEIN", "--out", str(out)]) == 0
    warned = " ".join(str(w.message) for w in caught)
    for what in ("not in the vocabulary", "isotype/blank controls", "same protein as another column"):
        assert what in warned
    assert "3 not predicted" in capsys.readouterr().out
    info = ad.read_h5ad(out).uns["sctranslator"]
    assert len(info["duplicate_proteins"]) == len(info["control_proteins"]) == len(info["unmapped_proteins"]) == 1
    assert "not clipped" in info["scale"]


def test_a_folder_is_built_aside_and_a_failed_build_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output_dir(target, overwrite=True) as staging:
            assert staging.parent == target.parent and staging != target
            (staging / "config.json").write_text("new")
            assert (target / "config.json").read_text() == "old"  # nothing written in place
            raise RuntimeError("the conversion failed half-way")
    assert (target / "config.json").read_text() == "old" and not list(tmp_path.glob(".model.*"))
    with atomic_output_dir(target, overwrite=True) as staging:
        (staging / "config.json").write_text("new")
    assert (target / "config.json").read_text() == "new"


def test_every_folder_writer_refuses_a_file_a_full_folder_and_deleting_an_input(tmp_path):
    """One check for every folder output (tokenizer, model, attention and knock-out tables): a file where the folder
    is to go, a non-empty folder without overwrite, and overwrite of a folder that holds an input all fail before
    anything is written; the folder is then untouched."""
    a_file = tmp_path / "results.csv"
    a_file.write_text("mine")
    with pytest.raises(NotADirectoryError, match="is an existing file"), atomic_output_dir(a_file, overwrite=True):
        pass
    full = tmp_path / "full"
    full.mkdir()
    (full / "rna.h5ad").write_text("input")
    with pytest.raises(OutputExistsError, match="already holds files .e.g. rna.h5ad.*would mix"):
        with atomic_output_dir(full):
            pass
    with pytest.raises(ValueError, match="holds the input .*rna.h5ad.*would delete it"):
        with atomic_output_dir(full, overwrite=True, inputs=[full / "rna.h5ad"]):
            pass
    assert a_file.read_text() == "mine" and (full / "rna.h5ad").read_text() == "input"
    with atomic_output_dir(full, overwrite=True, inputs=[a_file]) as staging:  # replaced as a whole
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in full.iterdir()) == ["new.txt"]


def test_a_failed_final_rename_leaves_no_partial_file(tmp_path, monkeypatch):
    import tokenization.atomic_io as atomic_io

    target = tmp_path / "pred.h5ad"
    target.write_text("old")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_io.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        with atomic_output_file(target, overwrite=True) as staging:
            staging.write_text("new")
    assert target.read_text() == "old" and not list(tmp_path.glob(".pred.h5ad.*"))


def test_outputs_follow_the_umask(tiny_model_dir, cells, tmp_path):
    """A predicted file and a converted-style folder get the permissions a plain write would give (staging
    files from mkstemp/mkdtemp alone are 0600/0700, which other users of a shared project cannot read)."""
    from sctranslator.cli import main

    old = os.umask(0o022)
    try:
        assert main(_predict(tiny_model_dir, cells, tmp_path / "pred.h5ad", "--device", "cpu")) == 0
        with atomic_output_file(tmp_path / "out.txt") as staging:
            staging.write_text("x")
        with atomic_output_dir(tmp_path / "folder") as staging:
            (staging / "a.json").write_text("{}")
    finally:
        os.umask(old)
    for path, mode in (("pred.h5ad", 0o644), ("out.txt", 0o644), ("folder", 0o755), ("folder/a.json", 0o644)):
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == mode, path


def test_the_readme_low_level_snippet_runs_and_gives_cells_by_proteins(data_dir):
    """The README's "Lower level" code, run as written: (cells, proteins), no decoder padding columns."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("Lower level:", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace = {"rna": ad.read_h5ad(data_dir / "eccite_rna.h5ad")[-4:].copy()}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    predictions, report = namespace["predictions"], namespace["report"]
    assert tuple(predictions.shape) == (4, 2) and report.protein.mapped == ["CD4", "CD19"]
    assert np.isfinite(predictions.numpy()).all()


def test_an_output_through_a_symbolic_link_is_written_where_it_points(tmp_path):
    """--out given as a link to an (empty) folder, as results on another disk often are, failed with
    '[Errno 20] Not a directory' (the link was rmdir'ed); a linked file was replaced by a file, the link lost."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "disk")
    with atomic_output_dir(tmp_path / "results") as staging:
        (staging / "table.csv").write_text("a,b\n")
    assert (tmp_path / "results").is_symlink() and (tmp_path / "disk" / "table.csv").read_text() == "a,b\n"
    (tmp_path / "old.h5ad").write_text("old")
    (tmp_path / "latest.h5ad").symlink_to(tmp_path / "old.h5ad")
    with atomic_output_file(tmp_path / "latest.h5ad", overwrite=True) as staging:
        staging.write_text("new")
    assert (tmp_path / "latest.h5ad").is_symlink() and (tmp_path / "old.h5ad").read_text() == "new"
    with pytest.raises(OutputExistsError):  # and without --overwrite the file it points to is kept
        with atomic_output_file(tmp_path / "latest.h5ad") as staging:
            staging.write_text("newer")
    assert (tmp_path / "old.h5ad").read_text() == "new"
