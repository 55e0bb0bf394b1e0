"""deployment.md: the best fp32 runtime chosen right, exact speedup ratios and noise bands,
unstable / skipped / failed rows never used, quality and size of output-changing runtimes."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from synthetic_deployment import SKIP_REASON, UNSTABLE_SPEEDUP, write_synthetic_run

from bench.results.deployment import (
    Reference,
    best_fp32,
    deployment_rows,
    family_models,
    has_runtimes,
    with_references,
)
from bench.results.loading import load_results_dir
from bench.tables.deployment import (
    DEPLOYMENT_FILE,
    deployment_tables,
    speedup_text,
    write_deployment_dir,
)
from bench.tables.render import NOISE_MARK

F = 1 / 0.99  # the gan eager baseline's self-timings 1.01 and 0.99: f = exp(max |log s|)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    return load_results_dir(write_synthetic_run(tmp_path_factory.mktemp("deploy") / "run"))


@pytest.fixture(scope="module")
def gan(run) -> dict[tuple[str, str], list[str]]:
    """The gan table's rows keyed by (method, runtime)."""
    table = deployment_tables(run)[0]
    assert table.title.startswith("gan, CPU, 2 threads")
    return {(row[0], row[2]): row for row in table.rows} | {("headers", ""): table.headers}


def test_best_fp32_runtime_is_the_fastest_ok_row_that_keeps_outputs(run) -> None:
    rows = deployment_rows(run)
    # Batch 1: onnxruntime (2.0) beats compiled (1.25); int8 (3.0) changes outputs: excluded.
    assert best_fp32(rows, "gan", "cpu", 1) == Reference("onnxruntime", 2.0, 1.0)
    # Batch 64: onnxruntime's 9.0 is unstable and never a reference; compiled (1.5) is.
    best = best_fp32(rows, "gan", "cpu", 64)
    assert (best.runtime, best.speedup) == ("compiled", 1.5)
    assert best.p50_ms == pytest.approx(40.0 / 1.5)
    assert best_fp32(rows, "gan_w2", "cpu", 64).runtime == "onnxruntime"


@pytest.mark.parametrize(("speedups", "expected"), [
    ({"eager": 1.0, "compiled": 1.0}, "eager"),  # a tie goes to eager, the reference
    ({"eager": 1.0, "onnxruntime": 0.7}, "eager"),  # no fp32 runtime faster: eager
    ({"eager": 1.0, "openvino": 1.3, "compiled": 1.3}, "compiled"),  # tie: alphabetical
    # eager's self-timing unstable: still the reference at 1 by definition, so a slower
    # runtime never becomes "best", and a faster ok one does
    ({"eager": math.nan, "compiled": 0.9}, "eager"),
    ({"eager": math.nan, "compiled": 1.2}, "compiled"),
    ({"eager": 1.0, "compiled": math.nan}, "eager"),  # an unstable runtime is never best
])
def test_best_fp32_ties_and_slower_runtimes(speedups: dict[str, float], expected: str) -> None:
    rows = pd.DataFrame([{"family": "vae", "device": "cpu", "batch_size": 8, "is_baseline": True,
                          "changes_outputs": False, "runtime": name, "speedup": value,
                          "status": "unstable" if math.isnan(value) else "ok",
                          "p50_ms": 1 / value} for name, value in speedups.items()])
    best = best_fp32(rows, "vae", "cpu", 8)
    assert best.runtime == expected
    assert best.speedup == (1.0 if expected == "eager" else speedups[expected])
    assert best_fp32(rows[rows["runtime"] != "eager"], "vae", "cpu", 8) is None


def test_speedup_ratios_are_exact(run) -> None:
    rows = with_references(deployment_rows(run))
    at = rows.set_index(["family", "method", "runtime", "batch_size"])
    assert at.loc[("gan", "prune_structured", "compiled", 1), "speedup_vs_best"] == 1.0
    assert at.loc[("gan", "prune_structured", "onnxruntime_int8", 1), "speedup_vs_best"] == 2.0
    assert at.loc[("gan", "prune_structured", "eager", 64), "speedup_vs_best"] == \
        pytest.approx(1.8 / 1.5, abs=1e-15)
    assert at.loc[("gan", "baseline", "eager", 1), "speedup"] == 1.0  # 1 by definition
    unstable = at.loc[("gan", "baseline", "onnxruntime", 64)]
    assert unstable["status"] == "unstable" and math.isnan(unstable["speedup"])


def test_speedup_text_band_and_noise_mark() -> None:
    from bench.results.annotations import NoiseBand

    band = NoiseBand((1.01, 0.99), (1, 64), F)
    assert speedup_text(2.0, band) == "2.00 [1.98-2.02]"
    assert speedup_text(2.0, band, 2) == "2.00 [1.96-2.04]"  # a ratio of two speedups: f^2
    assert speedup_text(1.0, band, 2) == f"{NOISE_MARK} 1.00 [0.98-1.02]"
    assert speedup_text(2.0, None) == "2.00"
    assert speedup_text(math.nan, band) == "-"


def test_table_cells(gan) -> None:
    headers = gan[("headers", "")]
    col = {name: headers.index(name) for name in headers}
    pruned_int8 = gan[("prune_structured", "onnxruntime_int8")]
    assert pruned_int8[col["x best fp32 (batch 1)"]] == "2.00 [1.96-2.04]"
    assert pruned_int8[col["x eager (batch 1)"]] == "4.00 [3.96-4.04]"
    assert pruned_int8[col["x eager (batch 64)"]] == "failed"
    assert pruned_int8[col["ΔFID-proxy [95%]"]] == "+30.0 [+20.0, +40.0]"
    assert pruned_int8[col["Size (MB)"]] == "0.050" and pruned_int8[col["Ratio"]] == "8.00"
    assert pruned_int8[col["Int8 MACs"]] == "96%"
    assert gan[("prune_structured", "compiled")][col["x best fp32 (batch 1)"]] == \
        f"{NOISE_MARK} 1.00 [0.98-1.02]"
    assert gan[("prune_structured", "eager")][col["x best fp32 (batch 64)"]] == "1.20 [1.18-1.22]"
    assert gan[("prune_structured", "compiled")][col["ΔFID-proxy [95%]"]] == "= eager"
    assert gan[("prune_structured", "onnxruntime")][col["x eager (batch 64)"]] == "skipped"
    base_int8 = gan[("baseline", "onnxruntime_int8")]
    assert base_int8[col["ΔFID-proxy [95%]"]] == f"{NOISE_MARK} +2.0 [-1.0, +5.0]"
    assert base_int8[col["x best fp32 (batch 64)"]] == "1.60 [1.57-1.63]"
    base = gan[("baseline", "eager")]
    assert base[col["x eager (batch 1)"]] == "1.00 (reference)"
    assert base[col["x best fp32 (batch 1)"]] == "0.50 [0.49-0.51]"  # eager is half as fast
    assert gan[("baseline", "onnxruntime")][col["x best fp32 (batch 1)"]] == "1.00 (reference)"
    assert gan[("baseline", "compiled")][col["x best fp32 (batch 64)"]] == "1.00 (reference)"
    assert base[col["Size (MB)"]] == "0.400" and base[col["Ratio"]] == "1.00"


def test_unstable_rows_give_no_figure_anywhere(run) -> None:
    text = "\n".join(str(cell) for t in deployment_tables(run) for row in t.rows for cell in row)
    assert f"{UNSTABLE_SPEEDUP:.2f}" not in text and "3.20" not in text
    notes = " ".join(deployment_tables(run)[0].notes)
    assert "batch 1: onnxruntime (2.00 x eager); batch 64: compiled (1.50 x eager)" in notes
    assert SKIP_REASON in notes and "unstable" in notes
    assert "left in fp32 by the runtimes that change outputs: onnxruntime_int8: " \
           "ConvTranspose x1, Tanh x1." in notes


def test_width_families_named_with_their_model(run) -> None:
    assert family_models(run) == {"gan": ("gan", 1.0), "gan_w2": ("gan", 2.0)}
    titles = [t.title for t in deployment_tables(run)]
    assert len(titles) == 2 and titles[1].startswith("gan_w2 (gan at width 2), CPU")


def test_file_written_only_for_runs_with_runtimes(run, tmp_path: Path) -> None:
    path = write_deployment_dir(run.path)
    assert path == run.path / "tables" / DEPLOYMENT_FILE
    assert path.read_text().count("| Method | Setting | Runtime |") == 2

    from synthetic_results import write_results_dir  # eager only: no deployment view

    eager = write_results_dir(tmp_path / "eager")
    assert not has_runtimes(load_results_dir(eager))
    assert write_deployment_dir(eager) is None
    assert not (eager / "tables" / DEPLOYMENT_FILE).exists()
