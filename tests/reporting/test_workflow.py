"""The nightly CI workflow: scheduled and manual, runs the nightly preset, fails on regression."""
from __future__ import annotations

from pathlib import Path

import pytest

WORKFLOW = Path(__file__).parents[2] / ".github" / "workflows" / "nightly.yml"


def test_nightly_workflow_shape() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "cron" in triggers["schedule"][0] and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["nightly"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    run = next(s for s in steps if s.get("id") == "nightly")
    assert "./run_all.sh nightly" in run["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "results/nightly" in upload["with"]["path"] and upload["if"] == "always()"
    long = next(s for s in steps if s.get("id") == "long")
    assert "GENBENCH_LONG_TESTS=1" in long["run"] and long["continue-on-error"] is True
    assert steps[-1]["if"] == ("steps.nightly.outputs.status != '0' || "
                               "steps.long.outcome == 'failure'")
    assert "exit 1" in steps[-1]["run"]


ROOT = Path(__file__).parents[2]
# A stand-in for the venv's python: logs each call; compare exits as the test asks.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in
    *"compare --history"*) exit "${HISTORY_EXIT:-0}" ;;
    *"bench compare"*) exit "${REFERENCE_EXIT:-0}" ;;
esac
"""


@pytest.mark.parametrize(("reference_exit", "history_exit", "expected"),
                         [(0, 0, 0), (1, 0, 1), (0, 1, 1), (2, 1, 2)])
def test_run_all_nightly_compares_reference_and_history(tmp_path: Path, reference_exit: int,
                                                        history_exit: int, expected: int) -> None:
    import hashlib
    import os
    import subprocess

    for name in ("run_all.sh", "pyproject.toml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (tmp_path / ".venv" / ".genbench-installed").write_text(stamp + "\n")
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "CALLS": str(calls), "REFERENCE_EXIT": str(reference_exit),
           "HISTORY_EXIT": str(history_exit)}
    done = subprocess.run(["bash", str(tmp_path / "run_all.sh"), "nightly"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == expected, done.stderr
    log = [line.removeprefix("-m bench ").split()[:2] for line in calls.read_text().splitlines()]
    steps = [" ".join(words) for words in log]
    assert steps[0] == "run --preset"
    quality = steps.index("compare results/reference/nightly")
    latency = steps.index("compare --history")
    append = steps.index("history append")
    # Latency is compared with the machine's earlier runs before this one joins them.
    plot, report = steps.index("history plot"), steps.index("report results/nightly")
    assert quality < latency < append < plot < report
    assert "results/history.csv" in calls.read_text().splitlines()[latency]


def test_nightly_preset_is_small_but_still_a_nightly() -> None:
    """3 seeds at full sample sizes, one setting per method family, batch 1 and 64 (small
    enough to be regenerated with the code: see the preset's header); the ddpm with its two
    diffusion-specific axes only."""
    from bench.config.sweep import load_preset
    from bench.run.grid import expand

    config = load_preset("nightly")
    assert list(config.seeds) == [0, 1, 2] and list(config.batch_sizes) == [1, 64]
    assert config.eval == {"n_samples": 1000, "kid_subsets": 100, "kid_subset_size": 1000,
                           "iwae_k": 16, "n_recon": 1000}
    cells = expand(config)
    assert len(cells) == 3 * 3 * 6 + 3 * 3
    ddpm = sorted(cell.method for cell in cells if cell.seed == 0 and cell.family == "ddpm")
    assert ddpm == ["baseline", "quant_wa", "steps"]
    methods = sorted(cell.method for cell in cells if cell.seed == 0 and cell.family == "gan")
    assert methods == ["baseline", "distill", "prune_magnitude", "prune_magnitude+quant",
                       "quant", "quant_int8_kernel"]
