"""Pre-train the package's default model: the order-invariant variant, stage 1 (bulk) then stage 2 (single cell).

    make pretrain                                   # = python training/pretrain.py (defaults below)
    python training/pretrain.py --out outputs/pretrain [--ship modeling_sctranslator/pretrained/sctranslator-base]
    python training/pretrain.py --exclude neurips_bmmc --out outputs/pretrain_without_neurips   # leave one out

Steps (each skipped when its output is complete, so a relaunch continues):

1. ``prepare``: every paired set of ``--data_dir`` becomes one training source under ``OUT/data``.
   Single-cell sets keep raw counts (the tokenizer log-normalises them, ``rna_transform=log1p_cp10k``);
   ``reapseq_pbmc`` gets the benchmark's QC. **The benchmark sets (eccite, reapseq_pbmc, neurips_bmmc,
   tenx_pbmc10k_s200) keep only the training cells of ``benchmarks/quality.py``'s 80/20 split (seed 0)
   under every budget**: their test cells never reach the corpus (``OUT/data/cells.json`` lists what was
   kept and left out). Bulk sets are brought to one log scale, non-negative (RSEM counts → log1p;
   log2 arrays with negative values or NaN → the sample's minimum subtracted, NaN → the minimum:
   per-sample max-min scaling does not see the shift) and their protein values stay as distributed
   (RPPA, TMT ratios; NaN = not measured, left out of the loss).
2. ``stage 1`` (``training/run_stage.py --stage bulk``) from scratch on every bulk pair, corpora mixed
   by weight; mass-spec panels (8,000-11,000 proteins) are sampled per example (``--protein_sampling``).
3. ``stage 2`` (``--stage sc``) from stage 1 on every single-cell set, stopping when the held-out cosine
   similarity of every set reaches 0.85 (the paper's rule) or at ``--sc_steps``. The protein scale part
   (``predict_protein_scale``: outputs in log1p counts) is added here and learns from the count panels; its
   gradients stay in it, so the rest trains exactly as without it.
4. ``stage 2, second cycle`` (``--sc_cycle2_steps N``; off by default): stage 2 again from its own end, on the
   same sets and held-out cells, with a fresh cosine schedule at a lower peak (``--sc_cycle2_learning_rate``) and
   another data order (seed + 1). ``--stage2_from DIR`` takes a finished first cycle (e.g. the shipped model)
   instead of training stages 1-2. Measured from the shipped model (8,000 steps at 3e-4, bf16, 49 min;
   ``benchmarks/published/pretrain_second_cycle_summary.json``): the held-out mean over the nine sets sat at
   0.578-0.587 from step 500 to the end (first cycle 0.573), and on the benchmark's test cells zero-shot it was
   behind on two of four sets (``benchmarks/published/quality_zero_shot_cycle{1,2}.json``): at this model size
   more steps no longer help, so it is not part of the default recipe.
5. ``--ship DIR``: the last stage-2 model written to ``DIR`` as the package's default model (see :func:`ship`).

``OUT/pretrain_summary.json`` records the corpus actually used (cells per set), wall times and the
held-out metrics of every stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from tokenization.atomic_io import atomic_output_dir, atomic_output_file, usual_mode
from training.corpus import _dense_rows
from training.paired_data import DATA_DIR, VOCAB_DIR, qc_keep
from training.paired_data import DEFAULT_SETS as BENCHMARK_SETS  # only their training cells may be used

logger = logging.getLogger("training.pretrain")

SC_SETS = ("pbmc10k_protein_v3", "pbmc5p_totalseqc_mme", "cite_cd8_gse100866", "pbmc1k_protein_v3", "eccite",
           "reapseq_pbmc", "neurips_bmmc", "tenx_pbmc10k_s200", "eccite_ctcl")
BULK_SETS = ("tcga_brca_bulk", "tcga_rppa_rnaseq", "tcga_rppa_mrna", "cptac_ucec", "cptac_coad")

MODEL = {  # the shipped model: small enough for a few hours' CPU run and a < 30 MB checkpoint
    "translator_type": "cross_attention", "hidden_size": 64, "num_attention_heads": 4, "attention_head_dim": 16,
    "num_encoder_layers": 2, "num_decoder_layers": 2, "nb_random_features": 32, "max_genes": 2048,
    "max_proteins": 512, "feature_redraw_interval": 1000,
}


# ---------------------------------------------------------------------------------------------------- prepare
def _write_pair(out_dir: Path, name: str, rna: ad.AnnData, prot: ad.AnnData, protein_suffix: str) -> list[str]:
    """``OUT/<name>_rna.h5ad`` + ``_adt|_rppa.h5ad``, each written atomically; returns the two paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for adata, suffix in ((rna, "_rna"), (prot, protein_suffix)):
        path = out_dir / f"{name}{suffix}.h5ad"
        with atomic_output_file(path, overwrite=True) as staging:
            adata.write_h5ad(staging)
        files.append(str(path))
    return files


def _protein_var(prot: ad.AnnData) -> pd.DataFrame:
    """The protein names, with the isotype/blank flags (``is_control``) where the source has them."""
    var = pd.DataFrame(index=prot.var_names.astype(str))
    if "is_control" in prot.var:
        var["is_control"] = prot.var["is_control"].astype(bool).to_numpy()
    return var


def prepare_single_cell(name: str, data_dir: Path, out_dir: Path, held_out: set[str]) -> dict[str, Any]:
    rna = ad.read_h5ad(data_dir / f"{name}_rna.h5ad")
    prot = ad.read_h5ad(data_dir / f"{name}_adt.h5ad")
    if list(rna.obs_names) != list(prot.obs_names):
        raise ValueError(f"{name}: RNA and protein files hold different cells")
    keep = qc_keep(name, rna.X, rna.var_names)  # the benchmark's QC (reapseq_pbmc ships unfiltered)
    n_qc = int((~keep).sum())
    is_test = np.asarray([str(o) in held_out for o in rna.obs_names])
    keep &= ~is_test
    rows = np.flatnonzero(keep)
    rna_out = ad.AnnData(X=sp.csr_matrix(rna.X[rows], dtype=np.float32),
                         obs=pd.DataFrame(index=rna.obs_names[rows].astype(str)),
                         var=pd.DataFrame(index=rna.var_names.astype(str)))
    prot_var = _protein_var(prot)
    prot_out = ad.AnnData(X=_dense_rows(prot.X[rows]).astype(np.float32), obs=rna_out.obs.copy(), var=prot_var)
    files = _write_pair(out_dir, name, rna_out, prot_out, "_adt")
    return {"kind": "single_cell", "files": files, "cells_source": int(rna.n_obs), "cells_used": int(len(rows)),
            "cells_failing_qc": n_qc, "benchmark_test_cells_left_out": int(is_test.sum()),
            "genes": int(rna.n_vars), "proteins": int(prot.n_vars)}


def bulk_rna_on_log_scale(values: np.ndarray, logged: bool) -> np.ndarray:
    """Bulk RNA on one non-negative log scale: unlogged values → log1p; logged values → NaN set to the
    sample's minimum, and a negative minimum subtracted (max-min scaling per sample, which the tokenizer
    applies, is unchanged by the shift; the minimum becomes 0 = not expressed)."""
    x = np.asarray(values, dtype=np.float64)
    if not logged:
        return np.log1p(np.clip(np.nan_to_num(x, nan=0.0), 0, None)).astype(np.float32)
    lowest = np.nanmin(np.where(np.isfinite(x), x, np.nan), axis=1, keepdims=True)
    lowest = np.nan_to_num(lowest, nan=0.0)
    return (np.where(np.isfinite(x), x, lowest) - np.minimum(lowest, 0)).astype(np.float32)


def prepare_bulk(name: str, data_dir: Path, out_dir: Path) -> dict[str, Any]:
    rna = ad.read_h5ad(data_dir / f"{name}_rna.h5ad")
    prot = ad.read_h5ad(data_dir / f"{name}_rppa.h5ad")
    if list(rna.obs_names) != list(prot.obs_names):
        raise ValueError(f"{name}: RNA and protein files hold different samples")
    described = " ".join(str(rna.uns.get(k, "")) for k in ("value_type", "values")).lower()
    logged = "not log" not in described
    genes = [str(g) for g in rna.var_names]  # TCGA's 'SYMBOL|ENTREZ' names resolve by their Entrez id
    x = bulk_rna_on_log_scale(_dense_rows(rna.X), logged)
    rna_out = ad.AnnData(X=sp.csr_matrix(x), obs=pd.DataFrame(index=rna.obs_names.astype(str)),
                         var=pd.DataFrame(index=pd.Index(genes, dtype=str)))
    rna_out.var_names_make_unique()
    prot_var = _protein_var(prot)
    y = _dense_rows(prot.X).astype(np.float32)
    prot_out = ad.AnnData(X=y, obs=rna_out.obs.copy(), var=prot_var)
    files = _write_pair(out_dir, name, rna_out, prot_out, "_rppa")
    return {"kind": "bulk", "files": files, "cells_source": int(rna.n_obs), "cells_used": int(rna.n_obs),
            "genes": len(genes), "proteins": int(prot.n_vars), "protein_values_missing": float(np.isnan(y).mean()),
            "rna_values": ("log scale as distributed" if logged else "log1p of the distributed values")}


def prepare(data_dir: Path, vocab_dir: Path, out: Path, exclude: set[str]) -> dict[str, Any]:
    """Write every training source under ``out`` and ``out/cells.json`` (what was kept and left out)."""
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
    from training.paired_data import held_out_cells

    record = out / "cells.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("exclude") == sorted(exclude) and all(
                Path(p).is_file() for s in saved["sets"].values() for p in s["files"]):
            return saved
    tokenizer = SCTranslatorTokenizer.from_original_tables(vocab_dir)
    sets: dict[str, Any] = {}
    for name in SC_SETS:
        if name in exclude:
            continue
        held_out = held_out_cells(name, tokenizer) if name in BENCHMARK_SETS else set()
        info = prepare_single_cell(name, data_dir, out / "sc", held_out)
        sets[name] = info
        logger.info("%s: %d of %d cells (%d benchmark test cells left out)", name, info["cells_used"],
                    info["cells_source"], info.get("benchmark_test_cells_left_out", 0))
    for name in BULK_SETS:
        if name in exclude:
            continue
        sets[name] = prepare_bulk(name, data_dir, out / "bulk")
    saved = {"exclude": sorted(exclude), "sets": sets,
             "benchmark_sets_train_cells_only": [s for s in BENCHMARK_SETS if s in sets]}
    with atomic_output_file(record, overwrite=True) as staging:
        staging.write_text(json.dumps(saved, indent=1))
    return saved


# ---------------------------------------------------------------------------------------------------- stages
def corpus_weights(cells: list[int]) -> list[float]:
    """Mixing weights ∝ sqrt(cells): large sets lead, small panels are still seen often."""
    return [round(float(np.sqrt(n)), 3) for n in cells]


def model_settings(overrides: list[str]) -> dict[str, Any]:
    """``MODEL`` with ``KEY=VALUE`` overrides (``--model hidden_size=128``): values read as JSON (numbers,
    true/false), else kept as text. A key that stage 1 does not take (run_stage's model arguments) is refused
    here, before hours of training."""
    import dataclasses

    from training.run_stage import ModelArguments

    settings = dict(MODEL)
    # the settings of a fresh model; the paths, the tokenizer and the RNA transform are pretrain's own choices
    known = {f.name for f in dataclasses.fields(ModelArguments)} - {
        "model_name_or_path", "tokenizer_name_or_path", "vocab_dir", "hgnc", "rna_transform"}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--model {item!r}: give KEY=VALUE, e.g. --model hidden_size=128")
        if key not in known:
            raise SystemExit(f"--model {item!r}: {key!r} is not a model setting; these are: {', '.join(sorted(known))}")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def stage_argv(stage: str, corpora: list[str], weights: list[float], out: Path, args, start: Path | None) -> list[str]:
    argv = ["--stage", stage, "--corpora", *corpora, "--corpus_weights", *map(str, weights),
            "--output_dir", str(out), "--num_shards", "2", "--eval_fraction", str(args.eval_fraction),
            "--split_seed", "0", "--max_eval_samples", str(args.max_eval_samples), "--truncation", "random",
            "--protein_sampling", "true", "--per_device_train_batch_size", str(args.batch_size),
            "--learning_rate", str(args.learning_rate), "--lr_scheduler_type", args.lr_scheduler_type,
            "--warmup_steps", str(args.warmup_steps), "--eval_strategy", "steps",
            "--eval_steps", str(args.eval_steps), "--save_steps", str(args.eval_steps), "--save_total_limit", "2",
            "--logging_steps", "50", "--report_to", "none", "--disable_tqdm", "true",
            "--seed", str(args.seed), "--dataloader_num_workers", str(args.dataloader_num_workers)]
    if args.use_cpu or not _cuda_available():  # else the Trainer's own choice: an Apple GPU, where bf16 is refused
        argv += ["--use_cpu", "true"]
    if args.bf16:  # matrix products in bfloat16 (autocast), weights float32: fast only where the CPU has AVX512-BF16
        argv += ["--bf16", "true"]
    if start is None:
        argv += ["--vocab_dir", str(args.vocab_dir), "--rna_transform", "log1p_cp10k"]
        for key, value in model_settings(args.model).items():
            if stage == "bulk" and key == "predict_protein_scale":  # stage 2 adds the part, where counts teach it
                continue
            argv += [f"--{key}", str(value)]
    else:
        argv += ["--model_name_or_path", str(start)]
    if stage == "bulk":
        argv += ["--max_steps", str(args.bulk_steps), "--stop_on_cosine", "false"]
    else:  # the protein scale part learns from the count panels; it does not change the rest's training
        argv += ["--max_steps", str(args.sc_steps), "--stop_on_cosine", "true", "--cosine_threshold", "0.85",
                 "--cosine_min_steps", str(args.cosine_min_steps), "--predict_protein_scale", "true"]
        if args.gene_panel_probability:  # only then: stage folders finished without it still match their argv
            argv += ["--gene_panel_probability", str(args.gene_panel_probability)]
    return argv


def second_cycle_args(args: argparse.Namespace) -> argparse.Namespace:
    """Stage 2's settings for its second cycle: its own length and peak learning rate, another data order (seed + 1;
    the held-out cells do not depend on it)."""
    return argparse.Namespace(**{**vars(args), "sc_steps": args.sc_cycle2_steps,
                                 "cosine_min_steps": args.sc_cycle2_steps,
                                 "learning_rate": args.sc_cycle2_learning_rate, "seed": args.seed + 1})


# where and how a stage runs, not what it trains: a stage finished on a GPU, or with a background reader, is reused
# by a launch on the CPU (and by folders of runs that forced the CPU: --use_cpu true was always there then)
EXECUTION_OPTIONS = ("--use_cpu", "--dataloader_num_workers")


def same_training(saved: list[str], argv: list[str]) -> bool:
    """Whether two stage argument lists train the same model (equal apart from ``EXECUTION_OPTIONS``)."""
    def training_part(arguments: list[str]) -> list[str]:
        kept, i = [], 0
        while i < len(arguments):
            if arguments[i] in EXECUTION_OPTIONS:
                i += 2
                continue
            kept.append(arguments[i])
            i += 1
        return kept

    return training_part(saved) == training_part(argv)


PATH_ARGUMENTS = ("out", "data_dir", "vocab_dir", "stage2_from", "ship")


def summary_args(args: argparse.Namespace) -> dict[str, str]:
    """The run's arguments as its summary records them: published with ``--ship`` (and quoted by the card), so a path
    is given relative to ``--out`` where it is inside it, else by its last part, never as the user's folders."""
    from training.run_stage import portable_path

    out = Path(args.out)
    return {key: (out.resolve().name if key == "out" else portable_path(value, out))
            if key in PATH_ARGUMENTS and value is not None else str(value) for key, value in vars(args).items()}


def run(argv: list[str]) -> tuple[dict[str, Any], float | None]:
    """One stage through run_stage (resumes from its own checkpoints); (summary, seconds). Seconds is None for
    a stage that had finished before this launch without its timing file: it was not timed."""
    from training.run_stage import main as run_stage

    out = Path(argv[argv.index("--output_dir") + 1])
    done = out / "training_summary.json"
    timing = out / "pretrain_seconds.json"
    saved_argv = out / "pretrain_argv.json"
    finished_before = done.is_file() and (out / "model.safetensors").is_file()
    if finished_before and timing.is_file():
        if saved_argv.is_file() and same_training(json.loads(saved_argv.read_text()), argv):
            logger.info("%s is complete with the same arguments: reusing it", out)
            return json.loads(done.read_text()), float(json.loads(timing.read_text()))
        raise SystemExit(f"{out} holds a finished stage trained with other arguments; give another --out or "
                         "remove it")
    started = time.perf_counter()
    summary = run_stage(argv)
    seconds = None if finished_before else time.perf_counter() - started
    if seconds is not None:
        timing.write_text(json.dumps(seconds))
    saved_argv.write_text(json.dumps(argv))
    return summary, seconds


def trained_tokens(sets: dict[str, Any], tokenizer, left_out: dict[str, list[str]] | None = None
                   ) -> dict[str, list[int]]:
    """Token ids the model trained on: genes expressed (non-zero) in some training cell, proteins measured
    (not NaN) in some cell, over every prepared set; ``left_out``: the protein columns of a set training read as
    unmeasured (antibodies at background, as a stage's ``run_signature.json`` records them)."""
    genes: set[int] = set()
    proteins: set[int] = set()
    for name, info in sets.items():
        rna_path, prot_path = info["files"]
        rna = ad.read_h5ad(rna_path)
        prot = ad.read_h5ad(prot_path)
        expressed = np.asarray((sp.csr_matrix(rna.X) != 0).sum(axis=0)).ravel() > 0
        report = tokenizer.resolve([str(g) for g in rna.var_names], kind="gene")
        ids = np.asarray(report.token_ids)
        genes.update(int(ids[c]) for c in report.columns if expressed[c])
        is_control = prot.var["is_control"].astype(bool).tolist() if "is_control" in prot.var else None
        preport = tokenizer.resolve([str(p) for p in prot.var_names], kind="protein", is_control=is_control)
        measured = ~np.isnan(_dense_rows(prot.X)).all(axis=0)
        measured &= ~np.isin(np.asarray(prot.var_names, dtype=str), list((left_out or {}).get(name, [])))
        pids = np.asarray(preport.token_ids)
        proteins.update(int(pids[c]) for c in preport.columns if measured[c])
    return {"genes": sorted(genes), "proteins": sorted(proteins)}


def stage_left_out(stage_dir: Path) -> dict[str, list[str]]:
    """The protein columns a stage read as unmeasured, per corpus (its ``run_signature.json``; none recorded by
    runs from before antibodies at background were left out)."""
    record = Path(stage_dir) / "run_signature.json"
    return json.loads(record.read_text()).get("proteins_left_at_background", {}) if record.is_file() else {}


def names_resolving_differently(old: Any, new: Any) -> int:
    """Names (symbols, aliases, mouse and Ensembl ids) that two GeneVocabs send to different genes, or
    that only one of them knows."""
    changed = 0
    for table in ("symbol_to_entrez", "mouse_symbol_to_human", "mouse_ensembl_to_human", "ensembl_to_entrez"):
        a, b = getattr(old, table), getattr(new, table)
        changed += sum(a.get(name) != b.get(name) for name in a.keys() | b.keys())
    return changed


def check_same_token_ids(trained_with: Any, current: Any, model_vocab_size: int) -> None:
    """Refuse to ship a vocabulary whose token ids differ from those the model trained with: its embedding rows
    would then meet other genes' names."""
    problems = []
    if trained_with.entrez_to_token != current.entrez_to_token:
        problems.append("the Entrez id -> token id tables differ")
    if {trained_with.vocab_size, current.vocab_size} != {model_vocab_size}:
        problems.append(f"vocabulary sizes {trained_with.vocab_size} (trained) and {current.vocab_size} (current) "
                        f"vs the model's {model_vocab_size}")
    if trained_with.added:
        problems.append(f"{len(trained_with.added)} genes were added to the training vocabulary")
    if problems:
        raise SystemExit("the current gene tables do not keep the token ids the model trained with ("
                         + "; ".join(problems) + "): pass the --vocab_dir the run used")


def ship(source: Path, target: Path, cells: dict[str, Any], summary: dict[str, Any],
         vocab_dir: Path) -> None:
    """The stage-2 model folder ``source`` as the package's default folder, written atomically to ``target``.

    Embedding rows of ids never trained on are set to zero (random vectors would feed noise into the
    encoder for genes the model never saw); the two id embedding tables are stored in float16 (half the
    size; the model loads as float32); ``trained_tokens.json`` lists the trained ids; the card
    describes data, procedure, held-out metrics and limitations. ``cells["sets"]`` holds the sets the model
    trained on (not every prepared one: without stage 1 the bulk sets trained nothing)."""
    import torch
    from safetensors.torch import load_file, save_file

    from model_cards import card_data, render_card
    from modeling_sctranslator import SCTranslatorForProteinPrediction
    from modeling_sctranslator.gene_layout import GeneLayout
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    model = SCTranslatorForProteinPrediction.from_pretrained(source).eval()
    trained_with = SCTranslatorTokenizer.from_pretrained(source)
    trained_with.truncation = "first"  # inference: the highest-valued genes beyond max_genes, deterministic
    # The ids it trained on, read with the vocabulary it trained with: a name that resolves elsewhere today
    # must not zero a trained row or keep an untrained one.
    left_out = stage_left_out(source)
    # per set, each file read once: the union is what it trained on, the single-cell sets' proteins its context
    per_set = {name: trained_tokens({name: info}, trained_with, left_out) for name, info in cells["sets"].items()}
    tokens = {kind: sorted({t for found in per_set.values() for t in found[kind]}) for kind in ("genes", "proteins")}
    # Shipped with the vocabulary `make pretrain` builds today, so the folder names genes as the package does
    # even when the run started before a change to the name tables; only the names may differ, never the ids.
    current = SCTranslatorTokenizer.from_original_tables(vocab_dir).vocab
    check_same_token_ids(trained_with.vocab, current, model.config.vocab_size)
    changed = names_resolving_differently(trained_with.vocab, current)
    if changed:
        logger.warning("%s was trained with an older gene vocabulary: %d names resolve differently now; shipping "
                       "the current one (the model reads only the %d genes it trained on)", source, changed,
                       len(tokens["genes"]))
    tokenizer = SCTranslatorTokenizer.from_pretrained(source, vocab=current)
    tokenizer.truncation = trained_with.truncation
    model.gene_layout = GeneLayout("set", tokens["genes"], "the genes expressed in some pre-training cell")
    # the proteins its single-cell panels measured: small requests are asked inside them (predict_proteins)
    single_cell = [name for name, info in cells["sets"].items() if info.get("kind") == "single_cell"]
    model.config.protein_context = sorted({t for name in single_cell for t in per_set[name]["proteins"]}) or None
    with torch.no_grad():
        for stack, kind in ((model.encoder, "genes"), (model.decoder, "proteins")):
            keep = torch.zeros(model.config.vocab_size, dtype=torch.bool)
            keep[torch.as_tensor(tokens[kind], dtype=torch.long)] = True
            stack.gene_embedding.weight[~keep] = 0.0
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output_dir(target, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        weights = load_file(tmp / "model.safetensors")
        for key in weights:
            if key.endswith("gene_embedding.weight"):
                weights[key] = weights[key].to(torch.float16)
        save_file(weights, tmp / "model.safetensors", metadata={"format": "pt"})
        config = json.loads((tmp / "config.json").read_text())
        config["dtype"] = "float32"  # compute dtype: the float16 tables are cast up on loading
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / "trained_tokens.json").write_text(json.dumps(tokens))
        (tmp / "pretrain_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        _render_card(tmp, target.name, model, tokens, cells, summary, card_data, render_card)
        for f in tmp.iterdir():  # safetensors writes 0600
            usual_mode(f, is_dir=False)


def wall_time_text(summary: dict[str, Any]) -> str:
    """The card's wall-time sentence. A stage resumed from a checkpoint timed only its last sitting: its time is
    given as that sitting's pace and the whole stage at that pace, not summed into a total that would look like
    the stage's cost."""
    from training.trainer import checkpoint_step

    seconds, parts, whole_run_timed = summary["seconds"], [], True
    for key, label in (("stage1", "stage 1"), ("stage2", "stage 2"), ("stage2_cycle2", "stage 2's second cycle")):
        part = summary.get(key) or {}
        if not part:
            continue
        spent, steps = seconds.get(key), int(part.get("global_step") or 0)
        resumed_from = str(part.get("resumed_from") or "").rstrip("/\\")
        start = checkpoint_step(resumed_from) if resumed_from else None
        if spent is None:
            whole_run_timed = False
            parts.append(f"{label} not timed (it had finished before the launch that shipped it)")
        elif resumed_from and start is not None and steps > start:
            whole_run_timed = False
            pace = spent / (steps - start)
            parts.append(f"{label} resumed from its checkpoint at step {start:,}: its last sitting trained "
                         f"{steps - start:,} steps in {spent / 60:.0f} min ({pace:.2f} s per step with the "
                         f"evaluations, so about {pace * steps / 60:.0f} min for its {steps:,} steps at that pace)")
        elif resumed_from:
            whole_run_timed = False
            parts.append(f"{label} resumed from {resumed_from}: its last sitting took {spent / 60:.0f} min, "
                         "the stage more")
        else:
            parts.append(f"{label} {spent / 60:.0f} min")
    if whole_run_timed and seconds.get("total") is not None:
        return f"Wall time {seconds['total'] / 60:.0f} min on 2 CPU cores (`make pretrain`: " + ", ".join(parts) + ")"
    return "Wall time on 2 CPU cores (`make pretrain`; a stage resumed from a checkpoint timed only its last " \
           "sitting, run_stage skipping the examples it had already seen): " + "; ".join(parts)


def _render_card(folder: Path, name: str, model, tokens, cells, summary, card_data, render_card) -> None:
    from modeling_sctranslator.default_model import DEFAULT_MODEL_NAME

    sets = []
    for set_name, info in cells["sets"].items():
        notes = []
        if info.get("benchmark_test_cells_left_out"):
            notes.append(f"{info['benchmark_test_cells_left_out']} benchmark test cells left out")
        if info.get("cells_failing_qc"):
            notes.append(f"{info['cells_failing_qc']} cells failing QC left out")
        if info.get("protein_values_missing"):
            notes.append(f"{info['protein_values_missing']:.0%} protein values missing (not in the loss)")
        if info.get("rna_values"):
            notes.append(f"RNA: {info['rna_values']}")
        sets.append({"name": set_name, **info, "notes": "; ".join(notes)})
    stage2_eval = final_stage(summary).get("eval") or {}
    rows = []
    for set_name in cells["sets"]:
        prefix = f"eval_{set_name}_"
        if prefix + "pearson_per_protein_mean" in stage2_eval:
            rows.append({"set": set_name, **{k: f"{stage2_eval[prefix + k]:.3f}" for k in (
                "pearson_per_protein_mean", "pearson_per_cell_mean", "cosine_similarity", "mse")}})
    s1, s2 = summary.get("stage1") or {}, summary.get("stage2") or {}
    args = summary.get("stage2_from_args") or summary["args"]  # the settings stages 1 and 2 ran with
    procedure = (
        f"Stage 1 (bulk RNA → proteome): {s1.get('global_step', 0)} steps from scratch on the bulk sets; "
        f"stage 2 (single cell): {s2.get('global_step')} steps from stage 1 on the single-cell sets, with the "
        f"paper's stopping rule (held-out cosine ≥ 0.85 on every set) checked from step {args['cosine_min_steps']}"
        + (f" on: it ended training at step {s2['stopped_on_cosine_at']}"
           if s2.get("stopped_on_cosine_at") and int(s2["stopped_on_cosine_at"]) < int(args["sc_steps"]) else
           " on: it held at the last evaluation (on these data it holds from about step 500, while held-out "
           "Pearson keeps rising)" if s2.get("stopped_on_cosine_at") else " on: not met")
        + ("; the protein scale part (outputs in log1p counts) trained alongside in stage 2 on the count "
           "panels, its gradients kept out of the rest of the model" if model.config.predict_protein_scale else "")
        + f". Batches of {args['batch_size']} examples, sets mixed with weights ∝ √(cells), Adam (amsgrad), "
        f"learning rate {args['learning_rate']} ({args.get('lr_scheduler_type', 'constant')} schedule, "
        f"{args.get('warmup_steps', 0)} warm-up steps, per stage), seed {args['seed']}; masked MSE on per-cell max-min "
        "scaled protein values (NaN = not measured, left out); a random 2,048 of a cell's expressed genes when "
        "it has more; mass-spec panels (8,000-11,000 proteins) sampled to "
        f"{model.config.max_proteins} measured proteins per example"
        + (BF16_TEXT if args.get("bf16") == "True" else "")
        + f".{_cycle2_text(summary)} {wall_time_text(summary)}."
    )
    core = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("gene_embedding.weight"))
    data = card_data(tags=["pretrained", "order-invariant"], datasets=list(cells["sets"]), model_name=name)
    card = render_card(
        "sctranslator_base.md", data, model_name=name, config=model.config,
        n_parameters=f"{sum(p.numel() for p in model.parameters()):,}", n_parameters_core=f"{core:,}",
        n_genes_trained=f"{len(tokens['genes']):,}", n_proteins_trained=f"{len(tokens['proteins']):,}",
        sets=sets, cells_single_cell=f"{summary['cells_single_cell']:,}", samples_bulk=summary["samples_bulk"],
        n_single_cell=sum(s["kind"] == "single_cell" for s in sets), n_bulk=sum(s["kind"] == "bulk" for s in sets),
        procedure=procedure, eval_rows=rows, eval_fraction_pct=round(100 * float(args["eval_fraction"])),
        max_eval_samples=args.get("max_eval_samples"), repo_or_path=name, bulk_r_after_stage1=_stage1_bulk_r(s1),
        # the package's default is loaded with no model named: transformers looks a name up on the Hub first
        package_default=name == DEFAULT_MODEL_NAME,
    )
    card.save(folder / "README.md")


BF16_TEXT = ", with bfloat16 matrix products (weights in float32)"  # the card's words for --bf16


def _cycle2_text(summary: dict[str, Any]) -> str:
    """The card's sentence on stage 2's second cycle ("" without one)."""
    cycle2, args = summary.get("stage2_cycle2"), summary["args"]
    if not cycle2:
        return ""
    first = summary.get("stage2_from_args") or args
    # said where the second cycle's precision differs from the stages before it (those sentences say theirs)
    precision = "" if (args.get("bf16") == "True") == (first.get("bf16") == "True") else (
        BF16_TEXT if args.get("bf16") == "True" else ", in float32")
    started = (f" It started from `{summary['stage2_from']}`, a finished first cycle trained earlier."
               if summary.get("stage2_from") else "")
    return (f" Then stage 2's second cycle: {int(cycle2.get('global_step') or 0):,} more steps on the same sets and "
            f"held-out cells from the end of the first, a fresh cosine schedule peaking at "
            f"{args['sc_cycle2_learning_rate']} ({args.get('warmup_steps', 0)} warm-up steps), seed "
            f"{int(args['seed']) + 1}{precision}.{started}")


def _stage1_bulk_r(stage1: dict[str, Any]) -> str:
    """Held-out mean per-protein r of TCGA breast RPPA after stage 1, as the card quotes it."""
    value = (stage1.get("eval") or {}).get("eval_tcga_brca_bulk_pearson_per_protein_mean")
    return "(not measured: no stage 1)" if value is None else f"{value:.2f}"


def final_stage(summary: dict[str, Any]) -> dict[str, Any]:
    """The record of the stage that made the model: stage 2's second cycle when there was one."""
    return summary.get("stage2_cycle2") or summary.get("stage2") or {}


def compare_with_shipped(summary: dict[str, Any]) -> str:
    """Held-out metrics of this run next to those the shipped default model recorded (same cells: the
    splits are drawn with seed 0 from the same prepared sets)."""
    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR

    shipped_file = DEFAULT_MODEL_DIR / "pretrain_summary.json"
    if not shipped_file.is_file():
        return f"no shipped summary at {shipped_file} to compare with"
    shipped = final_stage(json.loads(shipped_file.read_text())).get("eval") or {}
    ours = final_stage(summary).get("eval") or {}
    lines = ["held-out mean per-protein Pearson at the end of stage 2 (this run | shipped model):"]
    for key in sorted(ours):
        if key.endswith("_pearson_per_protein_mean") and key in shipped:
            name = key.removeprefix("eval_").removesuffix("_pearson_per_protein_mean")
            lines.append(f"  {name:24s} {ours[key]:.3f} | {shipped[key]:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="outputs/pretrain", help="working folder: data, corpora, every stage")
    p.add_argument("--data_dir", type=Path, default=DATA_DIR)
    p.add_argument("--vocab_dir", type=Path, default=VOCAB_DIR)
    p.add_argument("--exclude", nargs="*", default=[], choices=SC_SETS + BULK_SETS,
                   help="sets left out entirely (leave-one-dataset-out runs)")
    p.add_argument("--bulk_steps", type=int, default=1000, help="stage-1 steps (0: no stage 1)")
    p.add_argument("--sc_steps", type=int, default=16000, help="at most this many stage-2 steps")
    p.add_argument("--cosine_min_steps", type=int,
                   help="stage 2 stops at the paper's rule (held-out cosine >= 0.85 on every set) from this step on "
                        "(default: --sc_steps). Measured: on per-cell scaled profiles the rule holds by step 500 "
                        "while held-out Pearson keeps rising for thousands of steps")
    p.add_argument("--sc_cycle2_steps", type=int, default=0,
                   help="steps of stage 2's second cycle, from the first cycle's end (0: none; measured at 8,000 "
                        "from the shipped model: no better on the benchmark's test cells)")
    p.add_argument("--sc_cycle2_learning_rate", type=float, default=3e-4, help="peak learning rate of the second cycle")
    p.add_argument("--stage2_from", type=Path,
                   help="a finished stage-2 model folder (e.g. the shipped model) to start the second cycle from, "
                        "instead of training stages 1 and 2; it must hold the pretrain_summary.json that --ship "
                        "writes, kept as the record of those stages")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--lr_scheduler_type", default="cosine", help="per stage (the paper: constant)")
    p.add_argument("--warmup_steps", type=int, default=200, help="per stage")
    p.add_argument("--eval_steps", type=int, default=500)
    p.add_argument("--eval_fraction", type=float, default=0.1, help="held-out fraction of each training source")
    p.add_argument("--max_eval_samples", type=int, default=200, help="held-out cells evaluated per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model settings other than the shipped model's (MODEL), e.g. --model hidden_size=128 "
                        "num_encoder_layers=4")
    p.add_argument("--gene_panel_probability", type=float, default=0.0,
                   help="stage 2: chance that a batch's cells of a set are read through only the set's top 500-4,000 "
                        "highly variable genes, as files subset to such genes reach the model (run_stage's option)")
    p.add_argument("--bf16", action="store_true",
                   help="train with bfloat16 matrix products (weights float32); faster only on CPUs that multiply "
                        "bfloat16 in hardware (AVX512-BF16, AMX) and on GPUs")
    p.add_argument("--use_cpu", action="store_true",
                   help="train on the CPU even where an NVIDIA GPU is there (default: that GPU when there is one)")
    p.add_argument("--dataloader_num_workers", type=int, default=0, choices=(0, 1),
                   help="1: read and tokenize the training cells in a background process, beside the model's "
                        "steps (worth it on a GPU, where tokenizing in the training process leaves it waiting). The "
                        "same stream of cells, mixed into batches differently: not step for step the run with 0, so "
                        "resume a run with the value it started with")
    p.add_argument("--prepare_only", action="store_true", help="write the training sources and stop")
    p.add_argument("--ship", type=Path, help="copy the last stage-2 model folder here (the package's default model)")
    args = p.parse_args(argv)
    model_settings(args.model)  # a misspelt --model setting stops here, before the data are prepared
    if not 0.0 <= args.gene_panel_probability <= 1.0:
        p.error(f"--gene_panel_probability must be between 0 and 1, got {args.gene_panel_probability}")
    if args.cosine_min_steps is None:
        args.cosine_min_steps = args.sc_steps
    previous: dict[str, Any] = {}  # with --stage2_from: the record of the stages that made the starting model
    if args.stage2_from is not None:
        if args.sc_cycle2_steps <= 0:
            raise SystemExit("--stage2_from starts the second cycle: give --sc_cycle2_steps > 0")
        if not (args.stage2_from / "config.json").is_file():
            raise SystemExit(f"--stage2_from {args.stage2_from}: no model folder there (config.json is missing)")
        record = args.stage2_from / "pretrain_summary.json"  # what the card says of stages 1 and 2
        if not record.is_file():
            raise SystemExit(f"--stage2_from {args.stage2_from} has no pretrain_summary.json, the record of the stages "
                             "that made it: give a folder written by --ship (e.g. the shipped model)")
        previous = json.loads(record.read_text())
        if previous.get("stage2_cycle2"):
            raise SystemExit(f"--stage2_from {args.stage2_from} already ends with a second cycle of stage 2: start "
                             "from a first cycle")
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    out = Path(args.out)
    t0 = time.perf_counter()
    cells = prepare(args.data_dir, args.vocab_dir, out / "data", set(args.exclude))
    prepare_seconds = time.perf_counter() - t0
    if args.prepare_only:
        return cells
    sets = cells["sets"]
    bulk = [n for n in BULK_SETS if n in sets]
    single = [n for n in SC_SETS if n in sets]
    stage1, stage1_seconds = None, 0.0
    start = None
    corpora = [str(out / "data" / "sc" / n) for n in single]
    weights = corpus_weights([sets[n]["cells_used"] for n in single])
    if args.stage2_from is None:
        if args.bulk_steps > 0 and bulk:
            stage1, stage1_seconds = run(stage_argv(
                "bulk", [str(out / "data" / "bulk" / n) for n in bulk],
                corpus_weights([sets[n]["cells_used"] for n in bulk]), out / "stage1_bulk", args, None))
            start = out / "stage1_bulk"
        stage2, stage2_seconds = run(stage_argv("sc", corpora, weights, out / "stage2_sc", args, start))
        stage2_folder = out / "stage2_sc"
    else:
        stage1, stage2 = previous.get("stage1"), previous["stage2"]
        stage1_seconds, stage2_seconds = (previous["seconds"].get(key) for key in ("stage1", "stage2"))
        stage2_folder = args.stage2_from
    cycle2, cycle2_seconds = None, 0.0
    if args.sc_cycle2_steps > 0:
        cycle2, cycle2_seconds = run(stage_argv("sc", corpora, weights, out / "stage2_cycle2",
                                                second_cycle_args(args), stage2_folder))
        stage2_folder = out / "stage2_cycle2"
    # What the shipped folder may call trained: the bulk sets only when stage 1 ran (here or in the run that made
    # --stage2_from). Prepared is not trained: a run without stage 1 never updates the bulk-only genes' and
    # proteins' embeddings, so they must be zeroed and reported untrained like any other unseen id.
    trained_sets = single + (bulk if stage1 else [])
    seconds = {"prepare": prepare_seconds, "stage1": stage1_seconds, "stage2": stage2_seconds,
               "stage2_cycle2": cycle2_seconds}
    recorded_args = summary_args(args)  # paths as the published summary may name them
    summary = {
        "corpus": {n: {k: v for k, v in sets[n].items() if k != "files"} for n in sets},
        "cells_single_cell": sum(sets[n]["cells_used"] for n in single),
        "samples_bulk": sum(sets[n]["cells_used"] for n in bulk if n in trained_sets),
        "trained_sets": trained_sets,
        "model": previous.get("model") or model_settings(args.model),
        "args": recorded_args,
        "seconds": {**seconds, "total": None if None in seconds.values() else sum(seconds.values())},
        "stage1": stage1 and {k: stage1.get(k) for k in ("global_step", "train_loss", "eval", "resumed_from")},
        "stage2": {k: stage2.get(k) for k in ("global_step", "train_loss", "eval", "stopped_on_cosine_at",
                                              "scale_loss_history", "resumed_from")},
        "stage2_from": recorded_args["stage2_from"] if args.stage2_from else None,
        "stage2_from_args": previous.get("args"),
        "stage2_cycle2": cycle2 and {k: cycle2.get(k) for k in ("global_step", "train_loss", "eval",
                                                                "scale_loss_history", "resumed_from")},
    }
    (out / "pretrain_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    if args.ship:
        ship(stage2_folder, args.ship, {**cells, "sets": {n: sets[n] for n in trained_sets}}, summary,
             args.vocab_dir)
        logger.info("shipped %s to %s", stage2_folder, args.ship)
    total = summary["seconds"]["total"]
    logger.info("pre-training done (%s): %s", "not timed whole" if total is None else f"{total:.0f} s",
                out / "pretrain_summary.json")
    print(compare_with_shipped(summary))
    return summary


if __name__ == "__main__":
    main()
