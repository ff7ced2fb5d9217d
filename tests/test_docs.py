"""The README's Contents table and docs/ARCHITECTURE.md match the tree."""

import pathlib
import re

from conftest import ROOT


def contents_paths() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Contents", 1)[1].split("\n## ", 1)[0]
    return {p.rstrip("/") for p in re.findall(r"`([\w./-]+)`", table) if "/" in p or p.endswith(".py")}


def test_contents_table_names_every_part_and_only_real_paths():
    named = contents_paths()
    missing = [str(p) for p in named if not (ROOT / p).exists()]
    assert not missing, f"README Contents names paths that do not exist: {missing}"
    parts = {f"edvr_jax/{p.name}" for p in (ROOT / "edvr_jax").iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")}
    parts |= {"benchmarks", "configs", "tests", "docs/ARCHITECTURE.md", "train.py", "eval.py"}
    assert not parts - named, f"README Contents does not mention {sorted(parts - named)}"


def test_architecture_doc_is_linked_and_names_real_modules():
    assert "docs/ARCHITECTURE.md" in (ROOT / "README.md").read_text()
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for path in re.findall(r"`((?:ops|models|convert|data|evaluate|train)/\w+\.py)`", doc):
        assert (ROOT / "edvr_jax" / path).is_file(), path
    for path in re.findall(r"`(tests/\w+\.py)`", doc):
        assert (ROOT / path).is_file(), path
    assert pathlib.Path(ROOT / "docs" / "ARCHITECTURE.md").stat().st_size < 20_000  # short
