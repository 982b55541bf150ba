"""``evaluate`` wrapper around :func:`modeling_sctranslator.metrics.protein_prediction_metrics` (the maths live there).

Load it offline from its folder: ``evaluate.load("training/protein_metrics")``. Inputs are
(cells x proteins) predictions and references; NaN references (missing or padded proteins) are
ignored. Returns mse, cosine_similarity, pearson_per_protein_mean/median, pearson_per_cell_mean,
proteins_evaluated and cells_evaluated.
"""

import datasets
import evaluate
import numpy as np

from modeling_sctranslator.metrics import protein_prediction_metrics

_DESCRIPTION = "Protein abundance prediction quality: MSE, cosine similarity, per-protein and per-cell Pearson r."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of per-cell lists of predicted protein values (all the same length).
    references: list of per-cell lists of target values; NaN marks a value to leave out.
Returns:
    dict with mse, cosine_similarity, pearson_per_protein_mean, pearson_per_protein_median,
    pearson_per_cell_mean, proteins_evaluated, cells_evaluated.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ProteinMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("float32")),
                }
            ),
        )

    def _compute(self, predictions, references):
        return protein_prediction_metrics(
            np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
        )
