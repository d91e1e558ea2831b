"""The product documents itself: README, docs/, docstrings and comments cite only files that exist
in the repository (a user has nothing else)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A path-like reference to a documentation or data file: dir/name.ext (md, toml, json, py, png, csv).
REFERENCE = re.compile(r"(?<![\w/.:-])((?:[\w-]+/)+[\w.-]+\.(?:md|toml|json|py|png|csv))\b")
#: Files whose text is checked.
SOURCES = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md")),
           *sorted((ROOT / "ml").rglob("*.py")), *sorted((ROOT / "ml").rglob("*.toml")),
           *sorted((ROOT / "experiments").glob("*.toml")), *sorted((ROOT / "scripts").glob("*.py"))]
#: Files of a run folder or of a logged MLflow artefact, named in docstrings: not files of the repository.
EXAMPLES = {"window/window.json", "window/pk_model.toml", "transport/target_window.json",
            "transport/evaluation.json", "figures/index.json", "artifacts/window.json"}


def _references(path: Path) -> list[str]:
    return [m.group(1) for m in REFERENCE.finditer(path.read_text(errors="replace"))]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_files_exist(path):
    missing = sorted({ref for ref in _references(path)
                      if ref not in EXAMPLES and not (ROOT / ref).exists()
                      and not ref.startswith(("runs/", "tmp/", "example/", "ds/", "dose/"))})
    # example/, ds/, dose/: folders that README's first example and the guides' commands write
    assert not missing, f"{path.relative_to(ROOT)} cites files that are not in the repository: {missing}"


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"shared/spec|(?<![\w.-])spec/|\.\./shared|DESIGN\.md|CONVENTIONS\.md|context/domain")
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES if outside.search(p.read_text(errors="replace"))]
    assert not offenders, offenders
