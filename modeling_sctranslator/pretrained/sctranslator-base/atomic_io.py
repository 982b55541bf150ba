"""Write outputs so that a crash never leaves a half-written result or destroys an old one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputExistsError", "atomic_output_dir", "atomic_output_file", "check_output_target", "usual_mode"]


class OutputExistsError(FileExistsError):
    """The output path exists and overwriting was not requested."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path: Path, is_dir: bool) -> None:
    """What a plain open()/mkdir() would have given (mkstemp/mkdtemp make 0600/0700 whatever the umask)."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


def check_output_target(target: Path, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        is_empty_dir = target.is_dir() and not any(target.iterdir())
        if not is_empty_dir:
            raise OutputExistsError(
                f"{target} already exists; choose another output path or pass overwrite=True (--overwrite)"
            )
    parent = target.parent
    if not parent.exists():
        raise FileNotFoundError(f"the folder {parent} for the output {target.name} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write into {parent}: it is read-only for this user")


@contextmanager
def atomic_output_dir(target: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target).absolute()
    check_output_target(target, overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    usual_mode(staging, is_dir=True)
    if target.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, backup / target.name)
        os.replace(staging, target)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, target)


@contextmanager
def atomic_output_file(target: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; it replaces ``target`` only on success."""
    target = Path(target).absolute()
    check_output_target(target, overwrite)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    usual_mode(staging, is_dir=False)
    os.replace(staging, target)
