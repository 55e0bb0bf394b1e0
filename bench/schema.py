"""Result file names and columns: the single source for the writer and every reader (versioned)."""
from __future__ import annotations

SCHEMA_VERSION = 1

RESULTS_FILE = "results.csv"
LATENCY_FILE = "latency.csv"
LATENCY_SAMPLES_FILE = "latency_samples.csv"
RUN_FILE = "run.json"

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"

ID_COLUMNS = ["cell_id", "dataset", "family", "method", "seed", "status", "error"]
# One column per setting; empty where a method does not have it. Other settings: settings_json.
SETTING_COLUMNS = [
    "scope",
    "threshold",
    "sparsity_target",
    "bits",
    "granularity",
    "rounding",
    "width",
    "finetune_steps",
]
EXTRA_SETTING_COLUMNS = ["execution", "settings_json"]
QUALITY_COLUMNS = [
    "fid_proxy",
    "kid_proxy",
    "kid_proxy_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "recon_bce_nats",
    "elbo_nats",
    "nll_iwae_nats",
    "output_drift_mse",
]
SIZE_COLUMNS = [
    "params",
    "nonzero_params",
    "sparsity",
    "bits_per_weight",
    "size_packed_bytes",
    "size_file_bytes",
    "compression_ratio",
    "macs",
    "macs_effective",
]
TIME_COLUMNS = ["compress_seconds", "eval_seconds"]
RESULTS_COLUMNS = (
    ID_COLUMNS + SETTING_COLUMNS + EXTRA_SETTING_COLUMNS + QUALITY_COLUMNS + SIZE_COLUMNS
    + TIME_COLUMNS
)

LATENCY_COLUMNS = [
    "cell_id",
    "device",
    "batch_size",
    "threads",
    "execution",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_iqr_ms",
    "speedup",
    "throughput_sps",
    "peak_mem_bytes",
    "peak_mem_reserved_bytes",
    "status",
    "error",
]
LATENCY_SAMPLE_COLUMNS = ["cell_id", "device", "batch_size", "block", "seconds_per_call"]

# Direction of each metric: -1 lower is better, +1 higher is better (compare, tables, plots).
DIRECTIONS = {
    "fid_proxy": -1,
    "kid_proxy": -1,
    "precision": +1,
    "recall": +1,
    "density": +1,
    "coverage": +1,
    "recon_bce_nats": -1,
    "elbo_nats": +1,
    "nll_iwae_nats": -1,
    "output_drift_mse": -1,
    "size_file_bytes": -1,
    "compression_ratio": +1,
    "macs": -1,
    "latency_p50_ms": -1,
    "speedup": +1,
    "throughput_sps": +1,
    "peak_mem_bytes": -1,
}
