"""Publishing model folders to the Hugging Face Hub, and checking that a folder is complete.

A publishable folder holds the model (``config.json`` with ``auto_map`` + ``model.safetensors`` +
the model code), the gene tokenizer (``preprocessor_config.json`` + ``gene_vocab.json`` + its
code) and a model card (``README.md`` with YAML metadata). Tokens are read from an environment
variable and handed to ``huggingface_hub`` only; they are never printed, logged or written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "REQUIRED_FILES",
    "FolderProblem",
    "add_push_command",
    "check_model_folder",
    "push_model_folder",
    "resolve_model_folder",
]

_MODEL_FILES = {
    "config.json": "the model configuration",
    "model.safetensors": "the weights",
    "configuration_sctranslator.py": "the model code (for trust_remote_code)",
    "modeling_sctranslator.py": "the model code (for trust_remote_code)",
    "favor_attention.py": "the model code (for trust_remote_code)",
}
# what a folder converted without the original id tables lacks (it has a model and no tokenizer)
_TOKENIZER_FILES = {
    "preprocessor_config.json": "the gene tokenizer's settings",
    "gene_vocab.json": "the gene vocabulary",
    "tokenization_sctranslator.py": "the tokenizer code (for trust_remote_code)",
}
REQUIRED_FILES = {**_MODEL_FILES, **_TOKENIZER_FILES}


class FolderProblem(ValueError):
    """A model folder or repository lacks a file, or a file is damaged or from an incompatible version."""


def _check_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FolderProblem(f"{path.name} in {path.parent} is not valid JSON ({error}); re-save the model") from None


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise FolderProblem(f"{path.name} in {path.parent} is damaged or truncated ({error})") from None
    if not keys:
        raise FolderProblem(f"{path.name} in {path.parent} holds no tensors")


def missing_code_modules(folder: Path) -> list[str]:
    """The ``.py`` files the folder's code imports relatively (``from .encoders import ...``) that it lacks: the
    fixed list of required files does not follow what the copied tokenizer and model code import."""
    from training.published import imported_code

    return sorted(name for name in imported_code(folder) if not (folder / name).is_file())


def check_model_folder(folder: str | os.PathLike[str], require_card: bool = False) -> dict[str, Any]:
    """Check that ``folder`` is a complete sctranslator model; returns its config dict.

    Raises :class:`FolderProblem` naming the first missing or damaged file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderProblem(f"{folder} is not a folder")
    required = dict(REQUIRED_FILES)
    if require_card:
        required["README.md"] = "the model card"
    absent = [name for name in required if not (folder / name).is_file()]
    if absent:
        tokenizer_only = set(absent) <= set(_TOKENIZER_FILES)
        raise FolderProblem(f"{folder} lacks {', '.join(f'{name} ({required[name]})' for name in absent)}"
                            + ("; it has a model but no tokenizer, as convert-original writes without --id-tables: "
                               "convert again with --id-tables DIR (the original id tables)" if tokenizer_only else ""))
    unresolved = missing_code_modules(folder)
    if unresolved:
        raise FolderProblem(f"{folder} lacks {', '.join(unresolved)}: its code imports them, so the folder does not "
                            "load with trust_remote_code (where this package is not installed); re-save the model")
    config = _check_json(folder / "config.json")
    if config.get("model_type") != "sctranslator":
        raise FolderProblem(f"{folder}/config.json describes a {config.get('model_type')!r} model, not sctranslator")
    from modeling_sctranslator.configuration_sctranslator import SUPPORTED_FORMAT  # here: it loads transformers

    if int(config.get("sctranslator_format", 1)) > SUPPORTED_FORMAT:
        raise FolderProblem(
            f"{folder} was written by a newer sctranslator (format {config['sctranslator_format']}, this version "
            f"reads {SUPPORTED_FORMAT}); upgrade sctranslator"
        )
    _check_json(folder / "preprocessor_config.json")
    _check_json(folder / "gene_vocab.json")
    _check_safetensors(folder / "model.safetensors")
    return config


def push_model_folder(
    folder: str | os.PathLike[str],
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api: Any = None,
) -> list[str]:
    """Upload a complete model folder to ``repo_id``; returns the uploaded file names (those a saved model is made
    of: :func:`training.published.publishable_files`; other files in the folder stay local, with a warning)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from training.published import publishable_files

    folder = Path(folder)
    check_model_folder(folder, require_card=True)
    api = api or HfApi()
    files = publishable_files(folder)  # names, in a warning, what it leaves out
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, token=token)
        with _staged_for_repo(folder, files, repo_id) as staged:
            api.upload_folder(  # one commit: all files or none
                repo_id=repo_id,
                folder_path=str(staged),
                commit_message=commit_message or "Upload sctranslator model",
                token=token,
                allow_patterns=files,
            )
    except HfHubHTTPError as error:
        raise OSError(f"the Hub refused the push to {repo_id} ({error}); check the token's write access "
                      "and the repository name; nothing was uploaded") from error
    except Exception as error:
        if not _is_network_error(error):
            raise
        raise OSError(f"cannot reach the Hugging Face Hub to push {repo_id} ({type(error).__name__}: {error}); "
                      "check the network, a proxy or HF_ENDPOINT; nothing was uploaded") from error
    return files


_LOADING_CALLS = ('pipeline("protein-prediction"', "from_pretrained(", "hf_hub_download(", "--model ")
_CARD_MODEL_RE = re.compile(r'pipeline\("protein-prediction", model="([^"]+)"\)|--model (\S+) ')
# the default model's card loads it with no model named (the package's default): on the Hub it must name the repo
_CARD_DEFAULT_PIPELINE = 'pipeline("protein-prediction")  # no model named: the package\'s default, this one'


def card_for_repo(card: str, repo_id: str) -> str:
    """The model card with its usage lines naming ``repo_id``: a card is written where the model is saved, naming
    that folder (``model="ft"``, ``--model ft``), which on the Hub loads nothing; its title and model-index entry
    take the repository's name too."""
    found = _CARD_MODEL_RE.search(card)
    if found is None:
        return card
    name = found.group(1) or found.group(2)
    title = repo_id.rsplit("/", 1)[-1]
    lines = card.splitlines(keepends=True)
    for i, line in enumerate(lines):  # only where the name loads the model: a folder named "scaled" is also a layer
        if line.rstrip("\n") in (f"# {name}", f"- name: {name}"):  # the card's title and its model-index entry
            lines[i] = line.replace(name, title)
        elif any(call in line for call in _LOADING_CALLS):
            lines[i] = (line.replace(f'"{name}"', f'"{repo_id}"').replace(f"--model {name} ", f"--model {repo_id} ")
                        .replace(_CARD_DEFAULT_PIPELINE, f'pipeline("protein-prediction", model="{repo_id}")'))
    return "".join(lines)


@contextlib.contextmanager
def _staged_for_repo(folder: Path, files: list[str], repo_id: str) -> Iterator[Path]:
    """A folder to upload from: links to ``files`` of ``folder``, its card's usage naming ``repo_id``. The user's
    folder is left as it is."""
    card = (folder / "README.md").read_text(encoding="utf-8")
    for_repo = card_for_repo(card, repo_id)
    if for_repo == card:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix=".sctranslator-push-") as staged:
        for name in files:
            target = Path(staged) / name
            if name == "README.md":
                target.write_text(for_repo, encoding="utf-8")
                continue
            try:
                os.symlink((folder / name).resolve(), target)
            except OSError:  # no symlinks here (Windows without the right): copy
                shutil.copy2(folder / name, target)
        yield Path(staged)


def _is_network_error(error: BaseException) -> bool:
    """Connection, DNS, TLS or timeout failures of the HTTP stack the Hub client uses."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")
               for cls in type(error).__mro__)


def resolve_model_folder(model_id: str | os.PathLike[str]) -> Path:
    """A local folder as it is, or a Hub repo id downloaded (or taken from the cache, offline) and checked."""
    path = Path(model_id)
    if path.is_dir():
        check_model_folder(path)
        return path
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt", ".bin", ".pkl"):
        raise ValueError(f"{model_id} is a checkpoint file, not a model folder: convert an original scTranslator "
                         f"checkpoint first (sctranslator convert-original {model_id} --out FOLDER)")
    if path.is_file():
        raise ValueError(f"{model_id} is a file; --model takes a model folder (config.json, model.safetensors, ...)")
    if path.suffix or str(model_id).count("/") > 1 or str(model_id).startswith((".", "/")):
        raise FileNotFoundError(f"model folder {model_id} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id=str(model_id)))
    except LocalEntryNotFoundError as error:
        raise OSError(
            f"{model_id} is neither a local folder nor in the Hub cache, and the Hub cannot be reached "
            f"(offline mode or no network): {error}"
        ) from None
    except (RepositoryNotFoundError, HfHubHTTPError) as error:
        raise OSError(f"cannot download {model_id} from the Hub: {error}") from None
    check_model_folder(folder)
    return folder


def add_push_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("push", help="upload a model folder (model, tokenizer, code, card) to the Hub")
    parser.add_argument("--model", type=Path, required=True, help="the model folder")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token-env", metavar="NAME", help=TOKEN_ENV_HELP)
    parser.set_defaults(func=_run_push)


TOKEN_ENV_HELP = ("the NAME of the environment variable holding the Hub token (default HF_TOKEN, and the stored "
                  "login when that is unset); the token itself is never printed")


def hub_token(token_env: str | None) -> str | None:
    """The Hub token from the environment variable named ``token_env`` (None: HF_TOKEN, or huggingface_hub's
    stored login when it is unset). A variable named on purpose must be set: pushing as whoever is logged in
    instead would be a silent surprise. A token given in the variable's place is refused without echoing it
    (``--token hf_...`` is argparse's abbreviation of ``--token-env``)."""
    if token_env is None:
        return os.environ.get("HF_TOKEN") or None
    if token_env.startswith("hf_") and token_env not in os.environ:
        raise ValueError("--token-env takes the name of an environment variable, not the token (a token on the "
                         "command line stays in the shell history): export HF_TOKEN=<your token> and leave "
                         "--token-env out, or name your variable")
    token = os.environ.get(token_env)
    if not token:
        raise ValueError(f"--token-env {token_env}: no such environment variable is set; export it, or leave "
                         "--token-env out to use HF_TOKEN or the stored login")
    return token


def _run_push(args: argparse.Namespace) -> int:
    token = hub_token(args.token_env)
    files = push_model_folder(args.model, args.repo_id, private=args.private, token=token)
    print(f"pushed {len(files)} files from {args.model} to {args.repo_id}: {', '.join(files)}")
    return 0
