"""`run --out DIR` over another sweep is refused unless --force; resume and extension are not."""
from __future__ import annotations

import json

import pytest
from conftest import TINY_TOML

from bench.cli import main
from bench.run.takeover import TakeoverError, check_takeover, claim_directory, foreign_outputs

# One family, three cells (baseline, prune, quant): a real run of a few seconds.
ONE_FAMILY = TINY_TOML.replace("[families.gan]\nepochs = 1\nmax_steps = 2\nlatent_dim = 4\n", "")


def _other_sweep(directory, name: str = "other") -> dict[str, bytes]:
    """A directory as another sweep leaves it (+ a file that is not genbench's); its bytes."""
    files = {
        "run.json": json.dumps({"config": {"name": name}, "invocations": []}).encode(),
        "results.csv": b"cell_id,status\nabc,ok\n",
        "cells/abc.json": b'{"cell_id": "abc"}',
        "plots/tradeoff_gan.png": b"png",
        "tables/gan.md": b"| x |",
        "report.html": b"<html>",
        "notes.txt": b"mine, not genbench's",
    }
    for relative, data in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _tree(directory) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_directory_of_another_sweep_is_refused_and_left_untouched(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(ONE_FAMILY)
    out = tmp_path / "out"
    _other_sweep(out)
    before = _tree(out)
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("genbench: error: --out ") and "sweep 'other'" in err
    assert "not of sweep 'tiny'" in err and "--force" in err
    assert _tree(out) == before  # nothing written, nothing deleted (no lock file left either)


@pytest.mark.parametrize("present,owner,refused", [
    ([], None, False),  # no directory
    (["notes.txt"], None, False),  # only files genbench does not write
    (["run.json:tiny", "results.csv"], "tiny", False),  # the same sweep: resume
    (["run.json:other", "results.csv"], "other", True),
    (["results.csv", "cells/a.json"], None, True),  # outputs, but whose? unknown
    (["run.json:broken", "cells/a.json"], None, True),
])
def test_which_directories_count_as_another_sweep(tmp_path, present, owner, refused):
    out = tmp_path / "out"
    for entry in present:
        relative, _, name = entry.partition(":")
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = ("{" if name == "broken" else json.dumps({"config": {"name": name}})) if name else ""
        path.write_text(text)
    found_owner, outputs = foreign_outputs(out, "tiny")
    assert bool(outputs) == refused
    if refused:
        assert found_owner == owner
        with pytest.raises(TakeoverError, match="--force"):
            check_takeover(out, "tiny", force=False)
    check_takeover(out, "tiny", force=True)  # never refused with --force


def test_claim_with_force_deletes_only_genbench_outputs(tmp_path):
    out = tmp_path / "out"
    _other_sweep(out)
    deleted = claim_directory(out, "tiny", force=True)
    assert set(deleted) == {"run.json", "results.csv", "cells", "plots", "tables", "report.html"}
    assert _tree(out) == {"notes.txt": b"mine, not genbench's"}
    assert claim_directory(out, "tiny", force=False) == []  # now empty of outputs: nothing to do


@pytest.mark.slow  # two real tiny runs
def test_force_replaces_the_other_sweep_then_resume_and_extension_are_silent(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(ONE_FAMILY)
    out = tmp_path / "out"
    _other_sweep(out)
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet", "--force"]) == 0
    assert "3 cells, 0 already done, 3 run (3 ok, 0 failed)" in capsys.readouterr().out
    tree = _tree(out)
    # The other sweep's outputs are gone, not left stale beside the new results.
    assert not any(p.startswith(("plots/", "tables/", "report.html", "cells/abc")) for p in tree)
    assert tree["notes.txt"] == b"mine, not genbench's"
    run = json.loads(tree["run.json"])
    assert run["config"]["name"] == "tiny" and len(run["invocations"]) == 1
    assert len([p for p in tree if p.startswith("cells/")]) == 3
    # The same sweep again: resumes silently (no --force needed), nothing to do.
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    assert "3 cells, 3 already done, 0 run" in capsys.readouterr().out
    # The same sweep extended with a setting: only the new cell runs.
    config.write_text(ONE_FAMILY.replace("sparsity = [0.5]", "sparsity = [0.5, 0.7]"))
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    assert "4 cells, 3 already done, 1 run (1 ok, 0 failed)" in capsys.readouterr().out
