"""One cell run twice in one process gives the same row (the smoke rvae prune_magnitude cell)."""
from __future__ import annotations

import math

import genbench_tiny  # noqa: F401 - registers the "tiny16" dataset
import torch

from bench.config.sweep import parse_config
from bench.results.schema import QUALITY_COLUMNS, SIZE_COLUMNS
from bench.run.grid import expand
from bench.run.runner import feature_task, run_cell, train_task

# The smoke preset's rvae pruning cell (row dropout in training, 20 masked fine-tuning steps),
# on the tiny dataset with small evaluation sizes. Before the fix its fine-tuning drew row
# dropout from the global RNG, which the first run advanced: the second run differed.
TOML = """
name = "rvae-smoke-cell"
dataset = "tiny16"
train = "smoke"
devices = ["cpu"]
batch_sizes = [1]

[eval]
n_samples = 32
kid_subsets = 2
kid_subset_size = 16
iwae_k = 2
n_recon = 32

[latency]
min_run_time = 0.001
memory = false

[families.rvae]
epochs = 1
max_steps = 2
latent_dim = 4

[[sweep]]
method = "prune_magnitude"
sparsity = [0.5]
scope = ["global"]
finetune_steps = [20]
"""


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_a_cell_run_twice_in_one_process_gives_identical_rows() -> None:
    config = parse_config(TOML)
    cell = next(c for c in expand(config) if c.method == "prune_magnitude")
    features = feature_task(config)
    trained = train_task(config, cell.train_key)
    assert not features.error and not trained.error
    assert trained.model.row_dropout > 0  # the stochastic path this test is about
    rows = []
    for _ in range(2):
        row = run_cell(config, cell, trained, features).record["result"]
        assert row["status"] == "ok", row["error"]
        rows.append(row)
        torch.rand(100)  # unrelated random work between the two runs, as in a resumed sweep
    differ = [c for c in QUALITY_COLUMNS + SIZE_COLUMNS
              if c in rows[0] and not _same(rows[0][c], rows[1][c])]
    assert not differ, {c: (rows[0][c], rows[1][c]) for c in differ}
