"""An allow-list unpickler for files we did not write.

``pickle.load`` runs whatever callable a file names. The original scTranslator ships its id tables
and checkpoints as pickles, so we read them with an unpickler that resolves only the globals a
caller lists and refuses everything else *before* anything is called. Classes of the original
code base are never imported: callers map their names to :class:`InertObject` stand-ins, which
only record the state the pickle hands them.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from collections.abc import Callable, Mapping
from typing import IO, Any

__all__ = [
    "DATA_GLOBALS",
    "InertObject",
    "UnsafePickleError",
    "inert_class",
    "load_restricted_pickle",
]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The pickle names a global outside the allow-list; nothing from it was executed."""


class InertObject:
    """Stand-in for a class named by a pickle: accepts construction and state, runs no code."""

    _pickled_name: str = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<inert {self._pickled_name}>"


def inert_class(qualified_name: str) -> type[InertObject]:
    """A fresh :class:`InertObject` subclass that remembers which name the pickle used."""
    return type(qualified_name.rsplit(".", 1)[-1], (InertObject,), {"_pickled_name": qualified_name})


# Plain data: containers and numpy scalars/arrays (numpy's reconstructors build arrays from
# bytes and dtypes; they call nothing user-supplied).
def _numpy_globals() -> dict[str, Any]:
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed the private module
    scalar = core.multiarray.scalar
    reconstruct = core.multiarray._reconstruct
    found: dict[str, Any] = {"numpy.dtype": np.dtype, "numpy.ndarray": np.ndarray}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[f"{module}.scalar"] = scalar
        found[f"{module}._reconstruct"] = reconstruct
    return found


DATA_GLOBALS: dict[str, Any] = {
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.dict": dict,
    "builtins.list": list,
    "builtins.tuple": tuple,
    "builtins.int": int,
    "builtins.float": float,
    "builtins.str": str,
    "builtins.bytes": bytes,
    "builtins.bytearray": bytearray,
    "collections.OrderedDict": collections.OrderedDict,
    **_numpy_globals(),
}


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self,
        file: IO[bytes],
        allowed: Mapping[str, Any],
        persistent_load: Callable[[Any], Any] | None,
        source: str,
    ) -> None:
        super().__init__(file, fix_imports=True)
        self._allowed = allowed
        self._persistent = persistent_load
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 pickles (torch.save's default) name Python 2 modules
        module = _PY2_MODULES.get(module, module)
        key = f"{module}.{name}"
        if key in self._allowed:
            return self._allowed[key]
        raise UnsafePickleError(
            f"{self._source} refers to {key!r}, which is not on the allow-list of this reader, so it "
            "was not loaded and nothing in it was executed. Only trust this file if you know where it "
            "came from; convert it to safetensors in an isolated environment if you must use it."
        )

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafePickleError(f"{self._source} uses persistent ids, which this reader does not accept")
        return self._persistent(pid)


def load_restricted_pickle(
    source: str | os.PathLike[str] | bytes | IO[bytes],
    allowed_globals: Mapping[str, Any] | None = None,
    persistent_load: Callable[[Any], Any] | None = None,
    description: str | None = None,
) -> Any:
    """Unpickle ``source`` resolving only ``allowed_globals`` (``"module.name" -> object``).

    Defaults to :data:`DATA_GLOBALS` (containers, numpy scalars and arrays). Raises
    :class:`UnsafePickleError` on any other global, and ``ValueError`` on a file that is not a
    pickle or is truncated.
    """
    allowed = DATA_GLOBALS if allowed_globals is None else allowed_globals
    if isinstance(source, (bytes, bytearray)):
        stream: IO[bytes] = io.BytesIO(source)
        label = description or "the pickle"
    elif isinstance(source, (str, os.PathLike)):
        label = description or f"pickle file {os.fspath(source)!r}"
        with open(source, "rb") as handle:
            return load_restricted_pickle(handle, allowed, persistent_load, label)
    else:
        stream = source
        label = description or "the pickle"
    try:
        return _RestrictedUnpickler(stream, allowed, persistent_load, label).load()
    except UnsafePickleError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError) as error:
        raise ValueError(
            f"{label} is not a readable pickle (truncated or another format): {error}"
        ) from error
    except RuntimeError as error:
        if type(error) is not RuntimeError:  # NotImplementedError, RecursionError: not the file's fault
            raise
        # torch's refusal of a tensor record that claims more elements than its storage holds
        raise ValueError(f"{label} holds a tensor that does not fit its storage (damaged or crafted): "
                         f"{error}") from error
