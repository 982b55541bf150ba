"""Train one scTranslator stage: ``bulk`` (stage 1), ``sc`` (stage 2) or ``finetune`` (stage 3).

    python training/run_stage.py training/configs/sc.yaml                      # a YAML file
    python training/run_stage.py --config training/configs/sc.yaml --max_steps 50   # YAML + overrides
    torchrun --nproc_per_node 2 training/run_stage.py training/configs/sc.yaml # 2 CPU processes (gloo)
    accelerate launch --config_file training/configs/accelerate_multi_gpu.yaml training/run_stage.py \\
        training/configs/sc.yaml                                               # GPUs

Arguments: :class:`ModelArguments`, :class:`DataArguments` and :class:`StageTrainingArguments`
(``transformers.TrainingArguments`` with the paper's defaults: lr 2e-4, batch 8, constant schedule,
Adam with amsgrad). Relaunching the same command continues from the newest complete checkpoint in
``output_dir`` (see ``training/README.md``).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import yaml
from transformers import HfArgumentParser, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import HubStrategy

import modeling_sctranslator  # noqa: F401  (registers the model with AutoModel)
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.default_model import DEFAULT_MODEL_NAME, resolve_model_name
from modeling_sctranslator.gene_layout import GeneLayout
from modeling_sctranslator.inference import check_vocab_compatible, warn_if_emulated
from tokenization.atomic_io import atomic_output_file
from tokenization.hgnc import HGNC_OPTION_HELP, hgnc_option
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from training.corpus import MANIFEST, CorpusError, find_source, load_manifest, prepare_corpus
from training.data import (
    CorpusCollator,
    EvalCells,
    LengthBucketedStream,
    bucketed_skip,
    build_train_stream,
    check_divisible,
    teaches_protein_scale,
)
from training.model_card import write_model_card
from training.published import RUN_SIGNATURE
from training.scale_head_refit import collect_head_inputs, refit_scale_head
from training.trainer import (
    CheckpointCompleteCallback,
    CorpusMeanEarlyStopping,
    CosineSimilarityStopCallback,
    LogLastStepCallback,
    RunLengthCallback,
    SCTranslatorTrainer,
    checkpoint_step,
    find_resume_checkpoint,
    loss_history,
    make_compute_metrics,
    read_global_step,
    run_mean_loss,
)

logger = logging.getLogger("training.run_stage")

STAGES = ("bulk", "sc", "finetune")
KILL_ENV = "SCTRANSLATOR_KILL_AFTER_STEP"  # tests: os._exit right after the checkpoint of this step


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "HF folder (or Hub id) to start from, or sctranslator-base (the pre-trained "
                                        "model shipped with the package); omit to start from scratch"}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "saved tokenizer folder; default: the model folder, else --vocab_dir"}
    )
    vocab_dir: str | None = field(
        default=None, metadata={"help": "folder of the original id tables (TSV) for a fresh tokenizer"}
    )
    hgnc: str = field(default="bundled", metadata={"help": "with --vocab_dir: " + HGNC_OPTION_HELP})
    hidden_size: int = field(default=128, metadata={"help": "scratch only"})
    num_attention_heads: int = field(default=8, metadata={"help": "scratch only"})
    attention_head_dim: int = field(default=64, metadata={"help": "scratch only"})
    num_encoder_layers: int = field(default=2, metadata={"help": "scratch only"})
    num_decoder_layers: int = field(default=2, metadata={"help": "scratch only"})
    max_genes: int = field(default=20000, metadata={"help": "scratch only: genes per cell"})
    max_proteins: int = field(default=1000, metadata={"help": "scratch only: proteins per pass"})
    nb_random_features: int | None = field(default=None, metadata={"help": "scratch only; default d·ln d"})
    translator_dropout: float = field(default=0.1, metadata={"help": "scratch only"})
    feature_redraw_interval: int | None = field(
        default=1000, metadata={"help": "scratch only: redraw FAVOR+ features every N training forwards"}
    )
    fix_projections: bool = field(
        default=False, metadata={"help": "never redraw the FAVOR+ random features (saved in the config)"}
    )
    translator_type: str = field(
        default="mlp", metadata={"help": "scratch only: mlp (original) | cross_attention (order-invariant variant)",
                                 "choices": ["mlp", "cross_attention"]},
    )
    encoder_inputs: str | None = field(
        default=None, metadata={"help": "scratch only: all_genes | expressed; default follows translator_type"}
    )
    expressed_zero_genes: int = field(
        default=0, metadata={"help": "scratch only: zero genes sampled per cell with encoder_inputs=expressed"}
    )
    attention_masking: str | None = field(
        default=None, metadata={"help": "scratch only: original | masked | exact; default follows translator_type"}
    )
    predict_protein_scale: bool | None = field(
        default=None,
        metadata={"help": "the per-cell protein scale part (outputs in log1p counts): true adds it (a fresh part "
                          "when the starting model lacks it), false leaves it out (the rest trains the same either "
                          "way); default: as the starting model (scratch: none)"},
    )
    rna_transform: str | None = field(
        default=None,
        metadata={"help": "RNA values before per-cell scaling, saved with the tokenizer: none (as given, the "
                          "original) | log1p_cp10k (raw counts -> log1p CP10k); default: the tokenizer's own",
                  "choices": ["none", "log1p_cp10k"]},
    )


@dataclass
class DataArguments:
    stage: str = field(default="sc", metadata={"help": "bulk (stage 1), sc (stage 2) or finetune (stage 3)",
                                                "choices": list(STAGES)})
    corpora: list[str] = field(
        default_factory=list,
        metadata={"help": "corpus folders (manifest.json) or sources: DIR/<name> for <name>_rna.h5ad + "
                          "<name>_adt|_rppa.h5ad, RNA.h5ad:PROTEIN.h5ad, a .h5mu file or a Cell Ranger .h5"},
    )
    corpus_weights: list[float] | None = field(default=None, metadata={"help": "mixing weight per corpus"})
    corpus_cache_dir: str | None = field(
        default=None, metadata={"help": "where sources are built into corpora; default OUTPUT_DIR/corpora"}
    )
    num_shards: int = field(default=4, metadata={"help": "train shards per built corpus (multiple of #processes)"})
    eval_fraction: float = field(default=0.2, metadata={"help": "held-out fraction per built corpus"})
    split_seed: int = field(default=0, metadata={"help": "seed of the hold-out split"})
    eval_fold: int = field(
        default=0,
        metadata={"help": "cross-validation: hold out the k-th block of eval_fraction of the split's permutation "
                          "(0 .. 1/eval_fraction - 1, disjoint test cells; 0 is the usual split)"},
    )
    validation_fraction: float = field(
        default=0.0,
        metadata={"help": "fraction of each built corpus kept out of training as validation cells; evaluation "
                          "during training (and --load_best_model_at_end) then uses them, never the test cells"},
    )
    max_cells_per_corpus: int | None = field(default=None, metadata={"help": "random subset when building"})
    max_eval_samples: int | None = field(default=2000, metadata={"help": "held-out cells evaluated per corpus"})
    truncation: str = field(default="random", metadata={"help": "gene subset beyond max_genes: random | first",
                                                         "choices": ["random", "first"]})
    protein_transform: str = field(default="auto", metadata={"help": "auto | log1p | none (before scaling)",
                                                              "choices": ["auto", "log1p", "none"]})
    protein_truncation: bool = field(default=False, metadata={"help": "keep the first max_proteins proteins"})
    protein_sampling: bool = field(
        default=False,
        metadata={"help": "panels larger than max_proteins (mass spec): a random max_proteins of each example's "
                          "measured proteins per example"},
    )
    gene_panel_probability: float = field(
        default=0.0,
        metadata={"help": "chance that a training batch's cells of a corpus are read through only the corpus's top "
                          "500-4,000 highly variable genes, as files subset to such genes reach the model; models "
                          "that read genes by identity only (the cross-attention variant)"},
    )
    train_background_proteins: bool = field(
        default=False,
        metadata={"help": "also train on protein columns the corpus check finds at background (counted in under a "
                          "quarter as many cells as their mRNA: a failed antibody; left out by default, as isotype "
                          "controls are)"},
    )
    length_bucket_batches: int | None = field(
        default=None,
        metadata={"help": "sort windows of N batches by cell length (0 = off); default 16 for models padded to "
                          "the longest cell (cross_attention), 0 otherwise"},
    )
    stop_on_cosine: bool | None = field(
        default=None, metadata={"help": "stop when eval cosine similarity >= threshold (default: on for sc)"}
    )
    cosine_threshold: float = field(default=0.85, metadata={"help": "threshold of --stop_on_cosine"})
    cosine_min_steps: int = field(default=0, metadata={"help": "--stop_on_cosine applies from this step on"})
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "stop after N evaluations without improvement of --metric_for_best_model (needs "
                          "--eval_strategy steps and --load_best_model_at_end; best with --validation_fraction)"},
    )
    optimizer: str = field(
        default="adam_amsgrad",
        metadata={"help": "adam_amsgrad (the paper's Adam with amsgrad) or trainer (use --optim)",
                  "choices": ["adam_amsgrad", "trainer"]},
    )
    use_evaluate: bool = field(default=True, metadata={"help": "metrics through the local evaluate module"})
    log_example_ids: bool = field(
        default=False, metadata={"help": "append 'step rank ids' per training batch to OUTPUT_DIR/example_ids.tsv"}
    )
    model_card_name: str | None = field(default=None, metadata={"help": "title of the model card"})
    refit_scale_head: bool | None = field(
        default=None,
        metadata={"help": "models with the protein scale part: fit its head again on the training cells once the "
                          "best step's weights are loaded, keeping the fit (or the loaded head) that validates best "
                          "on log1p counts; scaled predictions unchanged. Default: when --load_best_model_at_end "
                          "kept an earlier step than the last and there are validation cells"},
    )


@dataclass
class StageTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the paper's defaults (lr 2e-4, batch 8, constant lr, safetensors)."""

    output_dir: str | None = field(default=None, metadata={"help": "where checkpoints and the final model go"})
    learning_rate: float = field(default=2e-4, metadata={"help": "the paper's 2e-4"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "the paper's 8"})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "eval batch per process"})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "the paper uses a constant rate"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "must stay False (raw corpus rows)"})
    max_steps: int = field(default=1000, metadata={"help": "required with streamed data"})
    logging_steps: float = field(default=10, metadata={"help": "log every N steps"})
    save_steps: float = field(default=200, metadata={"help": "checkpoint every N steps"})
    # True here so that --do_train false is seen (and refused: this script trains; it trained anyway)
    do_train: bool = field(default=True, metadata={"help": "always true: to score a model on a paired set, use "
                                                           "`sctranslator evaluate`"})


def parse_args(argv: list[str] | None = None):
    """Dataclasses from a YAML file (first argument or ``--config``) plus command-line overrides."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config = None
    if argv and argv[0].endswith((".yaml", ".yml")):
        config = argv.pop(0)
    if "--config" in argv:
        i = argv.index("--config")
        config = argv[i + 1]
        del argv[i : i + 2]
    prefix: list[str] = []
    if config:
        with open(config) as f:
            values = yaml.safe_load(f) or {}
        if not isinstance(values, dict):
            raise SystemExit(f"{config}: expected a mapping of argument names to values")
        for key, value in values.items():
            if value is None:
                continue
            prefix.append(f"--{key}")
            if isinstance(value, list):
                prefix.extend(str(v) for v in value)
            elif isinstance(value, dict):
                prefix.append(json.dumps(value))
            else:
                prefix.append(str(value))
    parser = HfArgumentParser((ModelArguments, DataArguments, StageTrainingArguments))
    try:  # a typo or an inconsistent setting ends in one line, not a traceback from the argument dataclasses
        *parsed, unknown = parser.parse_args_into_dataclasses(args=prefix + argv, return_remaining_strings=True)
    except ValueError as error:
        raise SystemExit(f"run_stage: error: {error}") from None
    options = [o for o in unknown if o.startswith("--")]
    if unknown:
        known = [o for action in parser._actions for o in action.option_strings]
        hints = []
        for option in options:
            close = difflib.get_close_matches(option, known, n=1)
            where = f" (from {config})" if option in prefix else ""
            hints.append(f"{option}{where}" + (f": did you mean {close[0]}?" if close else ""))
        raise SystemExit(f"run_stage: error: unknown option{'s' if len(options) > 1 else ''} "
                         f"{'; '.join(hints) or ' '.join(unknown)}")
    model_args, data_args, training_args = parsed
    # the options named on the command line or in the config (a built corpus checks its split against them)
    data_args.given_options = {o[2:].split("=", 1)[0] for o in prefix + argv if o.startswith("--")}
    return model_args, data_args, training_args


class _KillAfterStep(TrainerCallback):
    """Test hook: ends the process abruptly (no cleanup) right after the checkpoint of step ``k``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            logger.warning("%s=%d: killing the process after step %d", KILL_ENV, self.step, state.global_step)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(17)


def build_model(model_args: ModelArguments, count_corpora: list[str]) -> SCTranslatorForProteinPrediction:
    """The model to train: loaded (with its protein scale part added or left out as ``--predict_protein_scale``
    says) or new. ``count_corpora``: the corpora whose protein counts teach that part (log1p counts); with none, a
    loaded part is left out (else the fine-tuned model would give its new panels in the count units of the panels
    it learnt before, from a part that learnt nothing here), and asking for one is refused."""
    want_scale = model_args.predict_protein_scale
    if want_scale and not count_corpora:
        raise SystemExit("--predict_protein_scale true: the protein scale part predicts log1p protein counts and "
                         "none of these corpora holds protein counts (RPPA, mass-spec or normalised values teach it "
                         "nothing); leave the option out: the model then gives per-cell scaled predictions")
    if model_args.model_name_or_path:
        path = model_args.model_name_or_path
        config = SCTranslatorConfig.from_pretrained(path)
        if want_scale is None and config.predict_protein_scale and not count_corpora:
            logger.warning("none of these corpora holds protein counts, so the protein scale part of %s (outputs in "
                           "log1p counts) would learn nothing and give the new panels the units of the count panels "
                           "it learnt before: it is left out; the trained model gives per-cell scaled predictions",
                           path)
            want_scale = False
        adding = bool(want_scale) and not config.predict_protein_scale
        dropping = want_scale is False and config.predict_protein_scale
        if adding or dropping:
            config.predict_protein_scale = bool(adding)
            config.sctranslator_format = config.required_format
        model, info = SCTranslatorForProteinPrediction.from_pretrained(
            path, config=config, allow_incomplete_weights=adding or dropping, output_loading_info=True)
        if adding or dropping:  # only the part's weights may differ: anything else means the checkpoint is damaged
            expected = "missing_keys" if adding else "unexpected_keys"
            others = [str(k) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")
                      for k in info.get(key) or [] if not (key == expected and str(k).startswith("scale_head."))]
            if others:
                raise SystemExit(f"{path} does not match its own configuration ({others[:5]}); it is damaged")
            logger.info("%s the protein scale part of %s", "added a freshly initialised" if adding else "left out",
                        path)
    else:
        config = SCTranslatorConfig(
            hidden_size=model_args.hidden_size,
            num_attention_heads=model_args.num_attention_heads,
            attention_head_dim=model_args.attention_head_dim,
            num_encoder_layers=model_args.num_encoder_layers,
            num_decoder_layers=model_args.num_decoder_layers,
            max_genes=model_args.max_genes,
            max_proteins=model_args.max_proteins,
            nb_random_features=model_args.nb_random_features,
            translator_dropout=model_args.translator_dropout,
            feature_redraw_interval=model_args.feature_redraw_interval,
            translator_type=model_args.translator_type,
            encoder_inputs=model_args.encoder_inputs,
            expressed_zero_genes=model_args.expressed_zero_genes,
            attention_masking=model_args.attention_masking,
            predict_protein_scale=bool(want_scale),
        )
        model = SCTranslatorForProteinPrediction(config)
    if model_args.fix_projections:
        model.fix_projection_matrices_()
    return model


def gene_layout_for(model, tokenizer, manifests: list[dict[str, Any]], truncation: str) -> GeneLayout:
    """The genes the trained model will read (saved with it as ``gene_layout.json``).

    Position-reading (MLP) models keep an ordered layout they start with (the corpora are aligned to it);
    otherwise they get the corpora's gene order when every corpus gives the same one (the first ``max_genes``
    mapped genes; random subsets of longer lists have none). The variant gets the set of mapped genes of its
    corpora, with those of the model it starts from.
    """
    start = getattr(model, "gene_layout", None)
    names = ", ".join(m["name"] for m in manifests)
    mapped = [tokenizer.resolve(list(m["genes"]), kind="gene").kept_token_ids for m in manifests]
    if not model.config.pads_to_fixed_length:
        genes = set().union(*(map(int, ids) for ids in mapped))
        if start is not None and start.kind == "set":
            genes |= set(start.token_ids)
        return GeneLayout("set", sorted(genes), f"the genes of {names}" + (" and of the model it started from"
                                                                          if start is not None else ""))
    if start is not None and start.ordered:
        return start
    max_genes = model.config.max_genes
    if truncation == "random" and any(len(ids) > max_genes for ids in mapped):
        return GeneLayout("unknown", source=f"random subsets of more than {max_genes} genes per cell ({names})")
    orders = {tuple(int(t) for t in ids[:max_genes]) for ids in mapped}
    if len(orders) > 1:
        return GeneLayout("unknown", source=f"corpora with different gene lists ({names})")
    order = next(iter(orders))
    return GeneLayout("ordered", list(order), f"the {len(order)} genes of {names}, in that order")


def build_tokenizer(model_args: ModelArguments) -> SCTranslatorTokenizer:
    source = model_args.tokenizer_name_or_path
    if source is None and model_args.model_name_or_path:
        folder = Path(model_args.model_name_or_path)
        if (folder / "preprocessor_config.json").is_file() or not folder.exists():
            source = model_args.model_name_or_path
    if source is not None:
        return SCTranslatorTokenizer.from_pretrained(source)
    if model_args.vocab_dir is None:
        raise SystemExit("no tokenizer: give --model_name_or_path with a tokenizer, --tokenizer_name_or_path "
                         "or --vocab_dir (the original id tables)")
    try:
        hgnc = hgnc_option(model_args.hgnc)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    return SCTranslatorTokenizer.from_original_tables(model_args.vocab_dir, hgnc=hgnc)


def held_out_sets(manifests: list[dict[str, Any]], split: str, max_cells: int | None) -> dict[str, EvalCells]:
    """The non-empty ``split`` cells ("eval" = test, "validation") of each corpus, by corpus name."""
    sets = {m["name"]: EvalCells(m, i, max_cells, split=split) for i, m in enumerate(manifests)}
    return {name: cells for name, cells in sets.items() if len(cells)}


def best_checkpoint_summary(state, args) -> dict[str, Any]:
    """Which step's weights were kept by ``--load_best_model_at_end`` (empty when not used)."""
    if not (args.load_best_model_at_end and state.best_global_step):
        return {}
    name = args.metric_for_best_model or "loss"
    return {"best_step": state.best_global_step, "best_metric": state.best_metric,
            "best_metric_name": name if name.startswith("eval_") else f"eval_{name}"}


def maybe_refit_scale_head(model, manifests: list[dict[str, Any]], collator, data_args, args, state,
                           validation_sets: dict[str, EvalCells]) -> dict[str, Any] | None:
    """``--refit_scale_head`` (see there): the head fitted again on the training cells (at most
    ``--max_eval_samples`` per corpus), selected on the validation cells; None when not done."""
    if getattr(model, "scale_head", None) is None:
        return None
    wanted = data_args.refit_scale_head
    if wanted is None:
        best = state.best_global_step if args.load_best_model_at_end else None
        wanted = bool(best) and best < state.global_step and bool(validation_sets)
    if not wanted:
        return None
    if not validation_sets:
        raise SystemExit("--refit_scale_head needs validation cells to choose the fit: add --validation_fraction")
    train = [collect_head_inputs(model, EvalCells(m, i, data_args.max_eval_samples, split="train"), collator,
                                 args.per_device_eval_batch_size) for i, m in enumerate(manifests)]
    validation = [collect_head_inputs(model, cells, collator, args.per_device_eval_batch_size)
                  for cells in validation_sets.values()]
    train, validation = [t for t in train if t is not None], [v for v in validation if v is not None]
    if not train or not validation:
        logger.info("protein scale head not refitted: no count-valued protein labels in the training or "
                    "validation cells")
        return None
    return refit_scale_head(model, train, validation)


def log1p_metrics(model, cells, collator, batch_size: int, prefix: str) -> dict[str, float]:
    """``<prefix>_log1p_pearson_per_protein_mean``: the held-out cells' mean per-protein Pearson r on log1p protein
    counts, the output of a model with the protein scale part (the Trainer's metrics are on the per-cell scaled
    values it trains on); nothing for other models or cells without counts."""
    if getattr(model, "scale_head", None) is None:
        return {}
    inputs = collect_head_inputs(model, cells, collator, batch_size)
    if inputs is None:
        return {}
    return {f"{prefix}_log1p_pearson_per_protein_mean": inputs.head_log1p_pearson(model.scale_head)}


def check_start_model(name: str | None) -> None:
    """A stage that starts from a folder that is not there (e.g. stage sc before stage bulk has written
    its output) says so, instead of a Hub lookup error about an invalid repository id."""
    if not name:
        return
    path = Path(name)
    looks_local = path.is_absolute() or name.startswith(".") or name.count("/") != 1 or path.parent.exists()
    if looks_local and not path.exists():
        raise SystemExit(f"--model_name_or_path {name} does not exist: run the stage that writes it first (stage "
                         "bulk -> sc -> finetune), or give a model folder or Hub id")
    if path.is_dir() and not (path / "config.json").exists():
        raise SystemExit(f"--model_name_or_path {name} has no config.json: is the stage that writes it still "
                         "running, or did it fail? Point to a finished model folder")


# what a run writes into its output folder before anything else (the corpus cache, then the run's signature) ...
RUN_MARKERS = (RUN_SIGNATURE,)
# ... and the files of the model it saves there, which would replace a folder's own
MODEL_FOLDER_FILES = ("model.safetensors", "config.json", "README.md", "preprocessor_config.json",
                      "tokenizer_config.json", "gene_vocab.json", "pytorch_model.bin")


def check_distinct_corpus_names(specs: list[str]) -> None:
    """Refuse two corpora of one name (a corpus is named by its files, ``s1/pbmc`` and ``s2/pbmc`` both ``pbmc``):
    built into one cache folder, the second replaced the first, and metrics per corpus are keyed by name."""
    names: dict[str, str] = {}
    for spec in specs:
        path = Path(spec)
        name = load_manifest(path)["name"] if (path / MANIFEST).is_file() else find_source(spec).name
        if name in names:
            raise CorpusError(
                f"--corpora {names[name]} and {spec} are both named {name!r} (a corpus is named by its files): their "
                f"corpora would share one cache folder and one set of metrics. Rename one pair of files (e.g. "
                f"{name}_b_rna.h5ad + {name}_b_adt.h5ad)")
        names[name] = spec


def check_output_dir(output_dir: Path, start_model: str | None) -> None:
    """Refuse an ``--output_dir`` whose files a run would replace: the start model's own folder (its weights and
    card would be overwritten by the fine-tuned ones), or a folder no run wrote that holds a model's files (a
    model, a card; a model folder downloaded from the Hub has its training summary but no signature). A run's folder
    (its signature or checkpoints) is resumed or refused by :func:`check_same_run`; other files (a log redirected
    there) are left alone."""
    if start_model and Path(start_model).is_dir() and output_dir.exists() \
            and output_dir.resolve() == Path(start_model).resolve():
        raise SystemExit(f"--output_dir {output_dir} is the folder of --model_name_or_path: the run would overwrite "
                         "the model it starts from (weights, model card). Give a new --output_dir")
    if not output_dir.is_dir():
        return
    entries = sorted(p.name for p in output_dir.iterdir())
    if any(name in RUN_MARKERS or checkpoint_step(output_dir / name) is not None for name in entries):
        return
    replaced = [name for name in entries if name in MODEL_FOLDER_FILES]
    if replaced:
        raise SystemExit(f"--output_dir {output_dir} holds files that no training run wrote and this one would "
                         f"replace ({', '.join(replaced)}). Give a new or empty --output_dir")


FEW_HELD_OUT = 10  # validation or held-out cells below which their metrics say little


def run_signature(manifests: list[dict[str, Any]], model_args: Any, data_args: Any, args: Any) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoints: the data (corpus fingerprints: cells,
    files, split), the model it started from, the stage, what orders the stream (seed, batch, processes), the
    optimiser and its schedule, and the protein transform and truncation. ``--max_steps`` may change: raising it
    trains on."""
    return {
        "stage": data_args.stage,
        "model_name_or_path": str(model_args.model_name_or_path or ""),
        "corpora": [[m["name"], m.get("fingerprint")] for m in manifests],
        "corpus_weights": list(data_args.corpus_weights or []),
        "seed": int(args.seed),
        "per_device_train_batch_size": int(args.per_device_train_batch_size),
        "gradient_accumulation_steps": int(args.gradient_accumulation_steps),
        "world_size": int(args.world_size),
        "gene_panel_probability": float(data_args.gene_panel_probability),
        # what the optimiser and the targets are: a resumed run restores the optimiser and schedule from the
        # checkpoint (a new learning rate was ignored while the card reported it), and a new protein transform
        # or truncation would change the target or the input mid-run
        "optimizer": str(data_args.optimizer),
        "learning_rate": float(args.learning_rate),
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup_steps": float(args.warmup_steps),
        "weight_decay": float(args.weight_decay),
        "protein_transform": str(data_args.protein_transform),
        "truncation": str(data_args.truncation),
        # which protein columns are trained on: the corpus check's background columns, unless kept
        "proteins_left_at_background": {} if data_args.train_background_proteins else {
            m["name"]: [e["protein"] for e in m["protein_background_evidence"]]
            for m in manifests if m.get("protein_background_evidence")},
    }


# what a run recorded before a signature key existed did: resuming such a run with another value refuses
SIGNATURE_DEFAULTS = {"gene_panel_probability": 0.0, "proteins_left_at_background": {}}


def check_same_run(output_dir: Path, resume: str | None, signature: dict[str, Any], args: Any) -> None:
    """Refuse to resume checkpoints of another run: relaunched on other data into the same folder, the Trainer took
    the old run's weights, selected the best step across both runs' validation cells and shipped it under the new
    run's card. A fresh run records its signature (:data:`RUN_SIGNATURE`) for later relaunches; folders written
    before it resume as before."""
    if resume is None:
        finished = output_dir / RUN_SIGNATURE
        if finished.is_file() and (output_dir / "model.safetensors").is_file():  # a finished run, checkpoints gone
            differs = _signature_differences(json.loads(finished.read_text()), signature)
            if differs:
                raise SystemExit(
                    f"{output_dir} holds the model of another finished run ({differs}): training here would replace "
                    "its weights and card. Give a new --output_dir, or delete that folder to train there again")
        if args.process_index == 0:
            output_dir.mkdir(parents=True, exist_ok=True)
            with atomic_output_file(output_dir / RUN_SIGNATURE, overwrite=True) as staging:
                staging.write_text(json.dumps(signature, indent=1))
        return
    recorded_path = Path(resume).parent / RUN_SIGNATURE
    if not recorded_path.is_file():
        return
    details = _signature_differences(json.loads(recorded_path.read_text()), signature)
    if details:
        raise SystemExit(
            f"{Path(resume).parent} holds checkpoints of another run ({details}): resuming would continue that run's "
            "weights and optimiser as if they were this one's. Give a new --output_dir, or delete its "
            f"checkpoint-* folders (and {RUN_SIGNATURE}) to start over there"
            + ("; a run started before antibodies at background were left out resumes with "
               "--train_background_proteins" if "proteins_left_at_background:" in details else "")
        )


def _signature_differences(recorded: dict[str, Any], signature: dict[str, Any]) -> str:
    """What differs between a recorded run signature and this run's, in words ("" when nothing does); keys added
    later compare with what runs recorded before them did: their default."""
    recorded = {**SIGNATURE_DEFAULTS, **recorded}
    differs = [key for key in signature if key in recorded and recorded[key] != signature[key]]
    return "; ".join(f"{key}: {recorded[key]} there, {signature[key]} now" for key in differs)


def finished_summary(output_dir: Path, step: int) -> dict[str, Any] | None:
    """The summary of a run that already finished at ``step`` in ``output_dir`` (relaunching it is a no-op)."""
    path = output_dir / "training_summary.json"
    if not path.is_file() or not (output_dir / "model.safetensors").is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("global_step") == step else None


def check_launch(world_size: int) -> None:
    """Refuse a multi-process launch whose processes did not join one job: ``accelerate launch --multi_gpu``
    on a machine without GPUs starts N processes that each train alone (transformers: "process group is
    initialized, but parallel_mode != DISTRIBUTED"), racing to build the same corpora and writing one folder."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and world_size != launched:
        raise SystemExit(
            f"launched as {launched} processes, but they did not join one training job (world size {world_size}): "
            "each would train alone into the same folder. On CPUs launch with `torchrun --nproc_per_node N` or "
            "`accelerate launch --multi_cpu --num_processes N` (add --use_cpu true); with GPUs check that every "
            "process sees CUDA"
        )


def cli() -> None:
    """``python training/run_stage.py``: data and argument errors end in one line (exit 2), no traceback."""
    try:
        main()
    except CorpusError as error:
        print(f"run_stage: error: {error}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as stop:  # a refused argument or run (a message): exit 2 as argument errors do, not 1
        if not isinstance(stop.code, str):
            raise
        message = stop.code if stop.code.startswith("run_stage: error:") else f"run_stage: error: {stop.code}"
        print(message, file=sys.stderr)
        sys.exit(2)


def fine_tune_shipped_model(source: str | os.PathLike[str], output_dir: str | os.PathLike[str], steps: int,
                            model_card_name: str | None = None) -> dict[str, Any]:
    """Stage 3 from the shipped ``sctranslator-base`` on the training cells of ``source`` (a paired set: 80/20 split,
    seed 0, whose held-out cells are the quality benchmark's test cells): the recipe of ``make demo`` and of the
    benchmarks that fine-tune (lr 1e-4, batch 16, no evaluation during training, one checkpoint at the end)."""
    return main([
        "--stage", "finetune", "--model_name_or_path", DEFAULT_MODEL_NAME, "--corpora", str(source),
        "--output_dir", str(output_dir), "--learning_rate", "1e-4", "--per_device_train_batch_size", "16",
        "--max_steps", str(steps), "--eval_strategy", "no", "--logging_steps", "50", "--save_steps", str(steps),
        "--save_total_limit", "1", "--report_to", "none", "--use_cpu", "true", "--stop_on_cosine", "false",
        "--split_seed", "0", "--eval_fraction", "0.2", "--num_shards", "1", "--seed", "0", "--truncation", "first",
        "--disable_tqdm", "true", *(["--model_card_name", model_card_name] if model_card_name else []),
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    model_args, data_args, args = parse_args(argv)
    if model_args.model_name_or_path == DEFAULT_MODEL_NAME:
        model_args.model_name_or_path = resolve_model_name(model_args.model_name_or_path)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if args.process_index == 0 else logging.WARNING)
    if args.output_dir is None:
        raise SystemExit("--output_dir is required")
    if data_args.stage not in STAGES:
        raise SystemExit(f"--stage must be one of {STAGES}")
    if not data_args.corpora:
        raise SystemExit("--corpora is empty: give at least one corpus or source")
    if not args.do_train:
        raise SystemExit("--do_train false: run_stage trains (it would have trained anyway); to score a model on a "
                         "paired set without training, use `sctranslator evaluate --model FOLDER --rna RNA.h5ad "
                         "--protein ADT.h5ad`")
    if args.gradient_checkpointing:
        raise SystemExit("--gradient_checkpointing: this model does not support it; to fit memory, lower "
                         "--per_device_train_batch_size and raise --gradient_accumulation_steps (the same step)")
    if args.max_steps is None or args.max_steps <= 0:
        raise SystemExit("--max_steps must be positive: the training data is an endless stream")
    if data_args.corpus_weights and len(data_args.corpus_weights) != len(data_args.corpora):
        raise SystemExit(f"--corpus_weights has {len(data_args.corpus_weights)} values for "
                         f"{len(data_args.corpora)} corpora")
    unweighted = [corpus for corpus, weight in zip(data_args.corpora, data_args.corpus_weights or [], strict=False)
                  if weight == 0]
    if unweighted and len(unweighted) < len(data_args.corpora):
        # it would train nothing of that panel, yet count it as fine-tuned (the card, protein_context="auto")
        raise SystemExit(f"--corpus_weights gives {', '.join(map(str, unweighted))} a weight of 0: it would not be "
                         "trained on; leave it out of --corpora")
    if data_args.stage == "finetune" and not model_args.model_name_or_path:
        logger.warning("stage finetune without --model_name_or_path: fine-tuning a freshly initialised model")
    check_start_model(model_args.model_name_or_path)
    check_output_dir(Path(args.output_dir), model_args.model_name_or_path)
    check_launch(args.world_size)
    if args.push_to_hub and args.hub_strategy != HubStrategy.END:
        # the Trainer's pushes during training upload the whole output folder, cached corpora (every cell's values)
        # included: only the end push, which sends the model folder's own files (SCTranslatorTrainer.push_to_hub)
        logger.info("pushing once, at the end, with the model card (--hub_strategy end, not %s): pushes during "
                    "training would upload the cached corpora", getattr(args.hub_strategy, "value", args.hub_strategy))
        args.hub_strategy = HubStrategy.END
    for wanted, dtype in ((args.bf16, torch.bfloat16), (args.fp16, torch.float16)):
        if wanted:  # emulated low precision trains slower than float32: say so before the run
            warn_if_emulated(args.device.type, dtype)
    output_dir = Path(args.output_dir)
    world_size, rank = args.world_size, args.process_index
    if world_size > 1 and torch.distributed.is_initialized():
        logger.info("distributed: world size %d, backend %s", world_size, torch.distributed.get_backend())

    # -- tokenizer and corpora (built once, by the main process; the others wait) ----------------------
    tokenizer = build_tokenizer(model_args)
    if model_args.rna_transform is not None:
        tokenizer.rna_transform = model_args.rna_transform
    cache_dir = Path(data_args.corpus_cache_dir or output_dir / "corpora")
    check_distinct_corpus_names(data_args.corpora)  # before any is built: one would replace the other's cache
    with args.main_process_first(desc="corpus preparation"):
        folders = [
            prepare_corpus(spec, cache_dir, tokenizer, num_shards=data_args.num_shards,
                           eval_fraction=data_args.eval_fraction, split_seed=data_args.split_seed,
                           max_cells=data_args.max_cells_per_corpus,
                           validation_fraction=data_args.validation_fraction, eval_fold=data_args.eval_fold,
                           given_options=getattr(data_args, "given_options", None))
            for spec in data_args.corpora
        ]
    manifests = [load_manifest(f) for f in folders]
    check_divisible(manifests, world_size)
    for manifest in manifests:  # per-protein correlations need cells to vary across; selection needs enough of them
        for split in ("validation", "eval"):
            n = manifest["splits"].get(split, {}).get("n_cells", 0)
            if 0 < n < FEW_HELD_OUT:
                logger.warning("corpus %s: only %d %s cells: their per-protein correlations are NaN or noise, and "
                               "so is a best step selected on them; pair more cells, or judge the run by its loss",
                               manifest["name"], n, "validation" if split == "validation" else "held-out")

    # -- model -----------------------------------------------------------------------------------------
    set_seed(args.seed)
    model = build_model(model_args, [m["name"] for m in manifests
                                     if teaches_protein_scale(m, data_args.protein_transform)])
    check_vocab_compatible(model.config, tokenizer)
    # the model config decides the gene encoding; the saved tokenizer records it for direct calls
    variable_length = not getattr(model.config, "pads_to_fixed_length", True)
    if data_args.gene_panel_probability and not variable_length:
        raise SystemExit("--gene_panel_probability needs a model that reads genes by identity (translator_type "
                         "cross_attention); this model reads gene positions, which a gene subset would move")
    encoder_inputs = getattr(model.config, "encoder_inputs", "all_genes")
    zero_genes = getattr(model.config, "expressed_zero_genes", 0)
    if encoder_inputs != "all_genes":
        tokenizer.encoder_inputs, tokenizer.expressed_zero_genes = encoder_inputs, zero_genes
    if variable_length:
        tokenizer.padding = "longest"
    # the saved tokenizer's defaults encode what the model reads (they stayed at the original's 20,000 genes, so a
    # direct call gave a 2,048-gene variant 20,000 genes); the variant reads any number of proteins
    tokenizer.max_length = model.config.max_genes
    if not variable_length:
        tokenizer.protein_max_length = model.config.max_proteins
    model.gene_layout = gene_layout_for(model, tokenizer, manifests, data_args.truncation)
    logger.info("gene layout: %s (%d genes): %s", model.gene_layout.kind, len(model.gene_layout.token_ids),
                model.gene_layout.source)
    collator = CorpusCollator(
        tokenizer, manifests, model.config.max_genes, model.config.max_proteins,
        truncation=data_args.truncation, seed=args.seed, protein_transform=data_args.protein_transform,
        protein_truncation=data_args.protein_truncation, encoder_inputs=encoder_inputs,
        expressed_zero_genes=zero_genes, pad_to_longest=variable_length,
        protein_sampling=data_args.protein_sampling,
        cell_scale=bool(getattr(model.config, "predict_protein_scale", False)),
        gene_layout=model.gene_layout.token_ids if model.gene_layout.ordered else None,
        gene_panel_probability=data_args.gene_panel_probability,
        train_background_proteins=data_args.train_background_proteins,
    )
    # predict_proteins asks requests inside these panels, as training did; another stage unlearns them
    model.config.fine_tuned_panels = (collator.protein_panels() or None) if data_args.stage == "finetune" else None
    bucket_batches = data_args.length_bucket_batches
    if bucket_batches is None:
        bucket_batches = 16 if variable_length else 0

    # -- resume ----------------------------------------------------------------------------------------
    resume = None
    if args.resume_from_checkpoint not in (None, "", "false", "False"):
        resume = None if args.resume_from_checkpoint in ("true", "True") else args.resume_from_checkpoint
    if resume is None:
        with args.main_process_first(desc="checkpoint discovery"):
            resume = find_resume_checkpoint(output_dir)
    check_same_run(output_dir, resume, run_signature(manifests, model_args, data_args, args), args)
    skip = 0
    finishing = False
    if resume is not None:
        step = read_global_step(resume)
        finished = finished_summary(output_dir, step)
        if finished is not None and (finished.get("stopped_early_at") or finished.get("stopped_on_cosine_at")):
            # a run its own rule stopped is finished: resumed, its patience would start again from the last
            # checkpoint (not the best one kept) and train on, changing the weights a pipeline rerun relies on
            logger.info("%s already holds a finished run, stopped by its rule at step %d: nothing to train (give a "
                        "new --output_dir to train again)", output_dir, step)
            return finished
        if step >= args.max_steps:
            if finished is not None:
                logger.info("%s already holds a finished run of %d steps (--max_steps %d): nothing to train",
                            output_dir, step, args.max_steps)
                return finished
            if step == args.max_steps:
                finishing = True
                logger.warning("%s holds the run's last step (%s) but not its final folder (the process ended "
                               "before it was written): finishing the run from that checkpoint, without training",
                               output_dir, resume)
            else:
                raise SystemExit(f"the newest checkpoint, {resume}, is at step {step}, and --max_steps is "
                                 f"{args.max_steps}: the folder holds a longer run. Raise --max_steps to train on, "
                                 "give a new --output_dir for a shorter run, or use that checkpoint as the model")
        if not args.ignore_data_skip:
            skip = step * args.per_device_train_batch_size * args.gradient_accumulation_steps
        logger.info("resuming from %s (step %d): skipping %d examples per process", resume, step, skip)
    # the stream itself skips (cheap, before tokenization); the Trainer must not skip again
    args.ignore_data_skip = True

    if bucket_batches > 0:
        # windows of whole batches sorted by length; resuming skips to the window start, then within it
        batch = args.per_device_train_batch_size
        window = bucket_batches * batch
        aligned, rest = bucketed_skip(skip, window)
        train_stream = LengthBucketedStream(
            build_train_stream(manifests, data_args.corpus_weights, seed=args.seed, rank=rank,
                               world_size=world_size, skip_examples=aligned),
            window, batch, seed=args.seed, first_index=aligned, skip=rest,
        )
    else:
        train_stream = build_train_stream(manifests, data_args.corpus_weights, seed=args.seed, rank=rank,
                                          world_size=world_size, skip_examples=skip)
    eval_sets = held_out_sets(manifests, "eval", data_args.max_eval_samples)
    # evaluation during training (early stopping, best checkpoint) uses validation cells when there are any
    during_training = held_out_sets(manifests, "validation", data_args.max_eval_samples) or eval_sets
    if args.load_best_model_at_end and during_training is eval_sets:
        logger.warning("--load_best_model_at_end selects on the test cells: give --validation_fraction to "
                       "select on validation cells instead")
    eval_dataset = None
    if during_training and args.eval_strategy != "no":
        eval_dataset = next(iter(during_training.values())) if len(during_training) == 1 else during_training

    compute_metrics, metrics_backend = make_compute_metrics(data_args.use_evaluate)
    logger.info("metrics computed with %s", metrics_backend)
    callbacks: list[TrainerCallback] = [CheckpointCompleteCallback(), RunLengthCallback(),
                                          LogLastStepCallback()]
    stop_on_cosine = data_args.stop_on_cosine if data_args.stop_on_cosine is not None else data_args.stage == "sc"
    cosine_cb = None
    if stop_on_cosine:
        if eval_dataset is None:
            logger.warning("--stop_on_cosine needs evaluation (--eval_strategy steps): it will never trigger")
        cosine_cb = CosineSimilarityStopCallback(data_args.cosine_threshold, data_args.cosine_min_steps)
        callbacks.append(cosine_cb)
    if data_args.early_stopping_patience:
        if args.eval_strategy == "no" or not args.load_best_model_at_end:
            raise SystemExit("--early_stopping_patience needs evaluation during training and the best weights "
                             "kept: add --eval_strategy steps --load_best_model_at_end true (and "
                             "--validation_fraction to select on validation cells)")
        callbacks.append(CorpusMeanEarlyStopping(data_args.early_stopping_patience))
    if os.environ.get(KILL_ENV):
        callbacks.append(_KillAfterStep(int(os.environ[KILL_ENV])))

    optimizer_cls_and_kwargs = None
    if data_args.optimizer == "adam_amsgrad":
        optimizer_cls_and_kwargs = (torch.optim.Adam, {
            "lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon,
            "amsgrad": True,
        })
    example_log = str(output_dir / "example_ids.tsv") if data_args.log_example_ids else None
    if example_log:
        output_dir.mkdir(parents=True, exist_ok=True)
    trainer = SCTranslatorTrainer(
        model=model,
        args=args,
        train_dataset=train_stream,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
        example_log=example_log,
    )
    result = trainer.finish_from_checkpoint(resume) if finishing else trainer.train(resume_from_checkpoint=resume)
    scale_head_refit = maybe_refit_scale_head(model, manifests, collator, data_args, args, trainer.state,
                                              validation_sets=during_training if during_training is not eval_sets
                                              else {})

    # -- final evaluation, model folder, card ----------------------------------------------------------
    final_metrics: dict[str, float] = {}
    if eval_sets:
        for name, dataset in eval_sets.items():
            prefix = "eval" if len(eval_sets) == 1 else f"eval_{name}"
            final_metrics.update(trainer.evaluate(dataset, metric_key_prefix=prefix))
            final_metrics.update(log1p_metrics(model, dataset, collator, args.per_device_eval_batch_size, prefix))
    # not pushed here (the Trainer pushes a model saved outside its loop): the one push follows the card, below
    trainer.save_model(str(output_dir), _internal_call=True)
    # over the whole run (a resumed run's own mean covers the steps after its checkpoint only); None: none logged
    train_loss = run_mean_loss(trainer.state.log_history)
    if not math.isfinite(train_loss):
        train_loss = result.training_loss if math.isfinite(result.training_loss) else None
    summary = {
        "stage": data_args.stage,
        "global_step": trainer.state.global_step,
        "train_loss": train_loss,
        "loss_history": loss_history(trainer.state.log_history),
        # the protein scale part's own loss (part of "loss"); empty for models without it
        "scale_loss_history": loss_history(trainer.state.log_history, "scale_loss"),
        "eval": final_metrics,
        "stopped_on_cosine_at": cosine_cb.stopped_at if cosine_cb else None,
        "stopped_early_at": (trainer.state.global_step if data_args.early_stopping_patience
                             and trainer.state.global_step < args.max_steps
                             and not (cosine_cb and cosine_cb.stopped_at) else None),
        **best_checkpoint_summary(trainer.state, args),
        "scale_head_refit": scale_head_refit,
        "resumed_from": portable_path(resume, output_dir),
        "world_size": world_size,
        "metrics_backend": metrics_backend,
        # paths relative to the model folder (the summary is published with it: absolute ones name the user's disk)
        "corpora": [{"name": m["name"], "dir": portable_path(m["dir"], output_dir), "fingerprint": m.get("fingerprint")}
                    for m in manifests],
    }
    if trainer.is_world_process_zero():
        (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        write_model_card(output_dir, model, manifests, data_args, model_args, args, final_metrics, summary)
        if args.push_to_hub:  # the folder's own files, this card included (SCTranslatorTrainer.push_to_hub)
            trainer.push_to_hub(commit_message=f"sctranslator stage {data_args.stage}")
    return summary


def portable_path(path: str | os.PathLike[str] | None, output_dir: Path) -> str | None:
    """``path`` relative to the model folder where it is inside it (corpora run_stage caches there, its
    checkpoints), else only its last part: a summary published with the model never names the user's folders."""
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(output_dir).resolve()).as_posix()
    except ValueError:
        return path.name


if __name__ == "__main__":
    cli()
