"""The ``sctranslator`` command line: convert-original, vocab, predict, evaluate, attention, knockout, push."""

from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenization.cell_files import protein_side, read_cells
from tokenization.checks import modality, modality_columns
from tokenization.matrix import rna_like_protein_message, rna_like_protein_side

from .convert_command import add_convert_command
from .hub import add_push_command
from .options import (
    add_model_options,
    add_protein_context,
    compute_dtype,
    counted,
    load_model_and_tokenizer,
    names_argument,
    rna_argument,
    use_layer,
)

OUTPUT_SCALES = {"log1p_counts": "log1p counts", "per_cell_scaled": "per-cell scaled values (see uns['sctranslator'])"}


# The library's messages name Python arguments; on the command line the matching options are these.
_CLI_EQUIVALENTS = (
    ("gene_names=", "--gene-column COLUMN"),
    ("adata.raw", "--layer raw, or --layer counts"),
    ("layers[", "--layer NAME"),
    ("overrides=", "the gene symbol itself in --proteins, or as the var_name in a --protein file"),
    ("adata.T", "write adata.T to a new .h5ad first"),
)


def _with_cli_equivalents(message: str) -> str:
    hints = [option for python, option in _CLI_EQUIVALENTS if python in message]
    return message + (f" [on the command line: {'; '.join(dict.fromkeys(hints))}]" if hints else "")


def _protein_file(args: argparse.Namespace) -> Any:
    """``--protein`` read whole, its antibodies only; the --rna file itself must tell them from its genes (or keep
    them in obsm)."""
    from modeling_sctranslator.inference import counts_of_clr

    proteins = read_cells(args.protein, "protein file")
    layer = getattr(args, "protein_layer", None)
    if layer is not None:  # ADT files often hold CLR values in X, counts in a layer
        use_layer(proteins, layer, args.protein)
    if Path(args.protein).resolve() == Path(args.rna).resolve() and Path(args.protein).suffix.lower() != ".h5mu":
        # one file for both sides (a .h5mu's modalities are chosen by name, each its own AnnData): its antibody
        # columns, or the antibodies it keeps in obsm, whose values no layer holds
        if layer is not None and modality_columns(proteins.var, "RNA")[0] is None:
            raise ValueError(f"--protein-layer reads a layer of the protein file's X, but {args.protein} keeps no "
                             "antibodies in X; give the antibodies' counts as a protein file of their own")
        proteins = protein_side(proteins, args.protein)
    proteins = modality(proteins, "protein")
    if rna_like_protein_side(proteins):  # evaluate predicted 16,148 "proteins" from an RNA file given as --protein
        raise ValueError(rna_like_protein_message(args.protein, proteins.shape[1]))
    # CLR values tell their counts only over the cells they were computed over: read them before any subsetting
    # (to the RNA file's cells, or a process's share)
    return counts_of_clr(proteins, args.protein)


def _run_predict(args: argparse.Namespace) -> int:
    from modeling_sctranslator.inference import predict_proteins, read_rna
    from tokenization.atomic_io import atomic_output_file

    if args.proteins is None and args.protein is None:
        raise ValueError("say which proteins to predict: --proteins NAMES.txt or --protein PROT.h5ad")
    proteins = names_argument(args.proteins, "protein") if args.proteins is not None else _protein_file(args)
    state = _distributed_state()
    if state is not None:
        return _run_predict_distributed(args, proteins, state)
    with atomic_output_file(args.out, overwrite=args.overwrite, inputs=_inputs(args)) as staging:
        rna, gene_names = rna_argument(args)  # a wrong --layer / --gene-column fails before the model loads
        if hasattr(proteins, "obs_names"):  # --protein: its names, and its values for the cells the RNA holds
            rna, gene_names = read_rna(rna, gene_names)  # opened (backed) for its obs_names; read in chunks later
            proteins = _measured_in_rna_order(rna, proteins, args.protein or args.proteins)  # or: a file as --proteins
        model, tokenizer = load_model_and_tokenizer(args.model, args.device)
        started = time.perf_counter()
        result = predict_proteins(
            model, tokenizer, rna, proteins, gene_names=gene_names, batch_size=args.batch_size,
            chunk_size=args.chunk_size, device=model.device, progress=True, dtype=compute_dtype(args.dtype),
            protein_context=args.protein_context,
        )
        elapsed = time.perf_counter() - started
        result.write_h5ad(staging)
    info = result.uns["sctranslator"]
    skipped = sum(len(info[key]) for key in ("unmapped_proteins", "control_proteins", "duplicate_proteins"))
    print(
        f"predicted {counted(result.n_vars, 'protein')} for {counted(result.n_obs, 'cell')} in {elapsed:.1f} s "
        f"({result.n_obs / max(elapsed, 1e-9):.1f} cells/s), {OUTPUT_SCALES[info['output_scale']]} -> {args.out}"
        + (f"; {skipped} not predicted (unmapped, controls, duplicates: listed in uns['sctranslator'])"
           if skipped else "")
        + _asked_with(info["protein_context"])
    )
    return 0


def _asked_with(context: dict) -> str:
    """The summary line's words for what the proteins were asked with (``uns['sctranslator']['protein_context']``)."""
    if context.get("fine_tuned_panel"):
        return "; asked inside the model's fine-tuning panel" + (
            f" ({context['proteins_added']} other proteins' predictions dropped)" if context["proteins_added"] else "")
    if context.get("proteins_added"):
        return (f"; asked with {context['proteins_added']} of the model's training proteins, whose predictions were "
                "dropped (--protein-context none asks only these)")
    return ""


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The files a command reads: an output may never replace one of them."""
    named = (getattr(args, name, None) for name in ("rna", "protein", "proteins"))  # --proteins: A,B,C or a file
    return [Path(p) for p in named if p is not None and Path(p).is_file()]


# what torchrun and accelerate launch set in every process they start, beside WORLD_SIZE
_LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _launched_processes() -> int:
    """How many processes a launcher started this one with: 1 when not launched. A ``WORLD_SIZE`` left over in
    the environment (a job script's export) without the launcher's other variables is warned about and ignored:
    it made a plain run wait for processes that never come."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world < 2:
        return 1
    missing = [name for name in _LAUNCHER_VARIABLES if not os.environ.get(name)]
    if missing:
        warnings.warn(f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                      "not, so no launcher (torchrun, accelerate launch) started this process: running as one "
                      "process. Unset WORLD_SIZE to silence this.", UserWarning, stacklevel=2)
        return 1
    return world


def _distributed_state():
    """Accelerate's process state when launched on several processes (torchrun / accelerate launch)."""
    if _launched_processes() < 2:
        return None
    import torch
    from accelerate import PartialState

    # torch's own timeout (30 min) stays: a shorter one would also cut the waits while the main process reads
    # the file or writes the result
    try:
        if torch.cuda.is_available():
            return PartialState()
        return PartialState(cpu=True, backend="gloo")  # on CPU, accelerate needs to be told (else: 1 process)
    except RuntimeError as error:  # torch's DistStoreError / timeout: not every process came
        raise OSError(f"the {os.environ['WORLD_SIZE']} processes did not all start ({type(error).__name__}); launch "
                      "with torchrun --nproc_per_node N or accelerate launch, or unset WORLD_SIZE, RANK and "
                      "MASTER_ADDR to run one process") from None


def _run_predict_distributed(args: argparse.Namespace, proteins, state) -> int:
    """Each process predicts a contiguous share of the cells on its own device; the main one writes the file."""
    import shutil
    from dataclasses import asdict

    import anndata
    import numpy as np
    from accelerate.utils import broadcast_object_list

    from modeling_sctranslator.gene_layout import GeneLayout
    from modeling_sctranslator.inference import predict_proteins, read_rna, reading_layout
    from tokenization.atomic_io import atomic_output_file, check_output_target

    # --layer / --gene-column as a single process reads them (they were ignored here: X and var_names read)
    rna, gene_names = read_rna(*rna_argument(args))
    if rna.n_obs < state.num_processes:
        raise ValueError(f"{rna.n_obs} cells for {state.num_processes} processes: launch at most {rna.n_obs} "
                         "(or run one process)")
    if hasattr(proteins, "obs_names"):  # whole files, before the split: a share's check sees neither count
        proteins = _measured_in_rna_order(rna, proteins, args.protein or args.proteins)  # or: a file as --proteins
    if state.is_main_process:
        check_output_target(args.out.absolute(), args.overwrite, _inputs(args))  # fail before any work
    parts = args.out.absolute().parent / f".{args.out.name}.parts"
    with state.split_between_processes(list(range(rna.n_obs))) as mine:
        rows = np.asarray(mine, dtype=np.int64)
    device = str(state.device) if args.device == "auto" else args.device
    model, tokenizer = load_model_and_tokenizer(args.model, device)
    share = proteins[rows] if hasattr(proteins, "obs_names") else proteins
    # the genes are chosen over the whole file, as one process would: by the main process only (a pass over
    # every cell), sent to the others as plain fields (a layout is a kind, token ids and a sentence)
    layout = [asdict(found) if state.is_main_process and (found := reading_layout(model, tokenizer, rna, gene_names))
              else None]
    broadcast_object_list(layout)
    result = predict_proteins(
        model, tokenizer, rna[rows], share, gene_names=gene_names, batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        device=model.device, progress=state.is_main_process, dtype=compute_dtype(args.dtype),
        gene_layout=GeneLayout(**layout[0]) if layout[0] else None, protein_context=args.protein_context,
    )
    if state.is_main_process:
        parts.mkdir(exist_ok=True)
    state.wait_for_everyone()
    np.savez(parts / f"{state.process_index}.npz", X=result.X, **dict(result.layers))  # plain arrays, no pickle
    state.wait_for_everyone()
    if state.is_main_process:
        shares = [np.load(parts / f"{i}.npz") for i in range(state.num_processes)]
        merged = anndata.AnnData(X=np.concatenate([s["X"] for s in shares]), obs=rna.obs.copy(),
                                 var=result.var.copy(), uns=result.uns)
        for key in result.layers:
            merged.layers[key] = np.concatenate([s[key] for s in shares])
        with atomic_output_file(args.out, overwrite=args.overwrite, inputs=_inputs(args)) as staging:
            merged.write_h5ad(staging)
        shutil.rmtree(parts, ignore_errors=True)
        print(f"predicted {counted(merged.n_vars, 'protein')} for {counted(merged.n_obs, 'cell')} on "
              f"{counted(state.num_processes, 'process', 'processes')} "
              f"-> {args.out}")
    state.wait_for_everyone()
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    if _launched_processes() > 1:  # each process ran the whole evaluation and all but one failed on the file
        raise ValueError("evaluate runs as one process (it reads the files in chunks): run it without torchrun / "
                         "accelerate launch")

    from modeling_sctranslator.inference import predict_proteins, read_rna
    from modeling_sctranslator.metrics import protein_prediction_metrics
    from tokenization.atomic_io import atomic_output_file

    # --json is guarded as predict's --out: an existing file, an input or a missing folder fail before any work
    output = (atomic_output_file(args.json, overwrite=args.overwrite, inputs=_inputs(args)) if args.json
              else nullcontext(None))
    with output as staging:
        rna, gene_names = read_rna(*rna_argument(args))  # opened here for its obs_names; read in chunks later
        proteins = _measured_in_rna_order(rna, _protein_file(args), args.protein)
        model, tokenizer = load_model_and_tokenizer(args.model, args.device)
        result, targets = predict_proteins(
            model, tokenizer, rna, proteins, gene_names=gene_names, batch_size=args.batch_size,
            chunk_size=args.chunk_size, device=model.device, progress=True, protein_transform=args.protein_transform,
            dtype=compute_dtype(args.dtype), return_targets=True, protein_context=args.protein_context,
        )
        metrics = protein_prediction_metrics(result.X, result.layers["measured"])
        scale = result.uns["sctranslator"]["output_scale"]
        measured_kind = result.uns["sctranslator"]["measured_values"]
        if "scaled" in result.layers:  # the scale part: log1p counts above, the per-cell scaled scale here
            metrics["per_cell_scaled"] = protein_prediction_metrics(result.layers["scaled"],
                                                                    result.layers["measured_scaled"])
        seen = _cells_trained_on(args.model, result.obs_names)
        metrics.update(scale=scale, cells=int(result.n_obs), proteins=int(result.n_vars),
                       model=str(args.model or "sctranslator-base (default)"), protein_transform=args.protein_transform,
                       measured_values=measured_kind, **_left_out_of_the_scores(result, targets),
                       cells_trained_on=None if seen is None else sum(seen.values()))
        metrics, undefined = _defined_only(metrics)
        line = json.dumps(metrics, allow_nan=False)  # strict JSON: NaN is not JSON, and JSON.parse rejects it
        if staging is not None:
            staging.write_text(line + "\n")
    if seen:  # a fine-tuned model scores higher on its own training cells: the whole file is no held-out test
        corpora = ", ".join(f"{n} of corpus {name!r}" for name, n in seen.items())
        first = next(iter(seen))
        warnings.warn(f"{sum(seen.values())} of the {result.n_obs} cells evaluated are cells this model was trained "
                      f"or validated on ({corpora}): these scores are not held-out ones. Its held-out cells are the "
                      f"cell_id column of {args.model}/corpora/{first}/eval-*.parquet (the card's held-out metrics "
                      "are on them): evaluate those alone", stacklevel=2)
    if measured_kind == "signed" and scale == "log1p_counts":
        _warn_signed_measurements(args.protein)
    missing = metrics["measured_values_missing"]
    if missing:
        warnings.warn(f"{missing} measured values of {args.protein} are missing (NaN or infinite; "
                      f"measured_values_missing): each protein and cell is scored on the values it has "
                      f"({metrics['cells_not_scored']} cells measured none)", stacklevel=2)
    if undefined:
        warnings.warn(f"{', '.join(undefined)} undefined here (written as null): a Pearson r needs at least 2 values "
                      "that differ, over cells for a protein's r (1 cell, or a protein measured the same in every "
                      "cell), over proteins for a cell's r (a panel of 1 protein)", stacklevel=2)
    print(line)
    return 0


def _cells_trained_on(model: str | None, cell_names: Any) -> dict[str, int] | None:
    """Per corpus, how many of ``cell_names`` a model folder's run trained or validated on (its training and
    validation shards, where the run's corpora are still beside it: a local fine-tuning folder); None where that
    cannot be told (no run corpora beside the model: the shipped model, a Hub download)."""
    from training.corpus import cell_ids

    folder = Path(model) if model else None
    summary_path = folder / "training_summary.json" if folder is not None else None
    if summary_path is None or not summary_path.is_file():
        return None
    try:
        corpora = json.loads(summary_path.read_text()).get("corpora") or []
    except (OSError, ValueError):
        return None
    wanted = set(map(str, cell_names))
    seen: dict[str, int] = {}
    for corpus in corpora:
        directory = folder / str(corpus.get("dir") or "")
        manifest = directory / "manifest.json"
        if not corpus.get("dir") or not manifest.is_file():
            return None  # a corpus not beside the model (a cache elsewhere, a pushed folder): its cells are unknown
        names = cell_ids(directory, ("train", "validation"))
        if wanted & names:
            seen[str(corpus.get("name"))] = len(wanted & names)
    return seen


def _defined_only(value: Any, name: str = "") -> tuple[Any, list[str]]:
    """``value`` (the metrics) with each non-finite number (a mean of no Pearson r) as ``None``, and the names of
    those numbers."""
    if isinstance(value, dict):
        pairs = [(key, _defined_only(item, f"{name}.{key}" if name else str(key))) for key, item in value.items()]
        return {key: clean for key, (clean, _) in pairs}, [n for _, (_, names) in pairs for n in names]
    if isinstance(value, list):
        items = [_defined_only(item, name) for item in value]
        return [clean for clean, _ in items], list(dict.fromkeys(n for _, names in items for n in names))
    if isinstance(value, numbers.Real) and not math.isfinite(value):
        return None, [name]
    return value, []


def _left_out_of_the_scores(result: Any, targets: Any) -> dict[str, Any]:
    """What the scores above do not cover, by name and reason: proteins not predicted (unmapped, controls,
    duplicates), those predicted from an untrained embedding, predicted ones without a Pearson r, cells with no
    measured value at all (cells missing some proteins are scored on the others); and the
    phospho / cleaved forms, which are scored against their total protein's prediction (the model predicts
    total protein), with the scores of the total forms alone beside them."""
    import numpy as np

    from modeling_sctranslator.metrics import protein_prediction_metrics, proteins_not_scored

    measured = result.layers["measured"]
    not_predicted = {name: "not in the vocabulary" for name in targets.unmapped}
    not_predicted.update({name: "a control (isotype, blank, hashtag)" for name in targets.controls})
    not_predicted.update({name: f"the same protein as {kept} (token {token})"
                          for name, kept, token in targets.duplicates})
    out: dict[str, Any] = {
        "proteins_not_predicted": not_predicted,
        "proteins_untrained": list(result.uns["sctranslator"].get("untrained_proteins") or []),
        "proteins_not_scored": proteins_not_scored(list(result.var_names), result.X, measured),
        "cells_not_scored": int((~np.isfinite(measured)).all(axis=1).sum()),
        # single missing values (NaN): each cell and protein is scored on the values it has
        "measured_values_missing": int((~np.isfinite(measured)).sum()),
    }
    from modeling_sctranslator.inference import MODIFIED_ROUTES

    modified = result.var["mapping_route"].isin(MODIFIED_ROUTES).to_numpy()
    if modified.any():
        out["modified_forms_scored_as_total"] = list(result.var_names[modified])
        if (~modified).any():
            out["total_forms_only"] = protein_prediction_metrics(result.X[:, ~modified], measured[:, ~modified])
    return out


def _measured_in_rna_order(rna: Any, proteins: Any, path: Path) -> Any:
    """The measured proteins of the RNA's cells, in its order (matched by obs_names); a protein file that
    measured more cells is used for the RNA's ones, with a warning naming how many were left out."""
    from tokenization.checks import protein_in_rna_order

    aligned, left_out = protein_in_rna_order("", rna.obs_names, proteins, drop_extra=True)
    if left_out:
        warnings.warn(
            f"{path} holds {proteins.n_obs} cells, {left_out} of them not in the RNA file: those are left out, "
            f"and the RNA file's {aligned.n_obs} cells are used (matched by obs_names)",
            UserWarning, stacklevel=2,
        )
    return aligned


def _warn_signed_measurements(path: Path) -> None:
    """Signed measured values (z-scores, RPPA ratios, CLR whose counts cannot be recovered) cannot be put on the
    log1p-count scale the predictions are on: say which of the printed numbers still mean something."""
    warnings.warn(
        f"the measured values in {path} are signed (negative in places): already normalised (e.g. z-scored or "
        "CLR-normalised ADT whose counts cannot be recovered; RPPA and mass-spec ratios are signed too), not counts. "
        "mse and cosine_similarity compare log1p-count predictions with them and are not comparable with other "
        "evaluations; the correlations (pearson_*) and the per_cell_scaled block are comparable only with "
        "evaluations against values normalised the same way. For ADT, evaluate against the raw ADT counts (e.g. "
        "--protein-layer counts) to get every metric",
        UserWarning, stacklevel=2,
    )


def _h5ad_output(value: str) -> Path:
    """``--out`` of predict: an AnnData file; any other suffix would get HDF5 bytes under a misleading name."""
    path = Path(value)
    if path.suffix.lower() != ".h5ad" and not path.is_dir():  # a folder gets its own message, with a file inside
        raise argparse.ArgumentTypeError(
            f"{value!r}: the predictions are written as AnnData, so the name must end in .h5ad (e.g. "
            f"{path.with_suffix('.h5ad').name}); for a table: python -c \"import anndata; "
            f"anndata.read_h5ad('{path.with_suffix('.h5ad').name}').to_df().to_csv('{path.with_suffix('.csv').name}')\"")
    return path


def add_inference_commands(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser("predict", help="predict proteins for the cells of an .h5ad / .h5mu / Cell "
                                                    "Ranger .h5 or matrix folder")
    add_model_options(predict)
    which = predict.add_mutually_exclusive_group()
    which.add_argument("--proteins", help="proteins: A,B,C or a text file: one name per line (commas kept, as in "
                       "'HLA-A,B,C'), or a single line of comma-separated names; '#' starts a comment")
    which.add_argument("--protein", type=Path,
                       help="protein .h5ad (or .h5mu, Cell Ranger .h5 or matrix folder) whose var_names are the "
                            "targets")
    add_protein_context(predict)
    predict.add_argument("--out", type=_h5ad_output, required=True, help="output .h5ad (cells x proteins)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    predict.set_defaults(func=_run_predict)

    evaluate = subparsers.add_parser("evaluate", help="predict and compare with measured proteins")
    add_model_options(evaluate)
    evaluate.add_argument("--protein", type=Path, required=True,
                          help="measured proteins of the RNA's cells (matched by obs_names; extra cells left out)")
    evaluate.add_argument("--protein-layer", default=None,
                          help="read the measured values from this layer of --protein instead of X (e.g. counts, "
                               "where X holds CLR-normalised values)")
    evaluate.add_argument("--json", type=Path, help="also write the metrics JSON here")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    evaluate.add_argument(
        "--protein-transform", choices=["auto", "log1p", "none"], default="auto",
        help="applied to measured protein values before per-cell scaling, as training does: auto (default) "
        "takes log1p of counts and leaves log values and signed ones (RPPA, mass-spec ratios) as they are",
    )
    add_protein_context(evaluate)
    evaluate.set_defaults(func=_run_evaluate)


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    from tokenization.cli import add_vocab_commands

    from .interpretation_commands import add_interpretation_commands

    parser = argparse.ArgumentParser(
        prog="sctranslator", description="scTranslator: translate single-cell transcriptomes into proteomes"
    )
    try:
        installed = version("sctranslator")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"sctranslator {installed}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convert_command(subparsers)
    add_vocab_commands(subparsers)
    add_inference_commands(subparsers)
    add_interpretation_commands(subparsers)
    add_push_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sub-command; user errors print one clear line and exit with status 2, not a traceback.

    Set ``SCTRANSLATOR_DEBUG=1`` to see the traceback instead.
    """
    args = build_parser().parse_args(argv)
    _stop_cleanly_on_sigterm()
    try:
        _check_input_files(args)
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as error:
        if os.environ.get("SCTRANSLATOR_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        if isinstance(error, OSError) and error.strerror and error.filename:  # "[Errno 2] ..." as words and a path
            message = f"{error.filename}: {error.strerror.lower()}"
        _close_progress_bars()
        print(f"sctranslator {args.command}: error: {_with_cli_equivalents(str(message))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: outputs were unwound (staging files removed); one line, the shell's 130
        if os.environ.get("SCTRANSLATOR_DEBUG"):
            raise
        _close_progress_bars()
        print(f"sctranslator {args.command}: interrupted; an output not finished is not written (an existing one is "
              "unchanged)", file=sys.stderr)
        return 130


def _check_input_files(args: argparse.Namespace) -> None:
    """Missing input files or folders given as files fail before any model is loaded."""
    from tokenization.cell_files import require_file

    for name, what in (("rna", "RNA file"), ("protein", "protein file")):
        if isinstance(getattr(args, name, None), Path):
            require_file(getattr(args, name), what)


def _show_warnings_as_cli_lines(command: str) -> None:
    """Warnings as one line each, with the command-line options where the text names Python arguments."""

    def show(message, category, filename, lineno, file=None, line=None):
        from tqdm import tqdm

        # tqdm.write: on a line of its own even while a progress bar is drawn (print would append to the bar)
        tqdm.write(f"sctranslator {command}: warning: {_with_cli_equivalents(str(message))}", file=file or sys.stderr)

    warnings.showwarning = show


def _stop_cleanly_on_sigterm() -> None:
    """``kill`` (SIGTERM) unwinds like Ctrl-C, so unfinished outputs are removed rather than left as
    hidden ``.partial`` files (a SIGKILL leaves them; the next write to the same path sweeps them)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _close_progress_bars() -> None:
    """End any progress bar left open by the failure, so the error starts on its own line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", [])):
        bar.close()


def console_main() -> None:
    """The ``sctranslator`` command: :func:`main`, with warnings shown as one line each."""
    argv = sys.argv[1:]
    command = next((a for a in argv if not a.startswith("-")), "")
    _show_warnings_as_cli_lines(command)
    sys.exit(main(argv))


if __name__ == "__main__":
    console_main()
