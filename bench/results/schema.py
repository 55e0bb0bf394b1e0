"""Result file names and columns: the single source for the writer and every reader (versioned)."""
from __future__ import annotations

SCHEMA_VERSION = 2

RESULTS_FILE = "results.csv"
LATENCY_FILE = "latency.csv"
LATENCY_SAMPLES_FILE = "latency_samples.csv"
RUN_FILE = "run.json"

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
# A latency row whose relative IQR stayed above the threshold after every re-measurement: its
# figures are kept, but it is never used for a speedup claim or a regression verdict.
STATUS_UNSTABLE = "unstable"

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
# pipeline_json: every step's full settings, in order (the cell's identity; merged setting
# columns alone would let two different pipelines share a key). notes: what ran simulated, layers
# pruned to 100%, a collapsed output (JSON object, empty when there is nothing to say).
EXTRA_SETTING_COLUMNS = ["execution", "settings_json", "pipeline_json", "notes"]
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
    # The same two bounds in bits per dimension (pixel) of the 256-level discretisation:
    # -nats / (D ln 2), lower is better, 8 = a uniform pmf (genmodels.models.likelihood).
    "elbo_bpd",
    "iwae_bpd",
    "output_drift_mse",
]
# Every quality metric with an interval: `<metric>_ci_low/_ci_high` (95%, bootstrap over samples;
# seeds add their spread when aggregated). Against the same (family, seed) baseline on the same
# latents and test images: `<metric>_delta` (variant - baseline), its paired 95% interval and
# `<metric>_delta_significant` (the interval excludes 0). kid_proxy_std is a spread, not a metric.
INTERVAL_METRICS = [m for m in QUALITY_COLUMNS if m != "kid_proxy_std"]
DELTA_METRICS = [m for m in INTERVAL_METRICS if m != "output_drift_mse"]  # drift is a delta itself
CI_SUFFIXES = ("_ci_low", "_ci_high")
DELTA_SUFFIXES = ("_delta", "_delta_ci_low", "_delta_ci_high", "_delta_significant")
INTERVAL_COLUMNS = [m + s for m in INTERVAL_METRICS for s in CI_SUFFIXES] + [
    m + s for m in DELTA_METRICS for s in DELTA_SUFFIXES
]
# Does the output still depend on the latent? latent_std: per-pixel std over the common latents,
# averaged over pixels; collapsed: True when it is below COLLAPSE_STD (one image for every z).
COLLAPSE_COLUMNS = ["latent_std", "collapsed"]
COLLAPSE_STD = 1e-4
# Which digits the samples show, under the feature net's classifier (bench.metrics.classes):
# classes with >= 5% of the samples, entropy of the class histogram / log K, mean max-softmax;
# class_fractions is the histogram itself, a JSON list of K fractions (text).
CLASS_COLUMNS = ["classes_present", "class_entropy_norm", "mean_confidence", "class_fractions"]
SIZE_COLUMNS = [
    "params",
    "nonzero_params",
    "sparsity",  # zeros among the prunable weights (what a sparsity target applies to)
    "sparsity_model",  # zeros among every parameter of the deployed model (biases, norms too)
    "bits_per_weight",
    "size_packed_bytes",
    "size_file_bytes",
    "compression_ratio",
    "macs",
    "macs_effective",
    "int8_mac_fraction",  # MACs that ran on int8 kernels / all MACs (int8-kernel cells only)
]
TIME_COLUMNS = ["compress_seconds", "eval_seconds"]
# Which runtime ran the row (compression.runtimes: eager, compiled, onnxruntime, ...). results.csv
# holds one eager row per cell, plus one row per (cell, runtime) whose deployment changes the
# outputs by design (int8): its quality measured again on the same latents, likelihoods empty.
# export_max_abs_err: max |deployed(z) - eager(z)| on the check latents; fp32_ops: JSON list of
# the op types the runtime left in fp32 (e.g. ["GRU x1"]). A file without `runtime` is eager.
RUNTIME_EAGER = "eager"
RUNTIME_RESULTS_COLUMNS = ["runtime", "export_max_abs_err", "fp32_ops"]
RESULTS_COLUMNS = (
    ID_COLUMNS + SETTING_COLUMNS + EXTRA_SETTING_COLUMNS + QUALITY_COLUMNS + INTERVAL_COLUMNS
    + COLLAPSE_COLUMNS + CLASS_COLUMNS + SIZE_COLUMNS + TIME_COLUMNS + RUNTIME_RESULTS_COLUMNS
)
# Columns added after results were first written at SCHEMA_VERSION 2: a reader fills them empty
# when an older results.csv lacks them (older results stay loadable and comparable).
ADDED_RESULTS_COLUMNS = [
    c for c in RESULTS_COLUMNS if c.startswith(("elbo_bpd", "iwae_bpd"))
] + CLASS_COLUMNS + RUNTIME_RESULTS_COLUMNS

LATENCY_COLUMNS = [
    "cell_id",
    "runtime",  # rows per (cell, runtime, device, batch size); speedup against eager fp32
    "device",
    "batch_size",
    "threads",
    "execution",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_iqr_ms",
    "latency_rel_iqr",  # max IQR / p50 of the variant's and the baseline's blocks (the gate)
    "attempts",  # measurements taken (1 + re-measurements of an unstable row)
    "load_avg_1m",  # os.getloadavg()[0] when the row was measured
    "speedup",
    "throughput_sps",
    "peak_mem_bytes",
    "peak_mem_reserved_bytes",
    "export_max_abs_err",  # of the runtime's deployment on this device (empty for eager)
    "status",
    "error",
]
LATENCY_SAMPLE_COLUMNS = ["cell_id", "runtime", "device", "batch_size", "block",
                          "seconds_per_call"]
# Absent from latency files of older code (read as eager, no export error).
ADDED_LATENCY_COLUMNS = ["runtime", "export_max_abs_err"]
ADDED_LATENCY_SAMPLE_COLUMNS = ["runtime"]

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
    "elbo_bpd": -1,
    "iwae_bpd": -1,
    "classes_present": +1,
    "class_entropy_norm": +1,
    "mean_confidence": +1,
    "output_drift_mse": -1,
    "size_file_bytes": -1,
    "compression_ratio": +1,
    "macs": -1,
    "latency_p50_ms": -1,
    "speedup": +1,
    "throughput_sps": +1,
    "peak_mem_bytes": -1,
}
