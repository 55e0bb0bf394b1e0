"""The README's table excerpt is the committed tables file, and the sync command keeps it so."""
from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_results import run_cli

from bench.errors import InputError
from bench.report.readme_sync import END, block, excerpts, main, stale_excerpts, sync_readme

REPO = Path(__file__).resolve().parents[2]
REFERENCE_TABLE = "results/reference/default/tables/gan.md"


def test_the_readme_excerpt_is_the_committed_reference_table() -> None:
    readme = REPO / "README.md"
    paths = [e.path for e in excerpts(readme.read_text())]
    assert REFERENCE_TABLE in paths
    # After regenerating the references: python -m bench.report.readme_sync README.md
    assert stale_excerpts(readme) == []
    # The rows themselves, not only the block as a whole.
    table_rows = [line for line in (REPO / REFERENCE_TABLE).read_text().splitlines()
                  if line.startswith("|")]
    excerpt = next(e for e in excerpts(readme.read_text()) if e.path == REFERENCE_TABLE)
    assert [line for line in excerpt.text.splitlines() if line.startswith("|")] == table_rows


def _readme(tmp_path: Path, excerpt: str) -> Path:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "gan.md").write_text("**gan**\n\n| a | b |\n|---|---:|\n| x | 1 |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nAbove.\n\n{excerpt}\n\nBelow.\n")
    return readme


def test_sync_rewrites_a_stale_block_and_only_it(tmp_path: Path) -> None:
    stale = "<!-- table-excerpt: tables/gan.md -->\n| old | row |\n<!-- /table-excerpt -->"
    readme = _readme(tmp_path, stale)
    assert stale_excerpts(readme) == ["tables/gan.md"]
    assert sync_readme(readme) == ["tables/gan.md"]
    text = readme.read_text()
    expected = block("tables/gan.md", (tmp_path / "tables" / "gan.md").read_text())
    assert text == f"# Title\n\nAbove.\n\n{expected}\n\nBelow.\n"
    assert "| x | 1 |" in text and "old" not in text
    assert sync_readme(readme) == [] and stale_excerpts(readme) == []  # idempotent


def test_an_unterminated_block_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    readme = _readme(tmp_path, "<!-- table-excerpt: tables/gan.md -->\n| old |")
    before = readme.read_text()
    with pytest.raises(InputError, match=f"README.md:5: .* has no '{END}'"):
        sync_readme(readme)
    assert readme.read_text() == before


def test_a_missing_tables_file_is_an_error(tmp_path: Path) -> None:
    readme = _readme(tmp_path, f"<!-- table-excerpt: tables/vae.md -->\n{END}")
    before = readme.read_text()
    with pytest.raises(InputError, match="names tables/vae.md, which does not exist"):
        sync_readme(readme)
    assert readme.read_text() == before


def test_check_mode_exit_codes(tmp_path: Path, capsys) -> None:
    readme = _readme(tmp_path, f"<!-- table-excerpt: tables/gan.md -->\n{END}")
    assert main([str(readme), "--check"]) == 1
    assert "excerpt of tables/gan.md differs" in capsys.readouterr().err
    assert main([str(readme)]) == 0 and main([str(readme), "--check"]) == 0
    assert main([str(tmp_path / "missing.md")]) == 2


def test_table_command_updates_the_readme(make_results_dir, tmp_path: Path, capsys) -> None:
    run = make_results_dir()
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n<!-- table-excerpt: run/tables/gan.md -->\n{END}\ny\n")
    code, out, _ = run_cli(["table", str(run), "--readme", str(readme)], capsys)
    assert code == 0 and "excerpt of run/tables/gan.md updated" in out
    assert stale_excerpts(readme) == []
    assert (run / "tables" / "gan.md").read_text().rstrip() in readme.read_text()
