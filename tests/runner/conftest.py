"""Fixtures of the runner tests: the tiny dataset, a tiny sweep TOML and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import genbench_tiny  # noqa: F401 - registers the "tiny16" dataset in this process
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

TINY_TOML = """
name = "tiny"
description = "tests"
dataset = "tiny16"
train = "smoke"
seeds = [0]
devices = ["auto"]
batch_sizes = [2]
timeout_s = 120

[eval]
n_samples = 32
kid_subsets = 2
kid_subset_size = 16
iwae_k = 2
n_recon = 32

[latency]
min_run_time = 0.005
memory = false
max_rel_iqr = 1e9  # no stability gate: 5 ms timings on a shared machine are noisy by nature

[families.gan]
epochs = 1
max_steps = 2
latent_dim = 4
[families.vae]
epochs = 1
max_steps = 2
latent_dim = 4

[[sweep]]
method = "prune_magnitude"
sparsity = [0.5]

[[sweep]]
method = "quant"
bits = [8]
granularity = ["tensor"]
rounding = ["naive"]
"""


@pytest.fixture
def tiny_toml() -> str:
    return TINY_TOML


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "sweep.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def cli_env() -> dict[str, str]:
    """Environment of a `genbench` subprocess: the tiny plugin importable and registered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")])
    env["GENBENCH_PLUGINS"] = "genbench_tiny"
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=cli_env(), cwd=REPO, timeout=timeout)
