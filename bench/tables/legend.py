"""The words around a results table: its caption and the legend lines printed under it."""
from __future__ import annotations

from bench.results import schema
from bench.results.annotations import NoiseBand, floor_summary, n_samples
from bench.results.loading import ResultsDir
from bench.tables.columns import Column
from bench.tables.render import NOISE_MARK, PLUS_MINUS, format_value

_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
BOLD_MEANS = ("bold: the best variant of its column, better beyond the 95% interval of every "
              "other row, the baseline's included (the baseline itself is never bold)")


def count_words(count: int, noun: str) -> str:
    """'one seed', 'three seeds', '12 seeds'."""
    number = _WORDS[count] if 0 <= count < len(_WORDS) else str(count)
    return f"{number} {noun}{'' if count == 1 else 's'}"


def run_name(run: ResultsDir) -> str:
    """The run's name: its config's `name`, else its preset, else its directory's name."""
    config = run.run.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name or run.run.get("preset") or run.path.name)


def caption(run: ResultsDir, family: str, datasets: list[str], seeds: list[int],
            samples: int | None, sources: list[str]) -> str:
    """'gan on mnist5k, one seed (0), 1000 samples per cell; FID-proxy and KID on feature
    network d1ee...; value ± 95% interval; bold: ...'."""
    parts = [f"{family} on {', '.join(datasets)}, {count_words(len(seeds), 'seed')} "
             f"({', '.join(str(s) for s in seeds)})"
             + (f", {samples} generated samples per cell" if samples else "")]
    net = run.run.get("feature_net")
    quality = [m for m in ("fid_proxy", "kid_proxy") if m in sources]
    if quality and isinstance(net, dict) and net.get("id"):
        names = " and ".join("FID-proxy" if m == "fid_proxy" else "KID" for m in quality)
        parts.append(f"{names} on the features of classifier {net['id']}")
    spread = ("over the samples" if len(seeds) == 1
              else "over the samples, widened by the spread of the seeds")
    parts.append(f"value {PLUS_MINUS} 95% interval ({spread}; mean over seeds)"
                 if len(seeds) > 1 else f"value {PLUS_MINUS} 95% interval ({spread})")
    parts.append(BOLD_MEANS)
    return "; ".join(parts)


def _noise_lines(band: NoiseBand | None, decimals: int) -> list[str]:
    if band is None:
        return ["Speedup noise: not measured in this run (no baseline timed against itself), "
                "so no p50 or speedup is bold."]
    low, high = min(band.measured), max(band.measured)
    measured = (f"{low:.{decimals}f}" if low == high else
                f"{low:.{decimals}f} to {high:.{decimals}f} over {len(band.measured)} "
                "measurements")
    batches = ", ".join(str(b) for b in band.batches)
    noun = "batch" if len(band.batches) == 1 else "batches"
    return [f"Speedup noise: the baseline timed against itself gave {measured} (CPU, {noun} "
            f"{batches}); a speedup between {band.low:.{decimals}f} and "
            f"{band.high:.{decimals}f} (1/f to f, f the largest deviation from 1 either way) is "
            f"within noise ({NOISE_MARK}); the baseline shows 1 with that band; p50 and speedup "
            "are bold only beyond it."]


def legend(run: ResultsDir, family: str, columns: list[Column], scales: dict[str, float],
           decimals: dict[str, int], seeds: int, noise: bool, collapsed: bool,
           band: NoiseBand | None) -> list[str]:
    """The lines under a family's table: what ± and bold mean, the noise mark, collapse, KID's
    scale, class columns, the real-vs-real floor, the speedup noise, unstable latency."""
    n = n_samples(run)
    samples = f"the {n} samples" if n else "the samples"
    lines = [f"{PLUS_MINUS}: 95% interval. Quality: bootstrap over {samples} of each seed"
             + (f", widened by the spread of the {seeds} seeds (half-width sqrt(mean(h_i^2)/n "
                f"+ t_(n-1)^2 s^2/n)); other columns: t-interval over seeds." if seeds > 1
                else "; other columns: one measurement.")
             + f" Bold: {BOLD_MEANS.removeprefix('bold: ')}; against the baseline a quality "
             "change counts only where its paired interval excludes 0; a collapsed model, a "
             "metric without interval or a row with an unstable latency seed is never bold."]
    if noise:
        lines.append(f"{NOISE_MARK}: within noise: the paired change against the same-seed "
                     "baseline (same latents and test images) has a 95% interval that includes "
                     "0; for a speedup: inside the speedup noise band below.")
    if collapsed:
        lines.append("collapsed: the output no longer depends on the latent (one image for "
                     "every z); its quality is not ranked.")
    sources = {c.source for c in columns}
    if "kid_proxy" in sources:
        scale = scales.get("kid_proxy", 1.0)
        lines.append("KID: unbiased squared MMD with the cubic kernel on the classifier's "
                     "features, "
                     + (f"multiplied by {scale:g}." if scale != 1.0
                        else "as computed (not rescaled: the features are not normalised)."))
    if "elbo_bpd" in sources:
        lines.append("-ELBO (bits/dim): the negative ELBO in bits per pixel of the 256-level "
                     "discretisation, -ELBO / (D ln 2), an upper bound on the NLL; lower is "
                     "better, 8 is a uniform distribution.")
    if sources & {"classes_present", "mean_confidence"}:
        lines.append("Classes: digits that each hold at least 5% of the samples under the "
                     "classifier (of 10); Conf.: mean top-class probability of the samples (0-1).")
    floors = floor_summary(run)
    shown = [(c, *floors[c.source]) for c in columns if c.source in floors]
    if shown:
        parts = []
        for column, mean, spread in shown:
            scale = scales.get(column.source, 1.0)
            name = "KID" if column.source == "kid_proxy" else column.header
            # In the column's own format: the floor is read against the column's values.
            text = format_value(mean * scale, spread * scale, decimals.get(column.source, 2))
            parts.append(f"{name} {text}")
        at = f" at n={n}" if n else ""
        lines.append(f"Real-vs-real floor{at} (mean {PLUS_MINUS} std over resamples, on the "
                     "columns' scale): " + ", ".join(parts) + ".")
    if "speedup" in sources:
        lines += _noise_lines(band, decimals.get("speedup", 2))
    unstable = run.latency[run.latency["status"] == schema.STATUS_UNSTABLE]
    family_unstable = int(unstable["cell_id"].isin(
        run.results.loc[run.results["family"] == family, "cell_id"]).sum())
    if family_unstable:
        lines.append(f"Latency: {family_unstable} unstable row(s) (relative IQR above the "
                     "threshold after re-measuring) give no p50 or speedup: 'unstable', or "
                     "'(k unstable)' beside the mean of the other seeds.")
    return lines
