"""docs/studies.md's measured blocks: Markdown from study tables, spliced between markers, all or nothing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from layerlab.errors import LayerlabError
from layerlab.studies import STUDIES
from layerlab.studies.doc_tables import begin_marker, end_marker, replace_block, table_markdown, write_blocks
from layerlab.studies.record import Table

ROOT = Path(__file__).resolve().parent.parent
DOC = f"# Studies\n\nkept above\n\n{begin_marker('init')}\nold numbers\n{end_marker('init')}\n\nkept below\n"


def test_a_table_becomes_markdown_with_missing_values_and_pipes_escaped():
    md = table_markdown(Table("Result", ["init", "test acc"], [["he", "83.22%"], ["a|b", None]], note="seed 0"))
    assert md.splitlines() == ["**Result**", "", "| init | test acc |", "|---|---|", "| he | 83.22% |",
                               "| a\\|b | — |", "", "*seed 0*"]


def test_a_block_is_replaced_and_the_rest_kept(tmp_path):
    path = tmp_path / "studies.md"
    path.write_text(DOC, encoding="utf-8")
    write_blocks(path, {"init": "new numbers"})
    text = path.read_text(encoding="utf-8")
    assert "old numbers" not in text and f"{begin_marker('init')}\nnew numbers\n{end_marker('init')}" in text
    assert text.startswith("# Studies\n\nkept above\n\n") and text.endswith("\n\nkept below\n")
    write_blocks(path, {"init": "newer"})  # the markers survive, so it can be rewritten
    assert "newer" in path.read_text(encoding="utf-8") and "new numbers" not in path.read_text(encoding="utf-8")


def test_a_missing_block_is_an_error_and_nothing_is_written(tmp_path):
    path = tmp_path / "studies.md"
    path.write_text(DOC, encoding="utf-8")
    with pytest.raises(LayerlabError, match="exactly one block for 'capacity' \\(found 0\\)"):
        write_blocks(path, {"init": "new numbers", "capacity": "x"})
    assert path.read_text(encoding="utf-8") == DOC
    with pytest.raises(LayerlabError, match="found 2"):
        replace_block(DOC + DOC, "init", "x")


def test_docs_studies_md_has_a_block_for_every_job():
    text = (ROOT / "docs" / "studies.md").read_text(encoding="utf-8")
    for name in [*STUDIES, "sweep-lr", "lr-find"]:
        replace_block(text, name, "x")  # raises when a marker is missing or doubled


def test_the_script_refuses_unknown_jobs_and_missing_markers_before_running_anything(tmp_path):
    path = tmp_path / "studies.md"
    path.write_text(DOC, encoding="utf-8")
    script = str(ROOT / "scripts" / "study_tables.py")
    unknown = subprocess.run([sys.executable, script, "--only", "nope", "--docs", str(path)],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "unknown job(s) nope" in unknown.stderr
    missing = subprocess.run([sys.executable, script, "--only", "capacity", "--docs", str(path)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "exactly one block for 'capacity'" in missing.stderr
    assert path.read_text(encoding="utf-8") == DOC and not list(tmp_path.glob("*.tmp"))
