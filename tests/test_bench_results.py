"""bench/RESULTS.md: a benchmark rewrites its section's figures and keeps the notes written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import counting_setup
from bench.counting_setup import NOTES_MARKER, write_section


def test_a_section_is_rewritten_and_its_notes_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n## Ingestion\n\nold figures\n\n"
        f"{NOTES_MARKER}\n\nSession 7: what moved it.\n\n## Provisioning\n\nuntouched\n"
    )
    monkeypatch.setattr(counting_setup, "RESULTS", results)
    write_section("Ingestion", "new figures")
    assert results.read_text() == (
        "# Benchmark results\n\n## Ingestion\n\nnew figures\n\n"
        f"{NOTES_MARKER}\n\nSession 7: what moved it.\n\n## Provisioning\n\nuntouched\n"
    )
    write_section("Dashboard query", "figures")  # a new section goes at the end
    assert results.read_text().endswith("## Provisioning\n\nuntouched\n\n## Dashboard query\n\nfigures\n")
    write_section("Dashboard query", "other figures")  # no notes: the whole section is replaced
    assert results.read_text().endswith("## Dashboard query\n\nother figures\n")
