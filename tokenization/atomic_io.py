"""Write outputs so that a crash never leaves a half-written result or destroys an old one."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputExistsError", "atomic_output_dir", "atomic_output_file", "check_output_target", "usual_mode"]


# what file browsers and Jupyter leave in a folder someone opened: not the user's work, no reason to refuse it
_BROWSER_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints"})


class OutputExistsError(FileExistsError):
    """The output path exists and overwriting was not requested."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path: Path, is_dir: bool) -> None:
    """What a plain open()/mkdir() would have given (mkstemp/mkdtemp make 0600/0700 whatever the umask)."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output_target(
    target: Path, overwrite: bool, inputs: Sequence[str | os.PathLike[str]] = (), is_dir: bool = False,
    writes: Callable[[str], bool] | None = None,
) -> None:
    """Fail before any work when ``target`` cannot take the output: it exists (without ``overwrite``),
    it is one of the ``inputs`` (even with ``overwrite``), a file is to go where a folder is or a folder
    where a file is, ``overwrite`` would replace a folder holding one of the ``inputs`` or (given ``writes``,
    which says whether a path relative to the folder, ``/``-separated and ending in ``/`` for a folder, is one the
    writer makes) anything the writer did not write, or its folder is missing or read-only."""
    target = Path(target)
    for source in inputs:
        if source is not None and _same_path(target, Path(source)):
            raise ValueError(
                f"the output {target} is the input file {source}: writing it would destroy the input; choose "
                "another output path"
            )
    if target.is_dir() and not is_dir:
        raise IsADirectoryError(f"the output {target} is a folder; give a file path (e.g. {target / 'out.h5ad'})")
    if is_dir and target.exists() and not target.is_dir():
        raise NotADirectoryError(f"the output folder {target} is an existing file; the results are a folder of "
                                 "files: give the path of a new folder (or of a folder to replace, with --overwrite)")
    if target.exists() and not overwrite:
        if is_dir and any(target.iterdir()):
            raise OutputExistsError(
                f"the output folder {target} already holds files (e.g. {next(target.iterdir()).name}); this run's "
                "files would mix with them: give a new folder, or pass --overwrite (overwrite=True) to replace it "
                "as a whole"
            )
        if not target.is_dir():
            raise OutputExistsError(
                f"{target} already exists; choose another output path or pass overwrite=True (--overwrite)"
            )
    if is_dir and overwrite and target.is_dir():
        for source in inputs:
            if source is not None and Path(source).resolve().is_relative_to(target.resolve()):
                raise ValueError(f"the output folder {target} holds the input {source}: --overwrite replaces the "
                                 "folder as a whole and would delete it; choose another output folder")
        # --overwrite given the wrong folder (the current one, a project, the model's) would delete it all
        if writes is not None:
            _refuse_what_it_does_not_write(target, writes)
    parent = target.parent
    if not parent.exists():
        raise FileNotFoundError(f"the folder {parent} for the output {target.name} does not exist: create it "
                                "first, or give an output inside an existing folder")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write into {parent}: it is read-only for this user")
    try:  # a read-only mount, or a folder only root's access() calls writable (/proc), fails only on trying
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write into {parent}: {err.strerror or err}; give an output in a folder "
                              "you can write to") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_partials(target: Path) -> None:
    """Remove staging files/folders of ``target`` left by a process that was killed (SIGKILL, power loss):
    their names carry the writer's process id."""
    for leftover in target.parent.glob(f".{target.name}.*.partial"):
        pid = leftover.name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def _publish_new(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target`` only if nothing is there now (another run may have written it since
    the check): never replace what appeared meanwhile."""
    try:
        if staging.is_dir():
            os.rename(staging, target)  # refuses a non-empty folder
        else:
            try:
                os.link(staging, target)  # atomic, and refuses an existing file
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links: check, then move
                if target.exists():
                    raise FileExistsError(target) from None
                os.replace(staging, target)
                return
            staging.unlink()
        return
    except OSError as err:
        if not isinstance(err, FileExistsError) and err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    kept = target.with_name(f"{target.name}.{os.getpid()}")
    os.replace(staging, kept)
    raise OutputExistsError(
        f"{target} was written by another run while this one worked; it is kept, and this run's result "
        f"is at {kept}"
    )


def _refuse_what_it_does_not_write(target: Path, writes: Callable[[str], bool], after: str = "") -> None:
    foreign = _not_written_by(target, writes)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise ValueError(
            f"the output folder {target} holds {foreign[0]!r}{more}, which this command does not write: "
            f"--overwrite replaces the folder as a whole and would delete it; {after}choose another output folder "
            "(or move what you keep out of it)"
        )


def _written_in(staging: Path) -> Callable[[str], bool]:
    """The ``writes`` predicate of what a finished run put in ``staging``."""
    def writes(relative: str) -> bool:
        path = staging / relative.rstrip("/")
        return path.is_dir() if relative.endswith("/") else path.is_file()
    return writes


def _not_written_by(folder: Path, writes: Callable[[str], bool], prefix: str = "") -> list[str]:
    """The entries of ``folder`` that ``writes`` does not claim, as paths relative to it (``/``-separated; a
    folder's path ends in ``/``). Inside a folder the writer claims its files are checked in turn, so a file put
    among the writer's own is found; a link is never the writer's (it writes none)."""
    foreign = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        raise ValueError(f"--overwrite cannot look inside {folder} ({err.strerror}): it would replace it unseen; "
                         "choose another output folder") from err
    for entry in entries:
        if entry.name in _BROWSER_CLUTTER:
            continue
        is_folder = entry.is_dir() and not entry.is_symlink()
        relative = prefix + entry.name + ("/" if is_folder else "")
        if entry.is_symlink() or not writes(relative):
            foreign.append(relative)
        elif is_folder:
            foreign += _not_written_by(entry, writes, relative)
    return foreign


@contextmanager
def atomic_output_dir(
    target: str | os.PathLike[str], overwrite: bool = False, inputs: Sequence[str | os.PathLike[str]] = (),
    writes: Callable[[str], bool] | None = None, replaces_only_its_own: bool = False,
) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it replaces ``target`` only if the block succeeds (with
    ``overwrite``, and only a folder whose every entry ``writes`` accepts, when given). With
    ``replaces_only_its_own`` (writers whose file names depend on what they write: a model folder's code files),
    ``target`` is replaced only if everything in it is something this run wrote too; checked once the block is done.
    Files get the mode a plain ``open()`` gives (safetensors, mkstemp write 0600: unreadable to a shared group).
    A ``target`` that is a symbolic link is written where it points (the link was rmdir'ed: 'Not a directory')."""
    target = _followed(target)
    check_output_target(target, overwrite, inputs, is_dir=True, writes=writes)
    _sweep_stale_partials(target)
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), suffix=".partial", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        for path in staging.rglob("*"):
            if not path.is_symlink():
                usual_mode(path, is_dir=path.is_dir())
        usual_mode(staging, is_dir=True)
        if target.exists() and overwrite and replaces_only_its_own:
            _refuse_what_it_does_not_write(target, _written_in(staging), after="nothing was replaced; ")
        if target.exists() and overwrite:
            backup = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), suffix=".old", dir=target.parent))
            os.replace(target, backup / target.name)
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()  # an empty folder may be filled (check_output_target allowed it)
            _publish_new(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once published; removed if the move failed


def _followed(target: str | os.PathLike[str]) -> Path:
    """``target`` as an absolute path, through a symbolic link to where it points (``results -> /big/disk/run1``)."""
    target = Path(target).absolute()
    return target.resolve() if target.is_symlink() else target


@contextmanager
def atomic_output_file(
    target: str | os.PathLike[str], overwrite: bool = False, inputs: Sequence[str | os.PathLike[str]] = ()
) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; it replaces ``target`` only on success, and never
    replaces one of ``inputs`` or (without ``overwrite``) a file that another run wrote meanwhile. A ``target`` that
    is a symbolic link is written where it points."""
    target = _followed(target)
    check_output_target(target, overwrite, inputs)
    _sweep_stale_partials(target)
    handle, name = tempfile.mkstemp(prefix=_staging_prefix(target), suffix=".partial", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    try:
        usual_mode(staging, is_dir=False)
        if overwrite:
            os.replace(staging, target)
        else:
            _publish_new(staging, target)
    finally:
        staging.unlink(missing_ok=True)  # published, kept beside the target, or the move failed: no litter
