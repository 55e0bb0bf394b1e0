"""Keep the README's excerpts of results tables equal to the tables files they name.

A block `<!-- table-excerpt: PATH -->` ... `<!-- /table-excerpt -->` (PATH relative to the
README's folder) holds PATH's text verbatim. `python -m bench.report.readme_sync README.md` rewrites
every block; `--check` only reports blocks that differ (exit 1), as the test does.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import InputError

START = "<!-- table-excerpt: {path} -->"
END = "<!-- /table-excerpt -->"
_START = re.compile(r"^<!-- table-excerpt: (?P<path>\S+) -->$", re.MULTILINE)


@dataclass(frozen=True)
class Excerpt:
    """One block: the tables file it names, its text now, and where it lies in the README."""

    path: str
    text: str
    start: int  # offset of the start marker
    end: int  # offset just past the end marker


def excerpts(readme_text: str, where: str = "README") -> list[Excerpt]:
    """The excerpt blocks of a README's text, in order; InputError for an unterminated block."""
    found = []
    for match in _START.finditer(readme_text):
        end = readme_text.find(END, match.end())
        following = _START.search(readme_text, match.end())
        if end < 0 or (following is not None and following.start() < end):
            line = readme_text.count("\n", 0, match.start()) + 1
            raise InputError(f"{where}:{line}: table excerpt of {match['path']} has no "
                             f"'{END}' before the next block or the end; add it")
        found.append(Excerpt(match["path"], readme_text[match.end():end], match.start(),
                             end + len(END)))
    return found


def block(path: str, table_text: str) -> str:
    """The whole block for PATH: markers, blank lines around the table (Markdown needs them)."""
    return f"{START.format(path=path)}\n\n{table_text.rstrip()}\n\n{END}"


def _table_text(readme: Path, path: str) -> str:
    source = readme.parent / path
    if not source.is_file():
        raise InputError(f"{readme}: table excerpt names {path}, which does not exist; "
                         "write the tables first (genbench table DIR) or fix the path")
    return source.read_text()


def _read(readme: Path) -> str:
    if not readme.is_file():
        raise InputError(f"{readme}: no such file; pass the README that holds the excerpts")
    return readme.read_text()


def stale_excerpts(readme: str | Path) -> list[str]:
    """The paths whose README block differs from the file's current text."""
    readme = Path(readme)
    text = _read(readme)
    return [e.path for e in excerpts(text, str(readme))
            if text[e.start:e.end] != block(e.path, _table_text(readme, e.path))]


def sync_readme(readme: str | Path) -> list[str]:
    """Rewrite every excerpt block of `readme` from its tables file; returns the paths whose
    block changed. Nothing is written when a block or a file is missing."""
    readme = Path(readme)
    text = _read(readme)
    pieces, changed, last = [], [], 0
    for excerpt in excerpts(text, str(readme)):
        new = block(excerpt.path, _table_text(readme, excerpt.path))
        if text[excerpt.start:excerpt.end] != new:
            changed.append(excerpt.path)
        pieces += [text[last:excerpt.start], new]
        last = excerpt.end
    if changed:
        readme.write_text("".join(pieces) + text[last:])
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report.readme_sync", description=__doc__)
    parser.add_argument("readme", help="the Markdown file holding table-excerpt blocks")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and name the blocks that differ")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_excerpts(args.readme)
            for path in stale:
                print(f"{args.readme}: excerpt of {path} differs from the file", file=sys.stderr)
            return 1 if stale else 0
        for path in sync_readme(args.readme):
            print(f"{args.readme}: excerpt of {path} updated")
    except InputError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
