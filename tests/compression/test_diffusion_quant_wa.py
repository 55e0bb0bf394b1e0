"""Method "quant_wa": W/A fake quantization of a diffusion UNet with timestep-aware ranges."""
from __future__ import annotations

import pytest
import torch
from diffusion_standin import standin

from compression.api import (
    EXECUTION_SIMULATED,
    CompressionContext,
    MethodNotApplicable,
    compress,
    config_from_dict,
)
from compression.diffusion import QuantWAConfig
from compression.diffusion.actquant import SplitActivationFakeQuant
from compression.quantization.core import sqnr_db
from compression.quantization.ptq import ActivationFakeQuant

CTX = CompressionContext(seed=0)


def _sample(model, n: int = 4, seed: int = 1) -> torch.Tensor:
    with torch.no_grad():
        return model(model.latent(n, torch.Generator().manual_seed(seed)))


def _ddpm(steps: int = 4):
    from genmodels.models.diffusion import DDPM

    torch.manual_seed(0)
    return DDPM(width=0.5, steps=steps).eval()


def test_split_ranges_follow_each_part_of_the_concat() -> None:
    model = standin()
    # minmax: the exact observed ranges (the same step for both, drawn from the same seed).
    cm = compress(model, QuantWAConfig(calibration="minmax", calibration_samples=4), CTX)
    (a_lo, a_hi), (b_lo, b_hi) = cm.notes["activation_ranges"]["unet.skip"]
    # Part b is 50x part a (diffusion_standin): its own range is more than 10x wider.
    assert (b_hi - b_lo) > 10 * (a_hi - a_lo)
    assert cm.notes["split_shortcut_layers"] == {"unet.conv_out": [2, 2], "unet.skip": [2, 2]}
    unsplit = compress(model, QuantWAConfig(calibration="minmax", calibration_samples=4,
                                            split_shortcut=False), CTX)
    ((lo, hi),) = unsplit.notes["activation_ranges"]["unet.skip"]
    assert (lo, hi) == pytest.approx((min(a_lo, b_lo), max(a_hi, b_hi)))
    assert unsplit.notes["split_shortcut_layers"] == {}


def test_split_quantizes_the_small_part_finer() -> None:
    # Known answer: a part's error is bounded by half of its own step, (hi - lo) / 255 / 2.
    x = torch.cat([torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8),
                   torch.linspace(-100, 100, 64).reshape(1, 1, 8, 8)], dim=1)
    hook = SplitActivationFakeQuant((1, 1), [(-1.0, 1.0), (-100.0, 100.0)], 8)
    (xq,) = hook(torch.nn.Identity(), (x,))
    err = (xq - x).abs().amax(dim=(0, 2, 3))
    assert err[0] <= 2 / 255 / 2 + 1e-6 and err[1] <= 200 / 255 / 2 + 1e-4
    single = ActivationFakeQuant(-100.0, 100.0, 8)
    (xs,) = single(torch.nn.Identity(), (x,))
    assert (xs - x)[:, 0].abs().max() > 10 * err[0]


def test_activations_are_on_the_grid_at_every_sampling_step() -> None:
    model = standin(steps=5)
    cm = compress(model, QuantWAConfig(a_bits=4, calibration_samples=4), CTX)
    lo, hi = cm.notes["activation_ranges"]["unet.conv_a"][0]
    quant = ActivationFakeQuant(lo, hi, 4)
    seen: list[torch.Tensor] = []
    # Registered after the fake-quant pre-hook, so it sees the quantized input.
    cm.model.unet.conv_a.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    _sample(cm.model)
    assert len(seen) == 5  # one UNet call per step
    for x in seen:
        codes = x / quant.scale + quant.zero_point
        assert torch.allclose(codes, codes.round(), atol=1e-3)
        assert codes.round().unique().numel() <= 16


def test_w8a8_is_close_to_fp32_and_w4a4_is_not() -> None:
    # On the UNet's eps at three timesteps (a random-init DDPM's images saturate at 0/1, so
    # its samples are no measure of closeness).
    model = _ddpm()
    gen = torch.Generator().manual_seed(2)
    x, t = torch.randn(3, 1, 28, 28, generator=gen), torch.tensor([999, 500, 10])

    def eps(m) -> torch.Tensor:
        with torch.no_grad():
            return m.unet(x, t)

    ref = eps(model)
    w8a8 = eps(compress(model, QuantWAConfig(calibration_samples=8), CTX).model)
    w4a4 = eps(compress(model, QuantWAConfig(4, 4, calibration_samples=8), CTX).model)
    assert sqnr_db(ref, w8a8) > 25.0
    assert sqnr_db(ref, w8a8) > sqnr_db(ref, w4a4) + 10.0


def test_quant_wa_is_deterministic_given_seed_and_z() -> None:
    model = _ddpm(steps=3)
    config = QuantWAConfig(w_bits=4, a_bits=8, calibration="minmax", calibration_samples=4)
    first, second = compress(model, config, CTX), compress(model, config, CTX)
    assert first.notes["activation_ranges"] == second.notes["activation_ranges"]
    assert torch.equal(_sample(first.model), _sample(second.model))
    assert torch.equal(_sample(first.model), _sample(first.model))


def test_quant_wa_records_execution_and_settings() -> None:
    cm = compress(_ddpm(steps=2), QuantWAConfig(calibration_samples=2), CTX)
    assert cm.execution == EXECUTION_SIMULATED
    assert len(cm.notes["calibration_timesteps"]) == 2
    assert set(cm.notes["activation_ranges"]) == {n.rsplit(".", 1)[0] for n in cm.quantized}
    assert cm.settings()["bits"] == 8 and cm.settings()["activation_bits"] == 8


@pytest.mark.parametrize("head_stem", [8, 0])
def test_head_and_stem_keep_their_bits(head_stem) -> None:
    # W4A4 with head_stem_bits 8: the UNet's conv_in and conv_out hold 8-bit weight codes and
    # 8-bit input grids, every other layer 4; with 0 every layer is at 4.
    model = _ddpm(steps=2)
    cm = compress(model, QuantWAConfig(4, 4, calibration_samples=2, head_stem_bits=head_stem),
                  CTX)
    io = {"unet.conv_in", "unet.conv_out"}
    assert set(model.io_layers) == io
    weight_bits = {name.rsplit(".", 1)[0]: q.bits for name, q in cm.quantized.items()}
    want = {n: 8 if head_stem and n in io else 4 for n in weight_bits}
    assert weight_bits == want and io <= set(weight_bits)
    for name, module in cm.model.named_modules():
        hooks = [h for h in module._forward_pre_hooks.values()
                 if isinstance(h, ActivationFakeQuant | SplitActivationFakeQuant)]
        if name in weight_bits:
            parts = hooks[0].parts if isinstance(hooks[0], SplitActivationFakeQuant) else hooks
            assert {p.bits for p in parts} == {want[name]}, name
    assert ("head_stem_layers" in cm.notes) == (head_stem == 8)


@pytest.mark.parametrize(("table", "message"), [
    ({"calibration": "mean"}, "calibration must be one of"),
    ({"a_bits": 1}, "bits must be an integer"),
    ({"split_shortcut": "yes"}, "split_shortcut must be true or false"),
    ({"head_stem_bits": 9}, "bits must be an integer"),
    ({"a_bit": 8}, "unknown key"),
])
def test_bad_settings_are_refused(table: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict({"method": "quant_wa", **table})


def test_refused_for_a_family_without_a_sampler(make_model) -> None:
    with pytest.raises(MethodNotApplicable, match="'quant_wa' applies only to diffusion.*'gan'"):
        compress(make_model("gan"), QuantWAConfig(), CTX)


def test_the_row_notes_name_the_split_layers() -> None:
    from bench.cell.notes import cell_notes

    cm = compress(standin(), QuantWAConfig(calibration_samples=2), CTX)
    assert cell_notes(cm, collapsed=False)["split_shortcut_layers"] == {
        "unet.conv_out": [2, 2], "unet.skip": [2, 2]}
