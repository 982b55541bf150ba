"""Fit the protein scale part's head again once the best step's weights are loaded.

``--load_best_model_at_end`` picks the step whose *scaled* predictions validate best; on small fine-tuning
sets that is often an early step, when the protein scale part (which learns the cell's protein bounds, see
``ProteinScaleHead``) has barely moved from where pre-training left it. Its inputs are detached pooled states
plus the RNA covariates, so with the rest of the model fixed they can be computed once per cell and the head
fitted on them alone, in seconds, without changing a single scaled prediction.

Selection follows the quantity users read: the mean per-protein Pearson of the log1p-count predictions on the
validation cells, per corpus, averaged. The head as loaded is one of the candidates, so the refit can only keep
it or improve on it there.
"""

from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from modeling_sctranslator.metrics import pearson_per_protein
from modeling_sctranslator.modeling_sctranslator import unscale

logger = logging.getLogger(__name__)


@dataclass
class HeadInputs:
    """One corpus's cells as the scale head sees them, with what is needed to score its output."""

    pooled: torch.Tensor  # (cells, features): ProteinScaleHead.pool
    scale_labels: torch.Tensor  # (cells, 2) measured protein min and max (NaN: no counts)
    predictions: torch.Tensor  # (cells, proteins) scaled predictions (fixed)
    labels: torch.Tensor  # (cells, proteins) scaled targets (NaN at padding)

    @functools.cached_property
    def measured_log1p(self) -> np.ndarray:
        """The targets on the log1p-count scale (fixed: computed once, scored against at every check)."""
        return unscale(self.labels, self.scale_labels).numpy()

    def log1p_pearson(self, bounds: torch.Tensor) -> float:
        """Mean per-protein Pearson of the log1p-count predictions given the head's ``bounds``."""
        r = pearson_per_protein(unscale(self.predictions, bounds).numpy(), self.measured_log1p)
        return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")

    @torch.no_grad()
    def head_log1p_pearson(self, head: torch.nn.Module) -> float:
        """:meth:`log1p_pearson` of the bounds ``head`` (a model's scale head) gives these cells."""
        return self.log1p_pearson(head.bounds(self.pooled.to(_device(head))).float().cpu())


@torch.no_grad()
def collect_head_inputs(model, cells, collator, batch_size: int = 32) -> HeadInputs | None:
    """Run ``model`` over ``cells`` (raw examples) once and keep the head's pooled inputs; None when no cell has
    count labels (the head has nothing to learn from there)."""
    pooled: list[torch.Tensor] = []
    hook = model.scale_head.register_forward_hook(lambda head, args, output: pooled.append(head.pool(*args)))
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"scale_labels": [], "predictions": [], "labels": []}
    try:
        for start in range(0, len(cells), batch_size):
            batch = collator([cells[i] for i in range(start, min(start + batch_size, len(cells)))])
            batch.pop("example_ids", None)
            labels, scale_labels = batch.pop("labels"), batch.pop("protein_scale_labels")
            out = model(**{k: v.to(_device(model)) for k, v in batch.items()})
            parts["scale_labels"].append(scale_labels.float())
            parts["predictions"].append(out.predictions.float().cpu())
            parts["labels"].append(labels.float().reshape(out.predictions.shape))
    finally:
        hook.remove()
        model.train(was_training)
    inputs = HeadInputs(pooled=torch.cat(pooled).float().cpu(), **{k: _cat_padded(v) for k, v in parts.items()})
    return inputs if bool(torch.isfinite(inputs.scale_labels).all(dim=1).any()) else None


def _cat_padded(chunks: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along cells, padding columns with NaN (batches may be padded to different protein counts)."""
    width = max(c.shape[1] for c in chunks)
    return torch.cat([torch.nn.functional.pad(c, (0, width - c.shape[1]), value=float("nan")) for c in chunks])


def refit_scale_head(model, train: list[HeadInputs], validation: list[HeadInputs], steps: int = 600,
                     learning_rate: float = 1e-3, check_every: int = 10) -> dict[str, float | int]:
    """Fit ``model.scale_head`` on ``train`` (full batch, Adam, MSE of the bounds as in training), keep the
    parameters that give the best mean validation log1p-count Pearson (the loaded head included). Returns the
    validation score before and after and the step chosen (0: the loaded head was kept)."""
    head = model.scale_head
    pooled = torch.cat([t.pooled for t in train])
    targets = torch.cat([t.scale_labels for t in train])
    known = torch.isfinite(targets).all(dim=1)
    pooled, targets = pooled[known].to(_device(head)), targets[known].to(_device(head))

    def score() -> float:
        values = [v.head_log1p_pearson(head) for v in validation]
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("-inf")

    was_training = head.training
    head.train()
    initial = best = score()
    best_step, best_state = 0, copy.deepcopy(head.state_dict())
    optimizer = torch.optim.Adam(head.parameters(), lr=learning_rate)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head.bounds(pooled), targets)
        loss.backward()
        optimizer.step()
        if step % check_every == 0 and (current := score()) > best:
            best, best_step, best_state = current, step, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    head.train(was_training)
    result = {"validation_log1p_pearson_before": initial, "validation_log1p_pearson_after": best,
              "chosen_step": best_step, "steps": steps, "train_cells": int(known.sum())}
    logger.info("protein scale head refitted on %d cells: validation log1p Pearson %.4f -> %.4f (step %d of %d)",
                result["train_cells"], initial, best, best_step, steps)
    return result


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device
