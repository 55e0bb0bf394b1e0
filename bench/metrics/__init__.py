"""Quality, likelihood and cost metrics of generative models; the public API of bench.metrics."""

from bench.metrics.cost import (  # noqa: F401
    LatencyResult,
    check_device,
    device_timer,
    latency_for_model,
    measure_latency,
    measure_speedup,
    model_call,
    speedup_for_models,
)
from bench.metrics.evaluate import EvalSettings, QualityEvaluator, make_feature_fn  # noqa: F401
from bench.metrics.likelihood import (  # noqa: F401
    elbo_nats,
    iwae_bound,
    nll_iwae_nats,
    output_drift,
    recon_bce_nats,
    reconstruct,
)
from bench.metrics.memory import (  # noqa: F401
    PeakMemory,
    cpu_allocator_peak,
    cuda_peak_memory,
    peak_memory,
    peak_memory_for_model,
)
from bench.metrics.quality import (  # noqa: F401
    density_coverage,
    features_to_statistics,
    fid_proxy,
    frechet_distance,
    kid,
    kth_neighbour_radii,
    mmd2_unbiased,
    polynomial_kernel,
    precision_recall,
    real_floor,
    sample_metrics,
)
from bench.metrics.resident import malloc_bytes_in_use, resident_weight_bytes  # noqa: F401
