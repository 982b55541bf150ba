"""Files from interpretation results: tables (CSV / Parquet), AnnData, heatmaps, ranked gene lists.

The ``sctranslator attention`` and ``sctranslator knockout`` commands that write them live in
:mod:`sctranslator.interpretation_commands`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["TABLE_FORMATS", "attention_writes", "check_top_n", "knockout_writes", "write_attention", "write_knockout"]

TABLE_FORMATS = ("csv", "parquet", "both")
# the paths (relative to its folder) each writer makes: --overwrite replaces a folder only if it holds nothing else
_ATTENTION_NAMES = re.compile(r"(encoder|decoder|encoder_to_decoder)_(sum|mean|normalized)\.(csv|parquet|png)"
                              r"|attention\.h5ad|ranked_genes\.(csv|parquet)|ranked_genes/([^/]+\.(rnk|txt))?")
_KNOCKOUT_NAMES = re.compile(r"knockout_(effects|standardized_effect|mean_diff)\.(csv|parquet)"
                             r"|knockout_standardized_effect(_[^/]+)?\.png")


def attention_writes(name: str) -> bool:
    """Whether ``name`` (a path relative to the folder, ``/``-separated, a folder's ending in ``/``) is one
    :func:`write_attention` writes."""
    return _ATTENTION_NAMES.fullmatch(name) is not None


def knockout_writes(name: str) -> bool:
    """Whether ``name`` (a path relative to the folder, ``/``-separated, a folder's ending in ``/``) is one
    :func:`write_knockout` writes."""
    return _KNOCKOUT_NAMES.fullmatch(name) is not None


_MAX_TICK_LABELS = 60


def _table_formats(table_format: str) -> list[str]:
    if table_format not in TABLE_FORMATS:
        raise ValueError(f"table format must be one of {TABLE_FORMATS}, got {table_format!r}")
    formats = ["csv", "parquet"] if table_format == "both" else [table_format]
    if "parquet" in formats:
        try:
            import pyarrow  # noqa: F401
        except ImportError as error:
            raise ValueError("Parquet output needs pyarrow (pip install pyarrow); use --table-format csv") from error
    return formats


def _published(written: Sequence[Path], staging: Path, target: Path) -> list[Path]:
    """The paths the files written into ``staging`` have once it is published as ``target``."""
    return [target / path.relative_to(staging) for path in written]


def _write_table(frame, path_stem: Path, formats: Sequence[str], index: bool = True) -> list[Path]:
    written = []
    for fmt in formats:
        path = path_stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            frame.to_csv(path, index=index)
        else:
            out = frame.copy()
            out.columns = [str(c) for c in out.columns]
            out.to_parquet(path, index=index)
        written.append(path)
    return written


def safe_filename(name: str) -> str:
    """A protein/gene name as a file name (keeps letters, digits, ``-_.``; other characters → ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "unnamed"
    return cleaned[:100]


def unique_file_stems(names: Sequence[str]) -> list[str]:
    """:func:`safe_filename` of each name, a ``_2``, ``_3``... added where two names clean to one (``CD4+ T`` and
    ``CD4 T``), so one file never replaces another."""
    used: dict[str, int] = {}
    stems = []
    for name in names:
        stem = safe_filename(name)
        if stem in used:
            used[stem] += 1
            stem = f"{stem}_{used[stem]}"
        else:
            used[stem] = 0
        stems.append(stem)
    return stems


def _tick_positions(n: int) -> list[int]:
    """Every position when there are few, else at most ``_MAX_TICK_LABELS`` evenly spaced ones."""
    if n <= _MAX_TICK_LABELS:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, _MAX_TICK_LABELS).round()})


def heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: Path, title: str,
            diverging: bool = False, xlabel: str = "", ylabel: str = "") -> Path:
    """A PNG heatmap (matplotlib, Agg backend), rows and columns labelled by name (evenly spaced names
    when there are too many to show them all)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=np.float64)
    n_rows, n_cols = matrix.shape
    fig_w = min(max(4.0, 0.25 * n_cols + 2.5), 20.0)
    fig_h = min(max(3.0, 0.25 * n_rows + 1.5), 20.0)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    if diverging:
        finite = matrix[np.isfinite(matrix)]
        limit = float(np.abs(finite).max()) if finite.size else 1.0
        limit = limit or 1.0
        image = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    else:
        image = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    # names, never matplotlib's default index ticks: all of them when few, else evenly spaced ones
    x_at, y_at = _tick_positions(n_cols), _tick_positions(n_rows)
    ax.set_xticks(x_at, labels=[str(cols[i]) for i in x_at], rotation=90, fontsize=7)
    ax.set_yticks(y_at, labels=[str(rows[i]) for i in y_at], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- attention
def check_top_n(top_n: int) -> None:
    """``top_n`` (``--top-n``) counts genes: a negative one cut genes off the end of each list, 0 wrote empty ones."""
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 1:
        raise ValueError(f"top_n (--top-n) is the number of genes in each ranked_genes/<protein>.txt: give a whole "
                         f"number of at least 1, not {top_n!r}")


def write_attention(result, out_dir: str | Path, table_format: str = "csv", plots: bool = True,
                    anndata: bool = True, rank_by: str = "mean", top_n: int = 100,
                    overwrite: bool = False) -> list[Path]:
    """Write an :class:`~.attention.AttentionResult` as the folder ``out_dir``; returns the files.

    The folder is built beside ``out_dir`` and renamed into place when complete (a failed or interrupted
    run leaves nothing); an existing non-empty ``out_dir`` is refused unless ``overwrite``, which replaces
    it as a whole, and only if it holds nothing but this writer's files (:func:`attention_writes`): an earlier
    run's output, never a folder of other files (:func:`tokenization.atomic_io.check_output_target`).

    * ``{encoder,decoder,encoder_to_decoder}_{sum,mean,normalized}.csv|.parquet``: the maps;
    * ``attention.h5ad``: see :meth:`AttentionResult.to_anndata`;
    * ``{map}_normalized.png``: heatmaps of the normalised maps;
    * ``ranked_genes.csv``: protein, rank, gene, score (encoder→decoder column, ``rank_by`` statistic);
    * ``ranked_genes/<protein>.rnk``: GSEA prerank (gene TAB score, every gene with a score, descending) and
      ``ranked_genes/<protein>.txt``: the ``top_n`` genes, one per line (g:Profiler / Enrichr lists).
    """
    from tokenization.atomic_io import atomic_output_dir

    formats = _table_formats(table_format)
    check_top_n(top_n)
    target = Path(out_dir).absolute()
    with atomic_output_dir(target, overwrite=overwrite, writes=attention_writes) as staging:  # checks it first
        written = _write_attention_files(result, staging, formats, plots, anndata, rank_by, top_n)
    return _published(written, staging, target)


def _write_attention_files(result, out: Path, formats: Sequence[str], plots: bool, anndata: bool, rank_by: str,
                           top_n: int) -> list[Path]:
    import pandas as pd

    from .attention import MAP_NAMES

    written: list[Path] = []
    for name in MAP_NAMES:
        for stat in ("sum", "mean", "normalized"):
            written += _write_table(result.frame(name, stat), out / f"{name}_{stat}", formats)
    if anndata:
        path = out / "attention.h5ad"
        result.to_anndata().write_h5ad(path)
        written.append(path)
    if plots:
        axes = {"encoder": ("key gene", "query gene"), "decoder": ("key protein", "query protein"),
                "encoder_to_decoder": ("protein", "gene")}
        for name in MAP_NAMES:
            rows, cols = result.labels(name)
            written.append(heatmap(
                result.get(name, "normalized"), rows, cols, out / f"{name}_normalized.png",
                f"{name.replace('_', ' ')} attention ({result.recipe} recipe, {result.n_cells} cells, normalised)",
                xlabel=axes[name][0], ylabel=axes[name][1],
            ))
    ranked_dir = out / "ranked_genes"
    ranked_dir.mkdir()
    long_rows = []
    for protein, stem in zip(result.proteins, unique_file_stems(result.proteins), strict=True):
        series = result.ranked_genes(protein, by=rank_by)
        rnk = ranked_dir / f"{stem}.rnk"
        rnk.write_text("".join(f"{gene}\t{score:.8g}\n" for gene, score in series.items()))
        top = ranked_dir / f"{stem}.txt"
        top.write_text("".join(f"{gene}\n" for gene in series.index[:top_n]))
        written += [rnk, top]
        long_rows += [(protein, rank + 1, gene, float(score)) for rank, (gene, score) in enumerate(series.items())]
    ranked = pd.DataFrame(long_rows, columns=["protein", "rank", "gene", f"score_{rank_by}"])
    written += _write_table(ranked, out / "ranked_genes", formats, index=False)
    return written


# --------------------------------------------------------------------------- knockout
def write_knockout(result, out_dir: str | Path, table_format: str = "csv", plots: bool = True,
                   overwrite: bool = False) -> list[Path]:
    """Write a :class:`~.knockout.KnockoutResult` as the folder ``out_dir``; returns the files.

    * ``knockout_effects.csv``: long table (gene as given, gene_read: the vocabulary's name of the gene it reached,
      protein, group, n_cells, means, mean_diff,
      sd_unperturbed, standardized_effect, mean_abs_diff, frac_changed, frac_perturbed, and ``scale``: the
      scale of the predictions compared, :data:`~.knockout.KNOCKOUT_SCALE`);
    * ``knockout_standardized_effect.csv`` / ``knockout_mean_diff.csv``: genes × proteins, all cells;
    * ``knockout_standardized_effect.png``: heatmap genes × proteins (diverging colours), all cells,
      and ``knockout_standardized_effect_<group>.png`` per group with ``groupby``.

    Written atomically, and an existing non-empty ``out_dir`` refused unless ``overwrite``, as
    :func:`write_attention`.
    """
    from tokenization.atomic_io import atomic_output_dir

    formats = _table_formats(table_format)
    target = Path(out_dir).absolute()
    with atomic_output_dir(target, overwrite=overwrite, writes=knockout_writes) as staging:  # checks it first
        written = _write_knockout_files(result, staging, formats, plots)
    return _published(written, staging, target)


def _write_knockout_files(result, out: Path, formats: Sequence[str], plots: bool) -> list[Path]:
    written = _write_table(result.effects, out / "knockout_effects", formats, index=False)
    for value in ("standardized_effect", "mean_diff"):
        written += _write_table(result.matrix(value), out / f"knockout_{value}", formats)
    if plots:
        stems = dict(zip(result.groups[1:], unique_file_stems(result.groups[1:]), strict=True))  # after "all"
        for group in result.groups:
            suffix = "" if group == "all" else f"_{stems[group]}"
            label = "all cells" if group == "all" else f"{result.groupby} = {group}"
            written.append(heatmap(
                result.matrix("standardized_effect", group).to_numpy(), result.genes, result.proteins,
                out / f"knockout_standardized_effect{suffix}.png",
                f"knockout effect (mean diff / sd of unperturbed), {label}", diverging=True,
                xlabel="protein", ylabel="knocked-out gene",
            ))
    return written
