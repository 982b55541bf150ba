"""Convert original scTranslator checkpoints into safetensors model folders, without running them.

The released checkpoints (scTranslator 10k / 160k / 2M) are whole pickled modules
(``torch.save(model)``): loading them with ``torch.load`` would import and run whatever the pickle
names. Here the zip archive is read directly and its pickle is replayed by an allow-list
unpickler: tensors and storages are rebuilt, the original classes become inert stand-ins that
only hold their attributes, and any other name (``os.system``, ...) stops the load before
anything runs. A plain ``state_dict()`` file works the same way.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tokenization.atomic_io import atomic_output_dir
from tokenization.safe_pickle import DATA_GLOBALS, InertObject, inert_class, load_restricted_pickle

from .configuration_sctranslator import SCTranslatorConfig
from .gene_layout import GeneLayout
from .modeling_sctranslator import SCTranslatorForProteinPrediction

__all__ = [
    "OriginalCheckpoint",
    "convert_original_checkpoint",
    "convert_original_state_dict",
    "read_original_checkpoint",
]

_ORIGINAL_CLASSES = {
    "performer_enc_dec": ["scPerformerEncDec", "scPerformerLM", "MLPTranslator"],
    "performer_pytorch": [
        "Performer", "SelfAttention", "FastAttention", "FeedForward", "Chunk", "PreLayerNorm",
        "ProjectionUpdater", "Always", "gaussian_orthogonal_random_matrix", "ReZero", "PreScaleNorm",
    ],
    "reversible": ["SequentialSequence", "ReversibleSequence"],
}
# the original scripts import their modules from a few places on sys.path
_MODULE_PREFIXES = ["", "model.", "code.model.", "performer_pytorch."]
_TORCH_LAYERS = [
    "torch.nn.modules.linear.Linear", "torch.nn.modules.normalization.LayerNorm",
    "torch.nn.modules.sparse.Embedding", "torch.nn.modules.dropout.Dropout",
    "torch.nn.modules.activation.GELU", "torch.nn.modules.activation.ReLU",
    "torch.nn.modules.container.ModuleList", "torch.nn.modules.container.Sequential",
    "torch.nn.modules.linear.Identity",
]
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


def _checkpoint_globals() -> dict[str, Any]:
    allowed: dict[str, Any] = dict(DATA_GLOBALS)
    allowed["torch._utils._rebuild_tensor_v2"] = torch._utils._rebuild_tensor_v2
    allowed["torch._utils._rebuild_parameter"] = torch._utils._rebuild_parameter
    allowed["functools.partial"] = inert_class("functools.partial")
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[f"torch.{name}"] = _StorageType(dtype)
    for qualified in _TORCH_LAYERS:
        allowed[qualified] = inert_class(qualified)
    for module, names in _ORIGINAL_CLASSES.items():
        for prefix in _MODULE_PREFIXES:
            for name in names:
                qualified = f"{prefix}{module}.{name}"
                allowed[qualified] = inert_class(qualified)
    return allowed


@dataclass
class OriginalCheckpoint:
    """What a checkpoint file holds: the original ``state_dict()`` and, for pickled modules,
    hyper-parameters that shapes cannot tell (dropout, redraw interval)."""

    state_dict: dict[str, torch.Tensor]
    hints: dict[str, Any] = field(default_factory=dict)
    whole_module: bool = False


def read_original_checkpoint(path: str | Path) -> OriginalCheckpoint:
    """Read an original checkpoint (whole pickled module or state dict) without executing it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder; give the original .pt file (a model folder is "
                                "already converted: load it with AutoModel.from_pretrained)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a PyTorch checkpoint archive (torch.save zip format): it is truncated, "
            "another format, or a legacy pre-1.6 file (re-save it with a recent torch in isolation)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                raise ValueError(f"{path} holds no single data.pkl; it is not a torch.save checkpoint")
            prefix = pickles[0][: -len("data.pkl")]

            def load_storage(pid: Any) -> torch.storage.TypedStorage:
                if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
                    raise ValueError(f"{path}: unexpected persistent id {pid!r}")
                storage_type, key = pid[1], pid[2]
                if not isinstance(storage_type, _StorageType):
                    raise ValueError(f"{path}: unsupported storage type {storage_type!r}")
                raw = bytearray(archive.read(f"{prefix}data/{key}"))
                flat = torch.frombuffer(raw, dtype=storage_type.dtype) if raw else torch.empty(
                    0, dtype=storage_type.dtype
                )
                return torch.storage.TypedStorage(
                    wrap_storage=flat.untyped_storage(), dtype=storage_type.dtype, _internal=True
                )

            root = load_restricted_pickle(
                archive.read(pickles[0]), _checkpoint_globals(), load_storage, description=f"checkpoint {path}"
            )
    except (zipfile.BadZipFile, KeyError, EOFError) as error:
        raise ValueError(f"{path} is damaged or truncated ({error}); download or copy it again") from error

    if isinstance(root, dict):
        tensors = {k: v for k, v in root.items() if isinstance(v, torch.Tensor)}
        if not tensors:
            raise ValueError(f"{path} holds a dictionary without tensors; it is not a model checkpoint")
        return OriginalCheckpoint(dict(tensors))
    if isinstance(root, InertObject) and root._pickled_name.endswith("scPerformerEncDec"):
        return OriginalCheckpoint(_module_state_dict(root), _module_hints(root), whole_module=True)
    raise ValueError(
        f"{path} holds {type(root).__name__ if not isinstance(root, InertObject) else root._pickled_name}, "
        "not an scTranslator model (scPerformerEncDec) or a state dict"
    )


def _module_state_dict(module: InertObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """Rebuild ``state_dict()`` from a pickled module's attributes (parameters, persistent buffers)."""
    state: dict[str, torch.Tensor] = OrderedDict()
    non_persistent = getattr(module, "_non_persistent_buffers_set", set()) or set()
    for name, tensor in (getattr(module, "_parameters", None) or {}).items():
        if tensor is not None:
            state[prefix + name] = tensor.detach()
    for name, tensor in (getattr(module, "_buffers", None) or {}).items():
        if tensor is not None and name not in non_persistent:
            state[prefix + name] = tensor
    for name, child in (getattr(module, "_modules", None) or {}).items():
        if child is not None:
            state.update(_module_state_dict(child, f"{prefix}{name}."))
    return state


def _module_hints(root: InertObject) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    translator = root._modules.get("translator")
    dropout = getattr(translator, "_modules", {}).get("dropout0") if translator is not None else None
    if dropout is not None and hasattr(dropout, "p"):
        hints["translator_dropout"] = float(dropout.p)
    updater = root._modules["enc"]._modules["performer"]._modules.get("proj_updater")
    if updater is not None and hasattr(updater, "feature_redraw_interval"):
        hints["feature_redraw_interval"] = updater.feature_redraw_interval
    return hints


_RENAMES = [
    (r"(enc|dec)\.to_vector\.", r"\1.value_embedding."),
    (r"(enc|dec)\.pos_emb\.", r"\1.gene_embedding."),
    (r"(enc|dec)\.to_out\.", r"\1.output_head."),
    (r"(enc|dec)\.performer\.proj_updater\.calls_since_last_redraw$", r"\1.calls_since_last_redraw"),
    (r"(enc|dec)\.performer\.net\.layers\.(\d+)\.0\.norm\.", r"\1.layers.\2.attention_norm."),
    (r"(enc|dec)\.performer\.net\.layers\.(\d+)\.0\.fn\.fast_attention\.", r"\1.layers.\2.attention."),
    (r"(enc|dec)\.performer\.net\.layers\.(\d+)\.0\.fn\.", r"\1.layers.\2.attention."),
    (r"(enc|dec)\.performer\.net\.layers\.(\d+)\.1\.norm\.", r"\1.layers.\2.ffn_norm."),
    (r"(enc|dec)\.performer\.net\.layers\.(\d+)\.1\.fn\.fn\.", r"\1.layers.\2.ffn."),
    (r"translator\.fc(\d+)\.", r"translator.layers.\1."),
]
_ALIAS = re.compile(r"(enc|dec)\.performer\.proj_updater\.instance\.")


def _rename(key: str) -> str | None:
    for pattern, replacement in _RENAMES:
        new, count = re.subn("^" + pattern, replacement, key)
        if count:
            return re.sub(r"^enc\.", "encoder.", re.sub(r"^dec\.", "decoder.", new))
    return None


def convert_original_state_dict(
    original: dict[str, torch.Tensor], hints: dict[str, Any] | None = None
) -> tuple[SCTranslatorConfig, dict[str, torch.Tensor]]:
    """Map an original ``state_dict`` to ours and infer the configuration from tensor shapes."""
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in original.items():
        if _ALIAS.match(key):  # performer-pytorch registers the network a second time
            continue
        new_key = _rename(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = tensor
    if unknown:
        raise ValueError(f"unrecognised keys in the original checkpoint: {unknown[:10]}")
    config = _infer_config(converted, hints or {})
    reference = {k: tuple(v.shape) for k, v in _empty_model(config).state_dict().items()}
    missing = sorted(set(reference) - set(converted))
    extra = sorted(set(converted) - set(reference))
    wrong = sorted(k for k in set(reference) & set(converted) if tuple(converted[k].shape) != reference[k])
    if missing or extra or wrong:
        raise ValueError(
            "the checkpoint does not match the inferred configuration: "
            f"missing {missing[:8]}, unexpected {extra[:8]}, wrong shape {wrong[:8]}"
        )
    return config, converted


def _layer_count(state: dict[str, torch.Tensor], side: str) -> int:
    indices = {int(m.group(1)) for k in state if (m := re.match(rf"{side}\.layers\.(\d+)\.", k))}
    return len(indices)


def _infer_config(state: dict[str, torch.Tensor], hints: dict[str, Any]) -> SCTranslatorConfig:
    try:
        embedding = state["encoder.gene_embedding.weight"]
        projection = state["encoder.layers.0.attention.projection_matrix"]
        inner = state["encoder.layers.0.attention.to_q.weight"].shape[0]
        ffn = state["encoder.layers.0.ffn.w1.weight"].shape[0]
        depth = len({k.split(".")[2] for k in state if k.startswith("translator.layers.")})
        first = state["translator.layers.0.weight"]
        last = state[f"translator.layers.{depth - 1}.weight"]
    except KeyError as error:
        raise ValueError(f"the checkpoint lacks {error.args[0]!r}; is it an scTranslator model?") from None
    vocab_size, hidden = embedding.shape
    nb_features, head_dim = projection.shape
    return SCTranslatorConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_attention_heads=inner // head_dim,
        attention_head_dim=head_dim,
        num_encoder_layers=_layer_count(state, "encoder"),
        num_decoder_layers=_layer_count(state, "decoder"),
        max_genes=first.shape[1],
        max_proteins=last.shape[0],
        translator_depth=depth,
        ff_mult=ffn // hidden,
        nb_random_features=nb_features,
        **hints,
    )


def _empty_model(config: SCTranslatorConfig) -> SCTranslatorForProteinPrediction:
    with torch.device("meta"):
        return SCTranslatorForProteinPrediction(config)


def load_original_model(path: str | Path) -> SCTranslatorForProteinPrediction:
    """An original checkpoint as our model (eval mode), read safely."""
    checkpoint = read_original_checkpoint(path)
    config, state = convert_original_state_dict(checkpoint.state_dict, checkpoint.hints)
    model = _empty_model(config)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def convert_original_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    id_tables: str | Path | None = None,
    overwrite: bool = False,
    hgnc: bool | str | Path = False,
) -> Path:
    """Write ``out_dir`` (config, safetensors weights, code; with ``id_tables`` the tokenizer too). Its names map as
    the original code maps them (``hgnc=False``): the released models learnt each name's token that way, and a
    position-reading model given more mapped genes (HGNC adds the mitochondrial ones) would read other positions;
    ``hgnc`` as in :meth:`SCTranslatorTokenizer.from_original_tables` otherwise."""
    model = load_original_model(checkpoint)
    tokenizer = None
    if id_tables is not None:
        from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

        tokenizer = SCTranslatorTokenizer.from_original_tables(
            id_tables, hgnc=hgnc, max_length=model.config.max_genes, protein_max_length=model.config.max_proteins
        )
    inputs = [Path(checkpoint)] + ([Path(id_tables)] if id_tables is not None else [])
    # --overwrite replaces an earlier conversion, never a folder holding anything else (`--out .` in a project)
    with atomic_output_dir(out_dir, overwrite=overwrite, inputs=inputs, replaces_only_its_own=True) as staging:
        model.gene_layout = GeneLayout("unknown", source="a converted original checkpoint: the released models were "
                                                          "trained on many gene layouts")
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        converted_card(model, Path(checkpoint), tokenizer, Path(out_dir).name).save(staging / "README.md")
    return Path(out_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_card(model: SCTranslatorForProteinPrediction, checkpoint: Path, tokenizer: Any, name: str):
    """The model card of a converted original checkpoint: which file, its hash, the configuration."""
    from model_cards import card_data, render_card

    vocabulary = (
        f"original scTranslator id tables ({tokenizer.vocab_size} slots)" if tokenizer is not None
        else "not included: add one with `sctranslator vocab from-original`"
    )
    return render_card(
        "converted_original.md",
        # the original release grants no licence ("The copyright holder ... is Tencent AI Lab. All rights
        # reserved."): the package's own Apache-2.0 is not the converted weights' to give
        card_data(tags=["converted-checkpoint"], model_name=name, license="other",
                  license_name="sctranslator-original-all-rights-reserved",
                  license_link="https://github.com/TencentAILabHealthcare/scTranslator"),
        model_name=name,
        checkpoint_name=checkpoint.name,
        checkpoint_sha256=_sha256(checkpoint),
        n_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        config=model.config,
        vocabulary=vocabulary,
        repo_or_path=name,
    )
