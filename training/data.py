"""Streaming corpora into the Trainer: per-rank shard streams, weighted mixing, and a tokenizing collator.

Training stream (one per process)::

    corpus shards --from_generator--> datasets.IterableDataset   (one per corpus, n_shards = its train shards)
      --split_dataset_by_node(rank, world_size)-->               (whole shards per rank: n_shards % world == 0)
      --interleave_datasets(probabilities=weights, seed)-->      (several corpora mixed)
      --skip(examples already trained, on resume)-->
      DataLoader(batch_size) + CorpusCollator (the tokenizer: scaling, random gene subsets, padding)

The stream is infinite: each corpus repeats in *passes*; pass ``p`` visits its shards (and the rows of
each row group) in an order drawn from ``(seed, corpus, p)``, so a given seed always gives the same
sequence and a resumed run can skip exactly the examples it already trained on (raw rows are
skipped before tokenization, which is cheap). Within a pass every held-in cell of a rank's shards is
seen exactly once. ``max_steps`` ends training (the Trainer requires it with iterable data).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp
import torch

from tokenization.value_kinds import PROTEIN_TRANSFORMS, protein_transform_for

from .baselines import rna_on_log_scale, seurat_hvg
from .corpus import CorpusError

__all__ = [
    "CorpusCollator",
    "EvalCells",
    "LengthBucketedStream",
    "bucketed_skip",
    "build_train_stream",
    "example_id",
    "split_example_id",
]

ID_SHIFT = 40  # example id = corpus index << 40 | source row


def example_id(corpus_index: int, row: int) -> int:
    return (int(corpus_index) << ID_SHIFT) | int(row)


def split_example_id(value: int) -> tuple[int, int]:
    return int(value) >> ID_SHIFT, int(value) & ((1 << ID_SHIFT) - 1)


def _features():
    from datasets import Features, List, Value

    return Features(
        {
            "example_id": Value("int64"),
            "corpus": Value("int32"),
            "pass": Value("int32"),
            "rna_indices": List(Value("int32")),
            "rna_values": List(Value("float32")),
            "protein_values": List(Value("float32")),
        }
    )


def _rows_of_shard(path: str, rng: np.random.Generator | None):
    """Rows of one Parquet shard, row group by row group (row groups and rows in ``rng`` order)."""
    pf = pq.ParquetFile(path)
    groups = rng.permutation(pf.num_row_groups) if rng is not None else range(pf.num_row_groups)
    for g in groups:
        table = pf.read_row_group(int(g), columns=["row", "rna_indices", "rna_values", "protein_values"])
        rows = table.column("row").to_numpy()
        indices = table.column("rna_indices").to_pylist()
        values = table.column("rna_values").to_pylist()
        proteins = table.column("protein_values").to_pylist()
        order = rng.permutation(len(rows)) if rng is not None else range(len(rows))
        for i in order:
            yield int(rows[i]), indices[i], values[i], proteins[i]


def _corpus_generator(groups: list[list[str]], corpus_index: int, seed: int, shuffle: bool, infinite: bool):
    """Examples of one corpus (this rank's group of shard files), pass after pass.

    ``datasets`` calls a generator once per data source and would never leave an infinite first
    source, so each process's whole set of shards is one source (``groups`` then holds one group).
    """
    files = [f for group in groups for f in group]
    passes = itertools.count() if infinite else range(1)
    for p in passes:
        rng = np.random.default_rng([seed, corpus_index, p]) if shuffle else None
        order = rng.permutation(len(files)) if rng is not None else range(len(files))
        for f in order:
            for row, indices, values, proteins in _rows_of_shard(files[f], rng):
                yield {
                    "example_id": example_id(corpus_index, row),
                    "corpus": corpus_index,
                    "pass": p,
                    "rna_indices": indices,
                    "rna_values": values,
                    "protein_values": proteins,
                }


def check_divisible(manifests: Sequence[dict[str, Any]], world_size: int) -> None:
    """Every corpus must give each process whole shards: its train shard count divisible by world_size."""
    bad = [
        f"{m['name']} ({len(m['splits']['train']['shards'])} shards)"
        for m in manifests
        if len(m["splits"]["train"]["shards"]) % world_size
    ]
    if bad:
        raise CorpusError(
            f"train shard counts must be divisible by the number of processes ({world_size}) so that every rank "
            f"reads its own whole shards; not so for: {', '.join(bad)}. Rebuild with --num_shards a multiple of "
            f"{world_size} (e.g. {world_size * 4})."
        )


def build_train_stream(
    manifests: Sequence[dict[str, Any]],
    weights: Sequence[float] | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    skip_examples: int = 0,
    shuffle: bool = True,
    infinite: bool = True,
):
    """This process's training stream: a ``datasets.IterableDataset`` of raw (untokenized) examples."""
    from datasets import IterableDataset, interleave_datasets
    from datasets.distributed import split_dataset_by_node

    if not manifests:
        raise CorpusError("no training corpus given")
    check_divisible(manifests, world_size)
    streams = []
    for i, m in enumerate(manifests):
        files = [f"{m['dir']}/{s['file']}" for s in m["splits"]["train"]["shards"]]
        # one data source per process: rank r gets shards r, r + world_size, ... (whole shards, disjoint)
        groups = [files[r::world_size] for r in range(world_size)]
        ds = IterableDataset.from_generator(
            _corpus_generator,
            features=_features(),
            gen_kwargs={"groups": groups, "corpus_index": i, "seed": seed, "shuffle": shuffle, "infinite": infinite},
        )
        if world_size > 1:
            ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)
        streams.append(ds)
    if len(streams) == 1:
        stream = streams[0]
    else:
        weights = list(weights) if weights else [1.0] * len(streams)
        if len(weights) != len(streams) or min(weights) < 0 or sum(weights) <= 0:
            raise CorpusError(f"corpus weights {weights} must be {len(streams)} non-negative numbers, not all zero")
        probabilities = [w / sum(weights) for w in weights]
        stream = interleave_datasets(
            streams, probabilities=probabilities, seed=seed, stopping_strategy="all_exhausted"
        )
    if skip_examples:
        stream = stream.skip(int(skip_examples))
    return stream


class LengthBucketedStream(torch.utils.data.IterableDataset):
    """Length bucketing for a raw example stream: consecutive batches hold cells of similar length.

    The stream is cut into windows of ``window`` examples (a multiple of ``batch_size``, counted from
    example ``first_index`` of the full stream); each window is sorted by the cells' number of
    non-zero genes, cut into batches of ``batch_size``, and its batches are shuffled with a seed made
    of ``(seed, window number)``. With ``pad_to_longest`` batches (the cross-attention variant) this
    avoids computing padding. Batches stay whole, so a DataLoader with the same ``batch_size`` sees
    exactly these batches.

    Resuming: build the inner stream skipping ``first_index`` examples (a multiple of ``window``)
    and pass the remaining ``skip`` here; see :func:`bucketed_skip`. The batches after the resume
    point are then those of an uninterrupted run.
    """

    def __init__(self, stream, window: int, batch_size: int, seed: int = 0, first_index: int = 0, skip: int = 0):
        super().__init__()
        if batch_size < 1 or window < batch_size or window % batch_size:
            raise ValueError(f"window ({window}) must be a positive multiple of batch_size ({batch_size})")
        if first_index % window:
            raise ValueError("first_index must be a multiple of window")
        self.stream, self.window, self.batch_size = stream, int(window), int(batch_size)
        self.seed, self.first_index, self.skip = int(seed), int(first_index), int(skip)

    def _reordered(self, examples: list[dict[str, Any]], number: int) -> list[dict[str, Any]]:
        order = sorted(range(len(examples)), key=lambda i: len(examples[i]["rna_indices"]))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = np.random.default_rng([self.seed, number])
        return [examples[i] for b in rng.permutation(len(batches)) for i in batches[b]]

    def __iter__(self):
        number = self.first_index // self.window
        to_drop = self.skip
        window: list[dict[str, Any]] = []
        for example in itertools.chain(self.stream, [None]):
            if example is not None:
                window.append(example)
                if len(window) < self.window:
                    continue
            if not window:
                break
            for out in self._reordered(window, number):
                if to_drop:
                    to_drop -= 1
                    continue
                yield out
            window, number = [], number + 1
            if example is None:
                break


def bucketed_skip(skip_examples: int, window: int) -> tuple[int, int]:
    """Split a resume skip into (examples the inner stream skips, examples LengthBucketedStream drops)."""
    aligned = skip_examples // window * window
    return aligned, skip_examples - aligned


class EvalCells(torch.utils.data.Dataset):
    """Held-out cells of one corpus, in memory (map-style, so the Trainer splits them across processes).

    ``split``: ``"eval"`` (the test cells) or ``"validation"`` (cells kept for model selection; empty
    when the corpus was built without ``validation_fraction``)."""

    def __init__(self, manifest: dict[str, Any], corpus_index: int, max_cells: int | None = None,
                 split: str = "eval") -> None:
        self.name = manifest["name"]
        self.examples: list[dict[str, Any]] = []
        for shard in manifest["splits"].get(split, {"shards": []})["shards"]:
            for row, indices, values, proteins in _rows_of_shard(f"{manifest['dir']}/{shard['file']}", None):
                self.examples.append(
                    {"example_id": example_id(corpus_index, row), "corpus": corpus_index, "pass": 0,
                     "rna_indices": indices, "rna_values": values, "protein_values": proteins, "augment": False}
                )
                if max_cells is not None and len(self.examples) >= max_cells:
                    return

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.examples[i]


def _rows_matrix(indices: Sequence[Sequence[int]], values: Sequence[Sequence[float]], n_genes: int) -> sp.csr_matrix:
    """Stored sparse RNA rows (column indices and values per cell) as one (cells x genes) float32 CSR matrix."""
    indptr = np.concatenate(([0], np.cumsum([len(i) for i in indices]))).astype(np.int64)
    return sp.csr_matrix((np.concatenate([np.asarray(v, dtype=np.float32) for v in values]),
                          np.concatenate([np.asarray(i, dtype=np.int32) for i in indices]), indptr),
                         shape=(len(indices), n_genes))


PANEL_SIZES = (500, 4000)  # highly variable genes of a training panel (gene_panel_probability), log-uniform
PANEL_RANKING_CELLS = 2000  # training cells (a seeded sample) a corpus's genes are ranked on
PANEL_STREAM = 7  # keeps the panel draws apart from the other draws of a batch seed
EVAL_PROTEINS_STREAM = 11  # the one draw of a sampled corpus's held-out proteins


def teaches_protein_scale(manifest: dict[str, Any], protein_transform: str = "auto") -> bool:
    """Whether a corpus's protein values teach the protein scale part, which predicts log1p counts: count panels
    read as log1p. RPPA and mass-spec values (no counts) leave it out of its loss."""
    kind = manifest.get("protein_values_kind", "")
    return kind == "counts" and protein_transform_for(protein_transform, kind) == "log1p"


class CorpusCollator:
    """Raw examples -> model inputs, with the tokenizer (the only place values are scaled).

    Cells of a batch are grouped by corpus; each group becomes a small CSR matrix over its corpus's gene
    list and goes through ``tokenizer(rna=..., gene_names=corpus genes, proteins=..., protein_values=...)``
    padded to the model's lengths. Protein controls (``var['is_control']``) are left out; the columns the corpus
    check found at background (``manifest["protein_at_background"]``, see ``training.corpus.proteins_at_background``)
    are read as unmeasured (NaN) unless ``train_background_proteins``. With
    ``truncation="random"`` the gene subset of each group is drawn from a seed made of
    ``(seed, corpus, pass, example ids)``, so a batch is encoded the same way however often it is
    built (resume, replays). ``labels`` are NaN at padded protein positions (the model's loss and the
    metrics ignore NaN). ``example_ids`` (int64) is kept for bookkeeping; the trainer drops it before
    the forward pass.

    ``protein_transform``: ``"log1p"`` applies ``log1p`` to protein values before the tokenizer's
    per-cell scaling, ``"none"`` leaves them; ``"auto"`` uses ``log1p`` for corpora of counts or linear
    values (``manifest["protein_values_kind"]``, see ``tokenization.value_kinds``) and nothing for log or
    signed ones (e.g. RPPA, mass-spec ratios), as ``sctranslator evaluate`` does.

    ``protein_sampling``: a corpus with more mapped proteins than ``max_proteins`` (mass-spec panels of
    8,000-11,000) gives each example its own random ``max_proteins`` of the proteins measured in that
    example (not NaN), drawn from the batch seed; labels are scaled over the sampled proteins. Without
    it such a corpus is an error (or cut to its first proteins with ``protein_truncation``). NaN values
    stay NaN in ``labels`` and are left out of the loss.

    RNA values: the tokenizer decides from the kind of values, as at inference: with
    ``rna_transform="log1p_cp10k"`` raw counts get log1p(CP10k), log values (bulk log2, arrays) are
    scaled as they are.

    ``encoder_inputs`` / ``expressed_zero_genes``: the model config's gene encoding, handed to the
    tokenizer (``"expressed"``: only each cell's non-zero genes). ``pad_to_longest`` (models that
    are not fixed-width, i.e. the cross-attention variant): a batch is padded to its longest cell
    and its largest protein panel instead of ``max_genes`` / ``max_proteins``; ``max_genes`` then
    only caps the genes kept per cell. Combine with :func:`bucket_by_length` to batch cells of
    similar length.

    ``cell_scale`` (models with the protein scale part): batches also hold ``cell_covariates`` and
    ``protein_scale_labels`` (see the tokenizer's ``return_cell_scale``); the labels are NaN, so left out of
    the scale loss, for corpora whose protein values are not counts (the part predicts log1p counts).

    ``gene_layout`` (fixed-width models that record one): every corpus is encoded in that gene order (genes it
    lacks as zeros, others left out), so fine-tuning teaches the positions the model already reads.

    ``gene_panel_probability`` (training only): the chance that a batch's cells of one corpus are read through
    only its most highly variable genes, as files subset to such genes reach a model: the corpus's top ``k``
    (Seurat's dispersion rule, as scanpy's default, on a seeded sample of :data:`PANEL_RANKING_CELLS` of its
    training cells; ``k`` log-uniform in :data:`PANEL_SIZES`, drawn from the batch seed). Nothing else changes, so
    the tokenizer's log1p(CP10k) and the cell covariates are those of the panel, as at inference on such a file.
    Cells read through :class:`EvalCells` (``"augment": False``: held-out cells, and the training cells the scale
    part's head is refitted on) always come with all their genes.
    """

    def __init__(
        self,
        tokenizer,
        manifests: Sequence[dict[str, Any]],
        max_genes: int,
        max_proteins: int,
        truncation: str = "random",
        seed: int = 0,
        protein_transform: str = "auto",
        protein_truncation: bool = False,
        encoder_inputs: str = "all_genes",
        expressed_zero_genes: int = 0,
        pad_to_longest: bool = False,
        protein_sampling: bool = False,
        cell_scale: bool = False,
        gene_layout: Sequence[int] | None = None,
        gene_panel_probability: float = 0.0,
        train_background_proteins: bool = False,
    ) -> None:
        if protein_transform not in PROTEIN_TRANSFORMS:
            raise ValueError(f"protein_transform must be auto, log1p or none, not {protein_transform!r}")
        self.tokenizer = tokenizer
        self.max_genes = int(max_genes)
        self.max_proteins = int(max_proteins)
        self.truncation = truncation
        self.seed = int(seed)
        self.protein_truncation = protein_truncation
        self.encoder_inputs = encoder_inputs
        self.expressed_zero_genes = int(expressed_zero_genes)
        self.pad_to_longest = bool(pad_to_longest)
        self.protein_sampling = bool(protein_sampling)
        self.cell_scale = bool(cell_scale)
        self.gene_layout = None if gene_layout is None else [int(t) for t in gene_layout]
        if not 0.0 <= gene_panel_probability <= 1.0:
            raise ValueError(f"gene_panel_probability must be between 0 and 1, got {gene_panel_probability}")
        if gene_panel_probability and gene_layout is not None:
            raise ValueError("gene_panel_probability needs a model that reads genes by identity (the cross-attention "
                             "variant); a model with a fixed gene layout reads positions")
        self.gene_panel_probability = float(gene_panel_probability)
        self.corpora = []
        for m in manifests:
            controls = m.get("protein_is_control") or [False] * len(m["proteins"])
            keep = np.flatnonzero(~np.asarray(controls, dtype=bool))
            # Background columns stay in the panel as unmeasured (NaN): out of the loss and the per-cell scaling,
            # but still holding their protein's token, so a later column the name tables send to the same protein
            # (eccite's B220 after its CD45) stays a duplicate instead of standing in for it.
            at_background = np.asarray(m.get("protein_at_background") or [False] * len(m["proteins"]), dtype=bool)
            unmeasured = np.flatnonzero(at_background[keep]) if not train_background_proteins else np.array([], int)
            transform = protein_transform_for(protein_transform, m.get("protein_values_kind", ""))
            self.corpora.append(
                {"genes": list(m["genes"]), "proteins": [m["proteins"][i] for i in keep], "keep": keep,
                 "unmeasured": unmeasured, "transform": transform, "name": m["name"], "manifest": m,
                 "log1p_counts": teaches_protein_scale(m, protein_transform)}
            )
        self.check()

    def check(self) -> None:
        """Fail before training when a corpus cannot be encoded for this model (e.g. too many proteins)."""
        for c in self.corpora:
            report = self.tokenizer.resolve(c["proteins"], kind="protein")
            if report.n_mapped == 0:
                raise CorpusError(f"corpus {c['name']}: no protein maps to a token with this tokenizer")
            measured = np.setdiff1d(report.columns, c["unmeasured"])
            if measured.size < 2:
                # each cell's proteins are scaled between its lowest and highest: one protein is a constant target
                # (NaN Pearson at every evaluation) and its log1p scale part learns from a degenerate range
                names = ", ".join(c["proteins"][i] for i in measured) or "none"
                raise CorpusError(
                    f"corpus {c['name']}: {measured.size} measured protein maps to a token ({names}); training scales "
                    "each cell's proteins between its lowest and highest, which needs at least 2. Give the whole "
                    "panel (a prediction can still ask for one protein)"
                )
            c["sampled"] = report.n_mapped > self.max_proteins and self.protein_sampling
            if report.n_mapped > self.max_proteins and not (self.protein_truncation or self.protein_sampling):
                raise CorpusError(
                    f"corpus {c['name']}: {report.n_mapped} mapped proteins exceed the model's max_proteins="
                    f"{self.max_proteins}; use --protein_sampling (a random max_proteins per example), a "
                    "larger max_proteins or --protein_truncation"
                )
            if c["sampled"]:  # the mapped, non-duplicate columns, to sample from per example
                c["mapped_columns"] = np.asarray(report.columns, dtype=np.int64)
            c["panel"] = [int(t) for t in report.kept_token_ids[: self.max_proteins]]  # as training asks it
            if self.tokenizer.resolve(c["genes"], kind="gene").n_mapped == 0:
                raise CorpusError(f"corpus {c['name']}: no gene maps to a token with this tokenizer")

    def protein_panels(self) -> list[list[int]]:
        """Each corpus's protein panel as training asks it: token ids in column order (controls, unmapped and
        duplicate columns left out; the first ``max_proteins`` where ``protein_truncation`` cuts). Corpora whose
        panel is sampled per example (larger than ``max_proteins``) have none."""
        return [c["panel"] for c in self.corpora if not c.get("sampled")]

    def _encode_group(self, corpus: int, examples: list[dict[str, Any]]):
        c = self.corpora[corpus]
        rna = _rows_matrix([e["rna_indices"] for e in examples], [e["rna_values"] for e in examples], len(c["genes"]))
        proteins = np.asarray([e["protein_values"] for e in examples], dtype=np.float64)[:, c["keep"]]
        proteins[:, c["unmeasured"]] = np.nan
        if c["transform"] == "log1p":
            with np.errstate(invalid="ignore"):
                proteins = np.log1p(proteins)
        seed_words = [self.seed, corpus] + [int(e["pass"]) for e in examples[:1]]
        seed_words += [int(e["example_id"]) & 0xFFFFFFFF for e in examples]
        seed = int(np.random.SeedSequence(seed_words).generate_state(1)[0])
        if self.gene_panel_probability and examples[0].get("augment", True):
            rna = self._gene_panel(c, rna, seed)
        encoding = {}
        if self.encoder_inputs != "all_genes":  # only then: tokenizers saved before the variant lack the keys
            encoding = {"encoder_inputs": self.encoder_inputs, "expressed_zero_genes": self.expressed_zero_genes}
        if c.get("sampled") and not examples[0].get("augment", True):  # held-out cells: one protein set
            chosen = self._held_out_proteins(corpus)
            encoded = self._tokenize(c, rna, [c["proteins"][j] for j in chosen], proteins[:, chosen], seed, encoding)
        elif c.get("sampled"):
            encoded = self._encode_sampled(c, rna, proteins, seed, encoding)
        else:
            encoded = self._tokenize(c, rna, c["proteins"], proteins, seed, encoding)
        if self.cell_scale and not c["log1p_counts"]:
            encoded["protein_scale_labels"][:] = np.nan  # the scale part learns log1p counts only
        return encoded

    def _gene_panel(self, c: dict[str, Any], rna: sp.csr_matrix, seed: int) -> sp.csr_matrix:
        """With probability ``gene_panel_probability``, ``rna`` with only the corpus's ``k`` most highly variable
        genes (the other columns zero, so the tokenizer's library sizes are the panel's)."""
        rng = np.random.default_rng([seed, PANEL_STREAM])
        if rng.random() >= self.gene_panel_probability:
            return rna
        if "panel_ranking" not in c:
            c["panel_ranking"] = self._variable_genes(c)
        size = int(round(np.exp(rng.uniform(np.log(PANEL_SIZES[0]), np.log(PANEL_SIZES[1])))))
        keep = np.zeros(rna.shape[1], dtype=bool)
        keep[c["panel_ranking"][:size]] = True
        panel = rna.copy()
        panel.data[~keep[panel.indices]] = 0
        panel.eliminate_zeros()
        return panel

    def _variable_genes(self, c: dict[str, Any]) -> np.ndarray:
        """The corpus's mapped genes, most highly variable first (Seurat's rule on its training cells' log values)."""
        manifest = c["manifest"]
        rows = [(indices, values) for shard in manifest["splits"]["train"]["shards"]
                for _, indices, values, _ in _rows_of_shard(f"{manifest['dir']}/{shard['file']}", None)]
        if len(rows) > PANEL_RANKING_CELLS:  # a seeded sample of the whole file: files are often sorted by sample
            chosen = np.random.default_rng(PANEL_STREAM).choice(len(rows), PANEL_RANKING_CELLS, replace=False)
            rows = [rows[i] for i in np.sort(chosen)]
        counts = _rows_matrix([i for i, _ in rows], [v for _, v in rows], len(c["genes"]))
        mapped = np.zeros(len(c["genes"]), dtype=bool)
        mapped[self.tokenizer.resolve(c["genes"], kind="gene").columns] = True
        log_values = rna_on_log_scale(counts, manifest.get("rna_values_kind") or None)
        return seurat_hvg(log_values, PANEL_SIZES[1], candidates=mapped)

    def _held_out_proteins(self, corpus: int) -> np.ndarray:
        """The ``max_proteins`` columns every held-out cell of a sampled corpus is asked, drawn once (seeded): metrics
        per protein compare the same protein across cells (with a draw per cell, "per protein" mixed proteins: a
        CPTAC fine-tune reported r 0.045 where its predictions scored 0.21) and steps are compared on one set."""
        c = self.corpora[corpus]
        if "held_out_columns" not in c:
            rng = np.random.default_rng([self.seed, corpus, EVAL_PROTEINS_STREAM])
            columns = c["mapped_columns"]
            c["held_out_columns"] = np.sort(rng.choice(columns, min(self.max_proteins, columns.size), replace=False))
        return c["held_out_columns"]

    def _encode_sampled(self, c: dict[str, Any], rna, proteins: np.ndarray, seed: int, encoding: dict):
        """Each example with its own random ``max_proteins`` of its measured proteins (large panels)."""
        rng = np.random.default_rng(seed)
        parts = []
        for i in range(rna.shape[0]):
            measured = c["mapped_columns"][~np.isnan(proteins[i, c["mapped_columns"]])]
            if measured.size == 0:  # nothing measured: keep the panel's first proteins, all NaN (no loss)
                measured = c["mapped_columns"]
            chosen = np.sort(rng.choice(measured, min(self.max_proteins, measured.size), replace=False))
            parts.append(self._tokenize(c, rna[i], [c["proteins"][j] for j in chosen], proteins[i:i + 1, chosen],
                                        seed + i, encoding))
        out = {}
        for key in parts[0]:
            width = max(p[key].shape[1] for p in parts)
            fill = np.nan if key == "labels" else 0
            block = np.full((len(parts), width), fill, dtype=parts[0][key].dtype)
            for i, p in enumerate(parts):
                block[i, : p[key].shape[1]] = p[key][0]
            out[key] = block
        return out

    def _rna_reading(self, c: dict[str, Any]) -> dict[str, Any]:
        """``{"rna_reading": ...}``: how the corpus's RNA values are read (their normalisation), told once from its
        first training cells as prediction tells it once per input: a batch, or one example of a sampled panel,
        alone may show another (a lone cell shows no common total). Empty for a tokenizer that takes none."""
        if "rna_reading" not in c:
            from modeling_sctranslator.inference import reading_options

            manifest = c["manifest"]
            indices, values = [], []
            for shard in manifest["splits"]["train"]["shards"]:
                batches = pq.ParquetFile(f"{manifest['dir']}/{shard['file']}").iter_batches(
                    batch_size=64 - len(indices), columns=["rna_indices", "rna_values"])
                first = next(batches, None)
                if first is not None:
                    indices += first.column("rna_indices").to_pylist()
                    values += first.column("rna_values").to_pylist()
                if len(indices) >= 64:
                    break
            sample = _rows_matrix(indices, values, len(c["genes"]))
            c["rna_reading"] = reading_options(self.tokenizer, sample) if indices else {}
        return c["rna_reading"]

    def _tokenize(self, c: dict[str, Any], rna, protein_names: list[str], proteins: np.ndarray, seed: int,
                  encoding: dict):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant cells are handled (1e-8) and would warn every batch
            return self.tokenizer(
                rna=rna,
                gene_names=c["genes"],
                proteins=protein_names,
                protein_values=proteins,
                max_length=self.max_genes,
                protein_max_length=self.max_proteins,
                padding="longest" if self.pad_to_longest else "max_length",
                truncation=self.truncation,
                protein_truncation=self.protein_truncation,
                seed=seed,
                return_tensors="np",
                return_cell_scale=self.cell_scale,
                gene_layout=self.gene_layout,
                **encoding,
                **self._rna_reading(c),
            )

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        n = len(examples)
        groups: dict[int, list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault(int(e["corpus"]), []).append(i)
        encoded = {corpus: self._encode_group(corpus, [examples[i] for i in positions])
                   for corpus, positions in groups.items()}
        genes, proteins = self.max_genes, self.max_proteins
        if self.pad_to_longest:
            genes = max(enc["input_ids"].shape[1] for enc in encoded.values())
            proteins = max(enc["protein_ids"].shape[1] for enc in encoded.values())
        out = {
            "input_ids": np.zeros((n, genes), np.int64),
            "input_values": np.zeros((n, genes), np.float32),
            "attention_mask": np.zeros((n, genes), bool),
            "protein_ids": np.zeros((n, proteins), np.int64),
            "protein_attention_mask": np.zeros((n, proteins), bool),
            "labels": np.full((n, proteins), np.nan, np.float32),
        }
        if self.cell_scale:
            out["cell_covariates"] = np.zeros((n, 4), np.float32)
            out["protein_scale_labels"] = np.full((n, 2), np.nan, np.float32)
        for corpus, positions in groups.items():
            enc = encoded[corpus]
            for key in out:
                out[key][positions, : enc[key].shape[1]] = enc[key]
        out["labels"][~out["protein_attention_mask"]] = np.nan
        batch = {k: torch.from_numpy(v) for k, v in out.items()}
        batch["example_ids"] = torch.tensor([int(e["example_id"]) for e in examples], dtype=torch.int64)
        return batch
