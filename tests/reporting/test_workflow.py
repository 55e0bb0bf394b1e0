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
    assert steps[-1]["if"] == "steps.nightly.outputs.status != '0'" and "exit 1" in steps[-1]["run"]
