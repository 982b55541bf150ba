"""Two CPU processes (torchrun, gloo) on a 4-shard streamed corpus: each rank reads its own cells."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from training.corpus import load_manifest
from training.data import split_example_id
from training.run_stage import main

from ._training_helpers import QUIET, RUN_STAGE, TINY_MODEL, subprocess_env


def test_torchrun_two_processes_see_disjoint_examples(tmp_path, corpora, vocab_dir):
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run"] if not shutil.which("torchrun") else ["torchrun"]
    command = [*torchrun, "--nproc_per_node", "2", "--master_port", "29517", str(RUN_STAGE), "--stage", "sc",
               "--corpora", str(corpora["tenx_pbmc10k_s200"]), "--vocab_dir", str(vocab_dir), *TINY_MODEL,
               "--max_steps", "10", "--per_device_train_batch_size", "4", "--save_steps", "5",
               "--log_example_ids", "true", "--eval_strategy", "steps", "--eval_steps", "10", "--logging_steps", "1",
               "--output_dir", str(out), *QUIET]
    done = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 10
    assert summary["eval"]["eval_cells_evaluated"] == 40  # every held-out cell once, gathered from both ranks
    seen = {0: [], 1: []}
    for line in (out / "example_ids.tsv").read_text().splitlines():
        _step, rank, ids = line.split("\t")
        seen[int(rank)] += [int(i) for i in ids.split(",")]
    assert len(seen[0]) == len(seen[1]) == 40  # 10 steps x 4 cells; 40 < one pass (80 cells per rank)
    assert len(set(seen[0])) == 40 and len(set(seen[1])) == 40
    assert not set(seen[0]) & set(seen[1])
    # each rank's cells come from its own shards (rank r reads shards r, r + 2)
    manifest = load_manifest(corpora["tenx_pbmc10k_s200"])
    import pyarrow.parquet as pq

    shard_rows = [set(pq.read_table(corpora["tenx_pbmc10k_s200"] / s["file"], columns=["row"]).column("row")
                      .to_pylist()) for s in manifest["splits"]["train"]["shards"]]
    for rank in (0, 1):
        rows = {split_example_id(i)[1] for i in seen[rank]}
        assert rows <= shard_rows[rank] | shard_rows[rank + 2]

    # the logged loss is the mean over both processes' cells, as one process with their global batch logs it
    # (a loss divided by the world size once too often logs, and trains on, half of it)
    single = main([*command[command.index(str(RUN_STAGE)) + 1:], "--per_device_train_batch_size", "8",
                   "--output_dir", str(tmp_path / "one")])
    two = [loss for _, loss in summary["loss_history"]]
    one = [loss for _, loss in single["loss_history"]]
    assert len(two) == len(one) == 10
    assert 0.75 < sum(two) / sum(one) < 1.33, (two, one)
