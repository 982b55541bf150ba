"""Trainer pieces: the streaming-aware Trainer, metrics, callbacks and checkpoint discovery."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainerState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput

from modeling_sctranslator.metrics import protein_prediction_metrics
from training.published import TRAINING_ARGS_FILE, publishable_files

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointCompleteCallback",
    "LogLastStepCallback",
    "RunLengthCallback",
    "CosineSimilarityStopCallback",
    "SCTranslatorTrainer",
    "find_resume_checkpoint",
    "make_compute_metrics",
]

COMPLETE_MARKER = "checkpoint_complete.json"
METRICS_DIR = Path(__file__).resolve().parent / "protein_metrics"


class NonFiniteLossError(FloatingPointError):
    """Training stops at a NaN/inf loss instead of writing a corrupt model; names the batch."""

    def __init__(self, step: int, rank: int, example_ids) -> None:
        from .data import split_example_id

        cells = [] if example_ids is None else [split_example_id(int(i)) for i in example_ids.tolist()]
        shown = ", ".join(f"corpus {c} row {r}" for c, r in cells[:8]) or "unknown cells"
        super().__init__(
            f"the training loss became NaN/inf at step {step} (process {rank}) on the batch of {shown}"
            f"{' ...' if len(cells) > 8 else ''}. Check those cells for extreme values, lower the learning "
            "rate, or resume from the last checkpoint (it was written before this step)."
        )


@contextlib.contextmanager
def _global_rng_kept():
    """Runs the block with the global random states (torch, its GPU, NumPy, Python) restored after it: an evaluation
    during training drew from them (its DataLoader's seed), so evaluating every N steps changed the dropout and
    random features of every later step, and the trained weights with them."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def _cell_weighted_mean(values: list[tuple[float, int]]) -> float:
    losses, cells = np.array(values, dtype=np.float64).T
    return float(losses @ cells / cells.sum())


class SCTranslatorTrainer(Trainer):
    """``Trainer`` for per-rank streams: own DataLoader, lean prediction step, example-id log.

    * ``get_train_dataloader``: the train dataset is already this process's stream (its own shards,
      see ``training.data``), so it is wrapped in a plain DataLoader, not re-sharded by Accelerate
      (which would either dispatch every batch from rank 0 or shard a second time). The DataLoader has
      its own seeded generator so creating its iterator does not consume the global torch RNG (that
      would shift dropout / random-feature draws after a resume).
    * ``compute_loss`` drops the collator's ``example_ids`` and, with ``example_log``, appends
      ``step rank ids`` lines (the cells each optimisation step trained on) to that file.
    * ``prediction_step`` returns only ``(loss, predictions, labels)``, not the hidden states.
    * Models with the protein scale part: its loss is logged on its own (``scale_loss`` in training logs,
      ``<prefix>_scale_loss`` in evaluations; ``loss`` is the total), and its gradients are clipped apart
      from the rest (:meth:`_clip_grad_norm`).
    """

    def __init__(self, *args, example_log: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.example_log = example_log
        # (scale loss, cells) of each batch since the last log of its kind
        self._scale_losses: dict[str, list[tuple[float, int]]] = {"train": [], "eval": []}

    def finish_from_checkpoint(self, checkpoint: str) -> TrainOutput:
        """What ``train`` leaves behind, for a run whose last step was checkpointed but whose process ended before
        its final folder was written (killed, out of time): the checkpoint's weights and state, the best step's
        weights with ``load_best_model_at_end``. ``train`` itself would take one step past ``max_steps``."""
        self.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        self._load_from_checkpoint(checkpoint)
        best = self.state.best_model_checkpoint
        if self.args.load_best_model_at_end and best is not None:
            if Path(best).is_dir():
                self._load_best_model()
            else:  # the summary and card must not name a step whose weights are not the ones kept
                logger.warning("the best checkpoint %s recorded by the run is gone: keeping the last step's weights",
                               best)
                self.state.best_model_checkpoint = self.state.best_global_step = None
        return TrainOutput(self.state.global_step, run_mean_loss(self.state.log_history), {})

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """The Trainer's save (final folder and every checkpoint), with ``training_args.bin`` written again without
        the Hub token: the Trainer pickles its arguments whole, ``--hub_token`` included, in plain text."""
        super()._save(output_dir, state_dict)
        saved = Path(output_dir if output_dir is not None else self.args.output_dir) / TRAINING_ARGS_FILE
        if self.args.hub_token and saved.is_file():
            hub_token = self.args.hub_token
            self.args.hub_token = None
            try:
                torch.save(self.args, saved)
            finally:
                self.args.hub_token = hub_token

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, **kwargs: Any) -> Any:
        """Upload the model folder's own top-level files (weights, config, tokenizer, code, card, summary) as the
        stage wrote them. The Trainer's version uploads the whole output folder but checkpoints: that is every
        cell's RNA and protein values (the corpora run_stage caches there, held-out cells included) and the
        example-id log; and it writes its generic model card over the folder's own."""
        from transformers import trainer as hf_trainer  # its hf_api, so stand-ins for the Hub see this upload

        if self.hub_model_id is None:
            self.init_hf_repo(token=token)
        if not self.is_world_process_zero():
            return None
        self._finish_current_push()
        files = publishable_files(self.args.output_dir)
        return hf_trainer.hf_api().upload_folder(
            repo_id=self.hub_model_id, folder_path=str(self.args.output_dir), commit_message=commit_message,
            token=token if token is not None else self.args.hub_token, run_as_future=not blocking,
            allow_patterns=files, revision=revision or self.args.hub_revision,
        )

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The Trainer's evaluation, and with several corpora (a dict of held-out sets, whose metrics the Trainer names
        ``eval_<corpus>_<metric>``) also their mean over corpora under the plain name (``eval_<metric>``, each corpus
        weighing one): the name ``--metric_for_best_model`` gives (finetune.yaml: pearson_per_protein_mean), which
        was found in no evaluation of several corpora (a KeyError at the first one)."""
        with _global_rng_kept():
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        sets = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(sets, dict) or len(sets) < 2:
            return metrics
        per_set = []
        for name in sets:
            start = f"{metric_key_prefix}_{name}_"
            per_set.append({key[len(start):]: value for key, value in metrics.items() if key.startswith(start)
                            and isinstance(value, (int, float)) and not key.endswith(("_runtime", "_per_second"))})
        means = {}
        for key in sorted(set.intersection(*(set(m) for m in per_set))):
            values = np.array([m[key] for m in per_set], dtype=np.float64)
            finite = values[np.isfinite(values)]
            means[f"{metric_key_prefix}_{key}"] = float(finite.mean()) if finite.size else float("nan")
        self.log(means)
        # the callbacks saw each corpus's metrics; early stopping watches the mean (CorpusMeanEarlyStopping)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, means)
        metrics.update(means)
        return metrics

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("training requires a train_dataset")
        generator = torch.Generator().manual_seed(self.args.seed)
        return DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            generator=generator,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = inputs.pop("example_ids", None)
        if ids is not None and self.example_log and model.training:
            with open(self.example_log, "a") as f:
                f.write(f"{self.state.global_step + 1}\t{self.args.process_index}\t"
                        f"{','.join(map(str, ids.tolist()))}\n")
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if model.training and not bool(torch.isfinite(loss.detach())):
            raise NonFiniteLossError(self.state.global_step + 1, self.args.process_index, ids)
        self._record_scale_loss("train" if model.training else "eval", outputs)
        return (loss, outputs) if return_outputs else loss

    def _record_scale_loss(self, kind: str, outputs) -> None:
        scale_loss = outputs.get("scale_loss") if hasattr(outputs, "get") else None
        if scale_loss is not None and bool(torch.isfinite(scale_loss.detach())):
            predictions = outputs.get("predictions")
            cells = int(predictions.shape[0]) if predictions is not None else 1
            self._scale_losses[kind].append((float(scale_loss.detach()), cells))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean scale loss since the last log of its kind (``logs`` of evaluations are also the
        metrics ``evaluate`` returns, so they carry it too)."""
        train, held_out = self._scale_losses["train"], self._scale_losses["eval"]
        if "loss" in logs and train:
            logs["scale_loss"] = round(_cell_weighted_mean(train), 6)
            train.clear()
        eval_loss = next((k for k in logs if k.startswith("eval") and k.endswith("_loss")), None)
        if eval_loss is not None and held_out:  # weighted by cells, as the Trainer weighs eval_loss
            logs[eval_loss[: -len("loss")] + "scale_loss"] = _cell_weighted_mean(held_out)
            held_out.clear()
        super().log(logs, start_time)

    def _clip_grad_norm(self, model):
        """Clip the protein scale part's gradients apart from the rest's; returns the rest's norm.

        One global norm over both would let the scale part's (large, early) gradients shrink every other
        parameter's step, so the scaled predictions would no longer be those the model learns without it.
        """
        named = list(model.named_parameters())
        if not any(".scale_head." in f".{name}" for name, _ in named) or self.args.max_grad_norm <= 0:
            return super()._clip_grad_norm(model)
        head = [p for name, p in named if ".scale_head." in f".{name}"]
        rest = [p for name, p in named if ".scale_head." not in f".{name}"]
        self.accelerator.clip_grad_norm_(head, self.args.max_grad_norm)
        return self.accelerator.clip_grad_norm_(rest, self.args.max_grad_norm)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        inputs.pop("example_ids", None)
        labels = inputs.get("labels")
        with torch.no_grad():
            outputs = model(**inputs)
        self._record_scale_loss("eval", outputs)
        loss = outputs.loss.detach() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs.predictions.detach(), None if labels is None else labels.detach()


def make_compute_metrics(use_evaluate: bool = True) -> tuple[Callable, str]:
    """``compute_metrics`` for the Trainer, through the local ``evaluate`` module when it loads offline.

    Labels are NaN wherever a protein is padded or missing (the collator sets them), so no mask is
    needed. Returns the function and which backend it uses (``"evaluate"`` or ``"modeling_sctranslator.metrics"``).
    """
    metric = None
    if use_evaluate:
        try:
            import evaluate

            metric = evaluate.load(str(METRICS_DIR), keep_in_memory=True)
        except Exception as err:  # evaluate missing or refusing to load: same maths, called directly
            logger.warning("evaluate could not load %s (%s); using modeling_sctranslator.metrics directly",
                           METRICS_DIR, err)

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions = np.asarray(eval_pred.predictions, dtype=np.float64)
        labels = np.asarray(eval_pred.label_ids, dtype=np.float64)
        if metric is not None:
            return metric.compute(predictions=predictions, references=labels)
        return protein_prediction_metrics(predictions, labels)

    return compute_metrics, "evaluate" if metric is not None else "modeling_sctranslator.metrics"


class CosineSimilarityStopCallback(TrainerCallback):
    """Stops training once every evaluated set reaches ``eval[_<name>]_cosine_similarity >= threshold``.

    The original stops its single-cell stage when cosine similarity ("ccc") exceeds 0.85. Cosine
    similarity of per-cell scaled, non-negative profiles starts high (~0.8 after a few steps on most
    sets), so ``min_steps`` can keep the rule from ending training before it has learnt much.
    """

    def __init__(self, threshold: float = 0.85, min_steps: int = 0) -> None:
        self.threshold = float(threshold)
        self.min_steps = int(min_steps)
        self.latest: dict[str, float] = {}
        self.stopped_at: int | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        for key, value in (metrics or {}).items():
            if key.endswith("cosine_similarity"):
                self.latest[key] = float(value)
        if state.global_step < self.min_steps:  # the rule only applies from min_steps on
            return control
        if self.latest and all(v >= self.threshold for v in self.latest.values()):
            logger.warning("cosine similarity %s >= %.3f at step %d: stopping", self.latest, self.threshold,
                           state.global_step)
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_save = True
        return control


class CorpusMeanEarlyStopping(EarlyStoppingCallback):
    """transformers' early stopping, watching ``--metric_for_best_model`` as :meth:`SCTranslatorTrainer.evaluate`
    gives it: with several corpora their mean, after each corpus's own metrics (``eval_<corpus>_<metric>``), which it
    passes over in silence instead of warning, at every corpus, that early stopping is disabled."""

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        name = args.metric_for_best_model or "loss"
        name = name[len("eval_"):] if name.startswith("eval_") else name
        if f"eval_{name}" not in metrics and any(key.endswith(f"_{name}") for key in metrics):
            return None  # one corpus of several: the mean over them follows
        return super().on_evaluate(args, state, control, metrics, **kwargs)


class RunLengthCallback(TrainerCallback):
    """After the first ``measure_steps`` steps, says how long ``max_steps`` will take at the measured
    pace, and warns when that is more than ``warn_hours`` (e.g. the released model's sizes on a CPU)."""

    def __init__(self, measure_steps: int = 3, warn_hours: float = 12.0) -> None:
        self.measure_steps = int(measure_steps)
        self.warn_hours = float(warn_hours)
        self.started: tuple[int, float] | None = None
        self.projected_hours: float | None = None

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self.started is None:  # the first step includes start-up costs: measure from its end
            self.started = (state.global_step, now)
            return control
        done = state.global_step - self.started[0]
        if done == self.measure_steps and self.projected_hours is None:
            per_step = (now - self.started[1]) / done
            hours = self.projected_hours = per_step * (state.max_steps - state.global_step) / 3600
            too_long = hours > self.warn_hours
            (logger.warning if too_long else logger.info)(
                "%.2f s per step on this machine: the remaining %d of %d steps take about %s%s", per_step,
                state.max_steps - state.global_step, state.max_steps,
                f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min",
                " -- far longer than a run is meant to take here; use smaller sizes (e.g. make pretrain's "
                "recipe on a CPU) or a GPU" if too_long else "")
        return control


class LogLastStepCallback(TrainerCallback):
    """Logs the training loss at the last step and at each checkpoint too. The Trainer logs every
    ``logging_steps`` only, so a run shorter than ``logging_steps`` (a quick fine-tune) ended with no loss on
    record, a longer one lost its last partial interval, and a resumed run the steps between its last log and
    its checkpoint: with them, the logged losses cover every step (:func:`run_mean_loss`)."""

    def on_step_end(self, args, state, control, **kwargs):
        if args.logging_strategy == "steps" and (state.global_step >= state.max_steps or control.should_save):
            control.should_log = True
        return control


class CheckpointCompleteCallback(TrainerCallback):
    """Marks a checkpoint folder complete after the Trainer has written all of it.

    transformers 5.24 writes ``checkpoint-N`` in place (no temporary folder + rename), so a kill
    while saving leaves a partial folder. ``on_save`` runs after every file is written; the marker
    it adds (written atomically: temporary file + ``os.replace``) is what ``find_resume_checkpoint``
    trusts.
    """

    def on_save(self, args, state, control, **kwargs):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # every rank has written its RNG state
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if folder.is_dir():
                tmp = folder / (COMPLETE_MARKER + ".tmp")
                tmp.write_text(json.dumps({"global_step": state.global_step, "world_size": args.world_size}))
                os.replace(tmp, folder / COMPLETE_MARKER)
        return control


_CKPT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_step(folder: str | os.PathLike[str]) -> int | None:
    """The step in a ``checkpoint-N`` folder's name (None for any other name); reads nothing on disk, so it
    also serves for a checkpoint that has since been rotated away."""
    match = _CKPT.match(Path(folder).name)
    return int(match.group(1)) if match else None


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a usable checkpoint, or None when it is."""
    if not (folder / COMPLETE_MARKER).is_file():
        return f"no {COMPLETE_MARKER} (interrupted while saving?)"
    state = folder / "trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as err:
        return f"unreadable trainer_state.json ({err})"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return "no model.safetensors"
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except Exception as err:  # truncated or garbled file
        return f"unreadable model.safetensors ({err})"
    if not (folder / "optimizer.pt").is_file():
        return "no optimizer.pt"
    return None


def find_resume_checkpoint(output_dir: str | os.PathLike[str]) -> str | None:
    """The newest usable ``checkpoint-N`` under ``output_dir`` (None when there is none).

    A newer checkpoint that is incomplete or corrupt is skipped with a warning naming it and why, and
    renamed to ``<name>.corrupt`` (so the Trainer's rotation and ``get_last_checkpoint`` ignore it).
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = sorted(
        ((step, p) for p in root.iterdir() if p.is_dir() and (step := checkpoint_step(p)) is not None), reverse=True
    )
    for _, folder in found:
        problem = checkpoint_problem(folder)
        if problem is None:
            return str(folder)
        logger.warning("checkpoint %s is not usable: %s; falling back to the previous one", folder, problem)
        target = folder.with_name(folder.name + ".corrupt")
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    return None


def read_global_step(checkpoint: str | os.PathLike[str]) -> int:
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])


def run_mean_loss(state_log: list[dict[str, Any]]) -> float:
    """The mean training loss over the whole run, from its logged losses (each the mean over its logging interval,
    so weighted by the interval's steps). ``train``'s own mean covers only the steps of its call: a resumed run
    reported the mean of the steps after its checkpoint."""
    history = np.array(loss_history(state_log), dtype=np.float64).reshape(-1, 2)
    if not len(history):
        return float("nan")
    steps = np.diff(history[:, 0], prepend=0)
    return float(steps @ history[:, 1] / steps.sum())


def loss_history(state_log: list[dict[str, Any]], key: str = "loss") -> list[tuple[int, float]]:
    """``(step, value)`` pairs of one logged training quantity from ``trainer.state.log_history``."""
    return [(int(e["step"]), float(e[key])) for e in state_log if key in e]
