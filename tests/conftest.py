"""Shared test fixtures: the read-only ``../shared`` folder and offline Hugging Face settings."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _auto_feature_extractor_reads_the_folder() -> bool:
    """Before transformers 5.25, AutoFeatureExtractor loaded through the class's from_pretrained (which reads the
    gene vocabulary beside the settings); from 5.25 it builds from the settings alone."""
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__).release < (5, 25)


AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER = _auto_feature_extractor_reads_the_folder()
SHARED = Path(os.environ.get("SCTRANSLATOR_SHARED", REPO_ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ``../shared``; skips the test where it is absent, except in CI where it must exist."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI runs with ../shared beside the clone")
        pytest.skip(f"{path} is not available on this machine")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return shared_path("fixtures")


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    return shared_path("vocab")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_path("data")


@pytest.fixture(scope="session")
def shared():
    """``shared("fixtures", "x.npz")`` -> a path under ../shared (skips or fails as :func:`shared_path`)."""
    return shared_path


TINY_MODEL = dict(
    hidden_size=16, num_attention_heads=2, attention_head_dim=8, num_encoder_layers=1, num_decoder_layers=1,
    max_genes=64, max_proteins=6, nb_random_features=12,
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, vocab_dir) -> Path:
    """A small random model (real vocabulary) saved with its tokenizer: a folder as users get one."""
    import torch

    from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY_MODEL)).save_pretrained(folder)
    SCTranslatorTokenizer.from_original_tables(
        vocab_dir, max_length=TINY_MODEL["max_genes"], protein_max_length=TINY_MODEL["max_proteins"]
    ).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------- Hub stand-in
SECRET = "hf_TESTSECRETdoNotLeak123"


class FakeHubApi:
    """Records calls and stores uploads as cached snapshots of ``repo_id``."""

    def __init__(self, cache):
        self.cache = cache
        self.calls = []

    def create_repo(self, repo_id, private=False, exist_ok=False, token=None, **kwargs):
        self.calls.append(("create_repo", repo_id, private, token))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, commit_message=None, token=None, allow_patterns=None, **kwargs):
        self.calls.append(("upload_folder", repo_id, sorted(allow_patterns), token))
        commit = hashlib.sha1(repo_id.encode() + str(len(self.calls)).encode()).hexdigest()
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        for name in allow_patterns:
            shutil.copy2(f"{folder_path}/{name}", snapshot / name)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        return f"https://huggingface.co/{repo_id}/commit/{commit}"

    def snapshot(self, repo_id):
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        return repo / "snapshots" / (repo / "refs" / "main").read_text()


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    fake = FakeHubApi(cache)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: fake)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_TOKEN_FOR_TESTS", SECRET)
    return fake


def run_without_our_packages(script: str, folder: Path) -> None:
    """Run ``script`` in a fresh Python in ``folder`` where this repository is not on the path (as where the
    package is not installed: trust_remote_code must make do with a saved folder's own code), offline."""
    import subprocess
    import sys

    # PYTHONPATH loses this repository but keeps other entries (CI puts an older transformers there)
    kept = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and Path(p).resolve() != REPO_ROOT]  # absolute: the script runs in another folder
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(folder / "modules"),
           "PYTHONPATH": os.pathsep.join(kept)}
    result = subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def one_piece(rna, adt):
    """A CITE-seq file in one piece, as Cell Ranger writes it (scanpy.read_10x_h5(gex_only=False)): genes then
    antibodies, told apart by var['feature_types']; some antibody names (CD4, CD14) are gene names too."""
    import warnings

    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    var = pd.concat([rna.var.assign(feature_types="Gene Expression")[["feature_types"]],
                     adt.var.assign(feature_types="Antibody Capture")[["feature_types"]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # var_names repeat (CD4 the gene and CD4 the antibody)
        return ad.AnnData(sp.hstack([sp.csr_matrix(rna.X), sp.csr_matrix(adt.X)]).tocsr(), obs=rna.obs[[]], var=var)


def write_cellranger_h5(path, adata, genome_v2: str | None = None) -> None:
    """``adata`` (with var['feature_types']) as Cell Ranger writes its HDF5 matrix: v3 (``/matrix``), or v2 (one
    genome group, genes only) when ``genome_v2`` names the genome."""
    import h5py
    import numpy as np
    import scipy.sparse as sp

    csr = sp.csr_matrix(adata.X)  # cells x features CSR = features x cells CSC, as Cell Ranger stores it

    def text(values):
        return np.asarray([str(v).encode() for v in values])

    with h5py.File(path, "w") as f:
        group = f.create_group(genome_v2 or "matrix")
        group["data"], group["indices"], group["indptr"] = csr.data.astype(np.int32), csr.indices, csr.indptr
        group["shape"] = np.asarray([adata.n_vars, adata.n_obs], np.int32)
        group["barcodes"] = text(adata.obs_names)
        if genome_v2:
            group["gene_names"] = text(adata.var_names)
            group["genes"] = text(f"ENSG{i:011d}" for i in range(adata.n_vars))
            return
        features = group.create_group("features")
        features["name"], features["id"] = text(adata.var_names), text(f"ID{i}" for i in range(adata.n_vars))
        features["feature_type"] = text(adata.var["feature_types"])


def write_cellranger_mtx(folder, adata, prefix: str = "", v2: bool = False) -> None:
    """``adata`` (with var['feature_types']) as Cell Ranger writes its Matrix Market folder: ``matrix.mtx.gz``
    (features x cells), ``features.tsv.gz`` (id, name, type) and ``barcodes.tsv.gz``; v2 writes uncompressed
    ``genes.tsv`` (id, name) and genes only. ``prefix``: GEO's file names (``GSM1_matrix.mtx.gz``)."""
    import gzip

    import scipy.io
    import scipy.sparse as sp

    folder.mkdir(parents=True, exist_ok=True)
    gz = "" if v2 else ".gz"
    ids = [f"ID{i}" for i in range(adata.n_vars)]
    with (open if v2 else gzip.open)(folder / f"{prefix}matrix.mtx{gz}", "wb") as f:
        scipy.io.mmwrite(f, sp.coo_matrix(sp.csr_matrix(adata.X).T))
    types = adata.var["feature_types"] if "feature_types" in adata.var else [""] * adata.n_vars
    rows = zip(ids, adata.var_names, types, strict=True)
    features = "".join(f"{i}\t{n}\n" if v2 else f"{i}\t{n}\t{t}\n" for i, n, t in rows)
    barcodes = "".join(f"{b}\n" for b in adata.obs_names)
    for name, text in ((f"{prefix}{'genes' if v2 else 'features'}.tsv", features), (f"{prefix}barcodes.tsv", barcodes)):
        with (open if v2 else gzip.open)(folder / f"{name}{gz}", "wt") as f:
            f.write(text)

