"""Training curves beside a run: DIR/training/<family>-seed<seed>.json from each cell's record."""

from __future__ import annotations

import json

from bench.cell.training_curves import curve_path, read_training_curves, write_training_curve
from bench.results.store import ResultStore

CURVE = [{"epoch": 0, "loss": 2.5, "d_loss": 1.25}, {"epoch": 1, "loss": 2.0, "d_loss": 1.0}]


def _record(cell_id: str, family: str, seed: int, curve: list | None) -> dict:
    info = {} if curve is None else {"cached": True, "curve": curve}
    return {"cell_id": cell_id, "result": {"cell_id": cell_id, "family": family, "seed": seed},
            "train_info": info}


def test_putting_a_cell_writes_its_baselines_curve_with_the_documented_keys(tmp_path) -> None:
    store = ResultStore(tmp_path)
    store.put(_record("a1", "gan", 3, CURVE))
    path = tmp_path / "training" / "gan-seed3.json"
    assert path == curve_path(tmp_path, "gan", 3)
    assert json.loads(path.read_text()) == {"family": "gan", "seed": 3, "curve": CURVE}
    # A second cell of the same baseline leaves the file as it is; a failed training (no info)
    # writes nothing.
    assert write_training_curve(tmp_path, _record("a2", "gan", 3, CURVE)) is None
    store.put(_record("b1", "vae", 0, None))
    assert not curve_path(tmp_path, "vae", 0).exists()


def test_read_training_curves_sorted_and_skipping_unreadable_files(tmp_path) -> None:
    for family, seed in (("vae", 1), ("gan", 2), ("gan", 0)):
        write_training_curve(tmp_path, _record(f"{family}{seed}", family, seed, CURVE))
    (tmp_path / "training" / "broken.json").write_text("{not json")
    curves = read_training_curves(tmp_path)
    assert [(c["family"], c["seed"]) for c in curves] == [("gan", 0), ("gan", 2), ("vae", 1)]
    assert read_training_curves(tmp_path / "absent") == []


def test_fid_proxy_sample_size_is_stated_in_the_file_and_on_the_plot_axis(tmp_path) -> None:
    from bench.plots.curves import _samples_note

    fid_curve = [{**point, "fid_proxy": 90.0 - 10 * point["epoch"]} for point in CURVE]
    record = _record("g", "gan", 0, fid_curve)
    record["train_info"]["curve_fid_samples"] = 500
    write_training_curve(tmp_path, record)
    payload = json.loads(curve_path(tmp_path, "gan", 0).read_text())
    assert payload == {"family": "gan", "seed": 0, "curve": fid_curve, "fid_proxy_samples": 500}
    assert _samples_note(tmp_path) == ", 500 samples"
    write_training_curve(tmp_path, _record("v", "vae", 0, CURVE))  # losses only: no count
    assert "fid_proxy_samples" not in json.loads(curve_path(tmp_path, "vae", 0).read_text())
    assert _samples_note(tmp_path) == ", 500 samples"
    other = _record("r", "rvae", 1, fid_curve)
    other["train_info"]["curve_fid_samples"] = 1000
    write_training_curve(tmp_path, other)
    assert _samples_note(tmp_path) == ", 500-1,000 samples"
    assert _samples_note(tmp_path / "absent") == ""
