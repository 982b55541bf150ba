"""Model folders saved before the package layout changed keep loading, and saved code stands alone.

A saved folder carries copies of the model and tokenizer code for ``trust_remote_code``; folders on
disks and on the Hub hold the copies of the day they were saved, so the layout of our packages may
change but those files, their names and ``auto_map`` must keep working where we are not installed.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import textwrap
from pathlib import Path

import numpy as np

from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR

from ..conftest import AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER, run_without_our_packages

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_saved_before_layout"
OUR_PACKAGES = ("modeling_sctranslator", "tokenization", "training", "interpretation", "sctranslator",
                "model_cards", "benchmarks")
PROTEINS = ["CD4", "CD19", "CD8A"]


def _block_our_packages() -> str:
    """Script lines that make every import of our packages fail, and check that it does."""
    return textwrap.dedent(
        f"""
        import sys
        for name in {OUR_PACKAGES!r}:
            sys.modules[name] = None  # as if not installed: any import of it raises ImportError
        try:
            import modeling_sctranslator  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("our package is still importable")
        """
    )


GENES = ["CD4", "CD19", "CD8A", "CD3E", "MS4A1", "PTPRC", "NKG7", "LYZ", "GAPDH", "ACTB", "IL7R", "CD14"]


def _cells(n_cells: int = 6):
    import anndata as ad
    import pandas as pd

    counts = np.random.default_rng(0).poisson(2.0, size=(n_cells, len(GENES))).astype(np.float32)
    return ad.AnnData(X=counts, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
                      var=pd.DataFrame(index=GENES))


def _saved_before(tmp_path: Path) -> Path:
    """A model folder as saved before the layout change: today's weights, vocabulary and layout (their formats did
    not change) with the code and configuration of the day."""
    folder = tmp_path / "saved_before"
    folder.mkdir()
    for item in DEFAULT_MODEL_DIR.iterdir():
        if item.suffix != ".py" and item.name not in ("config.json", "preprocessor_config.json",
                                                      "tokenizer_config.json"):  # written only since 2026-12-03
            shutil.copy(item, folder / item.name)
    for item in FIXTURE.iterdir():
        if item.name != "README.md":
            shutil.copy(item, folder / item.name)
    return folder


def test_a_folder_saved_before_the_layout_change_loads_where_we_are_not_installed(tmp_path):
    import torch

    from modeling_sctranslator import SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    folder = _saved_before(tmp_path)
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoModel"] == (
        "modeling_sctranslator.SCTranslatorForProteinPrediction")

    rna = _cells()
    rna.write_h5ad(tmp_path / "rna.h5ad")
    model = SCTranslatorForProteinPrediction.from_pretrained(folder).eval()
    tokenizer = SCTranslatorTokenizer.from_pretrained(folder)
    batch = tokenizer(rna=rna, proteins=PROTEINS)
    with torch.no_grad():
        expected = model(**{k: v for k, v in batch.items() if k != "labels"}).predictions.numpy()

    # Such folders name their tokenizer for AutoFeatureExtractor only, which reads no vocabulary from transformers 5.25:
    # there they load once tokenizer_config.json is added (the README gives its text), as the script checks.
    script = _block_our_packages() + textwrap.dedent(
        f"""
        import json
        import anndata, numpy, torch
        from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        tokenizers = []
        if {AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER!r}:
            tokenizers.append(AutoFeatureExtractor.from_pretrained({str(folder)!r}, trust_remote_code=True))
        with open({str(folder / "tokenizer_config.json")!r}, "w") as handle:
            json.dump({README_TOKENIZER_CONFIG!r}, handle)
        tokenizers.append(AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True))
        rna = anndata.read_h5ad({str(tmp_path / "rna.h5ad")!r})
        for number, tokenizer in enumerate(tokenizers):
            for thing in (model, tokenizer):
                assert type(thing).__module__.startswith("transformers_modules"), type(thing).__module__
            batch = tokenizer(rna=rna, proteins={PROTEINS!r})
            with torch.no_grad():
                out = model(**{{k: v for k, v in batch.items() if k != "labels"}}).predictions
            numpy.save({str(tmp_path)!r} + f"/out{{number}}.npy", out.numpy())
        """
    )
    run_without_our_packages(script, tmp_path)
    outputs = sorted(tmp_path.glob("out*.npy"))
    assert len(outputs) == (2 if AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER else 1)
    for path in outputs:
        np.testing.assert_allclose(np.load(path), expected, atol=1e-6)


def test_a_tokenizer_saved_before_the_whole_input_reading_is_called_as_before(tmp_path):
    """Prediction, attention and knockout hand each chunk the whole input's reading of its values (rna_reading=),
    which the tokenizer code saved in older folders does not take: it is called without it, as before."""
    from transformers import AutoTokenizer

    from modeling_sctranslator.inference import reading_options, takes_rna_reading
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    folder = _saved_before(tmp_path)
    (folder / "tokenizer_config.json").write_text(json.dumps(README_TOKENIZER_CONFIG))
    old = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert type(old).__module__.startswith("transformers_modules") and not takes_rna_reading(old)
    rna = _cells()
    assert reading_options(old, rna) == {}
    encoded = old(rna=rna, proteins=PROTEINS, **reading_options(old, rna))
    ours = SCTranslatorTokenizer.from_pretrained(folder)
    assert set(reading_options(ours, rna)) == {"rna_reading"}
    np.testing.assert_array_equal(encoded["input_values"], ours(rna=rna, proteins=PROTEINS,
                                                               **reading_options(ours, rna))["input_values"])


def _readme_tokenizer_config() -> dict:
    """The tokenizer_config.json text the README tells owners of older folders to add."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.search(r"`(\{\"tokenizer_class\": \"SCTranslatorTokenizer\".*?\})`", readme)
    assert found, "the README no longer gives the tokenizer_config.json of older folders"
    return json.loads(found.group(1))


README_TOKENIZER_CONFIG = _readme_tokenizer_config()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in a file, those inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
        elif isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
    return found


def _check_stands_alone(folder: Path) -> list[str]:
    copied = {p.stem for p in folder.glob("*.py")}
    assert copied, f"no code in {folder}"
    for path in folder.glob("*.py"):
        for level, module in _imports(path):
            top = module.split(".")[0]
            if level:
                assert level == 1 and top in copied, f"{path.name}: from {'.' * level}{module} is not a copied file"
            else:
                assert top not in OUR_PACKAGES, f"{path.name} imports {module}: saved code may use only its siblings"
    return sorted(copied)


def test_the_code_a_save_copies_imports_only_its_own_siblings(tmp_path):
    """What ``save_pretrained`` copies (model and tokenizer) imports nothing of our packages, so none of
    the layers above the model can reach a saved folder; the shipped folder holds exactly those files."""
    from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    config = SCTranslatorConfig(hidden_size=16, num_attention_heads=2, attention_head_dim=8, num_encoder_layers=1,
                                num_decoder_layers=1, max_genes=32, max_proteins=8, vocab_size=100,
                                nb_random_features=8)
    SCTranslatorForProteinPrediction(config).save_pretrained(tmp_path / "fresh")
    SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR).save_pretrained(tmp_path / "fresh")
    fresh = _check_stands_alone(tmp_path / "fresh")
    assert _check_stands_alone(DEFAULT_MODEL_DIR) == fresh
    package_dirs = [Path(__file__).resolve().parents[2] / name for name in ("modeling_sctranslator", "tokenization")]
    for path in DEFAULT_MODEL_DIR.glob("*.py"):
        source = next(d / path.name for d in package_dirs if (d / path.name).is_file())
        assert path.read_text() == source.read_text(), f"the shipped {path.name} differs from {source}"
