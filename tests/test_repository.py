"""The repository stands alone: its code, tests and docs cite papers or docs/reference.md, never
notes that live outside it (a reference file's sections, the names of seed documents, a helpers file)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".txt", ".html", ".cfg", ".ini", ".yaml", ".yml"}
SKIPPED_FOLDERS = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache"}
# Written in pieces so that this file does not match itself.
# The seed documents' names however spelled: a space, an underscore or nothing before the three digits.
OUTSIDE_NOTES = re.compile("|".join([r"REFERENCE" + r" section", r"seed" + r"[ _]?0\d\d", r"seed" + r" 0",
                                     r"seed" + r"[ _]?NNN", r"HELPERS" + r"\.md"]),
                           re.IGNORECASE)


def _repository_text_files():
    for path in sorted(REPO.rglob("*")):
        parts = set(path.relative_to(REPO).parts)
        if parts & SKIPPED_FOLDERS or any(p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.relative_to(REPO).as_posix() == ".ci/run":
            yield path


def test_no_file_cites_notes_outside_the_repository():
    hits = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            for path in _repository_text_files()
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if OUTSIDE_NOTES.search(line)]
    assert not hits, "cite papers or docs/reference.md instead:\n" + "\n".join(hits)


def test_the_reference_page_exists_and_every_cited_section_is_on_it():
    page = (REPO / "docs" / "reference.md").read_text()
    sections = set(re.findall(r"^## (\d+)\.", page, re.MULTILINE))
    cited = set()
    for path in _repository_text_files():
        for match in re.finditer(r"docs/reference\.md sections? (\d+)(?:-(\d+))?", path.read_text(errors="replace")):
            first, last = int(match[1]), int(match[2] or match[1])
            cited.update(str(n) for n in range(first, last + 1))
    assert cited and cited <= sections, f"cited sections missing from docs/reference.md: {sorted(cited - sections)}"


def test_outside_notes_pattern_catches_every_spelling_of_the_seed_names():
    for spelled in ["seed" + " 000", "Seed" + "000_unet.py", "seed" + "_004", "SEED" + "004_FINDING", "seed" + "NNN",
                    "REFERENCE" + " section 4", "HELPERS" + ".md"]:
        assert OUTSIDE_NOTES.search(spelled), spelled
    for innocent in ["seed=0", "shard_seed(5, 0)", "manual_seed(13)", "seed 1", "the seed of shard 0"]:
        assert not OUTSIDE_NOTES.search(innocent), innocent
