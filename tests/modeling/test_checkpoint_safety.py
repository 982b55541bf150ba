"""Original checkpoints are read without executing them; bad files give clear errors."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from modeling_sctranslator.convert_original_checkpoint import (
    convert_original_state_dict,
    read_original_checkpoint,
)
from sctranslator.cli import main as cli_main
from tokenization.safe_pickle import UnsafePickleError, load_restricted_pickle


class _Payload:
    """Pickles to a call of os.system: what a malicious checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "trap": _Payload(marker)}, evil)
    with zipfile.ZipFile(evil) as archive:  # the file really names os.system
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
        assert b"system" in data
    with pytest.raises(UnsafePickleError, match="system.*not on the allow-list"):
        read_original_checkpoint(evil)
    assert not marker.exists()


def test_malicious_checkpoint_through_the_cli_is_a_clear_error(tmp_path, capsys):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pt"
    torch.save(_Payload(marker), evil)
    assert cli_main(["convert-original", str(evil), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "not on the allow-list" in err and "Traceback" not in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_plain_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / "payload_ran"
    with pytest.raises(UnsafePickleError):
        load_restricted_pickle(pickle.dumps(_Payload(marker)))
    assert not marker.exists()


def test_truncated_checkpoint_gives_a_clear_error(fixtures_dir, tmp_path):
    data = (fixtures_dir / "original_small_model.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated|damaged"):
        read_original_checkpoint(truncated)


def test_a_tensor_claiming_more_than_its_storage_is_a_clear_error(tmp_path):
    """A tensor record of 10^6 elements over a storage of 4 ended in torch's RuntimeError traceback (nothing was read
    out of bounds)."""
    import collections
    import io

    class Storage:
        pass

    class Oversized:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (Storage(), 0, (1000000,), (1,), False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if isinstance(obj, Storage) else None

    payload = io.BytesIO()
    Pickler(payload, protocol=2).dump(collections.OrderedDict([("enc.token_emb.weight", Oversized())]))
    path = tmp_path / "oversized.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload.getvalue())
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", b"\0" * 16)
    with pytest.raises(ValueError, match="holds a tensor that does not fit its storage.*resize storage"):
        read_original_checkpoint(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not a checkpoint\n", "not a PyTorch checkpoint"),
        (pickle.dumps({"a": 1}), "not a PyTorch checkpoint"),
    ],
)
def test_non_checkpoint_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "file.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_original_checkpoint(path)



def test_a_folder_given_as_checkpoint_is_named_as_a_folder(tmp_path):
    """A model folder passed by mistake was reported as "checkpoint ... does not exist"."""
    with pytest.raises(IsADirectoryError, match="is a folder; give the original .pt file"):
        read_original_checkpoint(tmp_path)

def test_checkpoint_without_tensors_or_model_is_refused(tmp_path):
    path = tmp_path / "numbers.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match="without tensors"):
        read_original_checkpoint(path)
    torch.save({"enc.weird": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="unrecognised keys.*enc.weird"):
        convert_original_state_dict(read_original_checkpoint(path).state_dict)


def test_missing_checkpoint_file(tmp_path, capsys):
    assert cli_main(["convert-original", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


# Globals through which a pickle runs code or reaches anything else: none may be resolvable by either
# allow-list (plain data pickles; original checkpoints).
DANGEROUS_GLOBALS = [
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.getattr", "builtins.setattr",
    "builtins.__import__", "builtins.open", "builtins.globals", "builtins.vars", "builtins.apply",
    "os.system", "os.popen", "os.execv", "posix.system", "subprocess.Popen", "subprocess.run",
    "importlib.import_module", "pickle.loads", "torch.load", "numpy.load", "runpy.run_path",
    "functools.reduce", "operator.attrgetter", "operator.methodcaller", "types.FunctionType",
    "types.CodeType", "ctypes.CDLL", "shutil.rmtree", "webbrowser.open", "code.interact",
]


@pytest.mark.parametrize("qualified", DANGEROUS_GLOBALS)
def test_dangerous_globals_are_refused_by_every_allow_list(qualified):
    from modeling_sctranslator.convert_original_checkpoint import _checkpoint_globals

    module, name = qualified.rsplit(".", 1)
    payload = f"c{module}\n{name}\n(S'1'\ntR.".encode()  # GLOBAL + call: what a hand-made pickle carries
    with pytest.raises(UnsafePickleError, match="not on the allow-list"):
        load_restricted_pickle(payload)
    with pytest.raises(UnsafePickleError, match="not on the allow-list"):
        load_restricted_pickle(payload, allowed_globals=_checkpoint_globals())
    builtin_module = f"__builtin__\n{name}" if module == "builtins" else None  # protocol-2 spelling
    if builtin_module:
        with pytest.raises(UnsafePickleError):
            load_restricted_pickle(f"c{builtin_module}\n(S'1'\ntR.".encode())
