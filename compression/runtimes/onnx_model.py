"""A GenerativeModel that runs exported ONNX graphs (ONNX Runtime or OpenVINO) instead of torch."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compression.runtimes.graphs import DENOISE, ROW_INIT, ROW_STEP, SAMPLING, state_names
from genmodels.base import GenerativeModel
from genmodels.data import from_rows

GraphRunner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]  # feeds -> outputs in order


class OnnxGraphModel(GenerativeModel):
    """forward(z) -> images in [0, 1], computed by `backend` from the graphs' bytes.

    Holds no nn.Parameter (so `device` reports the backend's device) and keeps the graphs as
    bytes: sessions are built lazily, dropped when pickled or deep-copied, and rebuilt after.
    Only the sampling path is deployed, so `is_vae` is False (no likelihood on this model).
    Row-driven graphs (init + step) are driven row by row as RecurrentVAE.decode(z) runs free.
    """

    is_vae = False

    def __init__(self, like: GenerativeModel, graphs: dict[str, bytes], backend: str,
                 make_runner: Callable[[str, bytes, int], GraphRunner],
                 threads: int | None = None, device: str = "cpu") -> None:
        super().__init__(like.image_shape, like.latent_dim, like.width)
        self.family = like.family  # instance attribute shadows the ClassVar: same family
        self.graphs, self.backend, self.make_runner = dict(graphs), backend, make_runner
        self.threads = int(threads if threads is not None else torch.get_num_threads())
        self._device = torch.device(device)
        self.row_dim = getattr(like, "row_dim", 0)
        self.n_rows = getattr(like, "n_rows", 0)
        self.states = state_names(like) if ROW_STEP in graphs else ()
        if DENOISE in graphs:  # the DDIM sampler's schedule, as the model's own ddim_sample
            self.timesteps = like.ddim_timesteps(like.steps)
            self.alphas_bar = list(like._alphas_bar64)
        self._runners: dict[str, GraphRunner] | None = None

    @property
    def device(self) -> torch.device:
        return self._device

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_runners"] = None  # sessions are not picklable; rebuilt from the bytes
        return state

    def runners(self) -> dict[str, GraphRunner]:
        if self._runners is None:
            self._runners = {name: self.make_runner(self.backend, blob, self.threads)
                             for name, blob in self.graphs.items()}
        return self._runners

    @torch.no_grad()
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z_np = np.ascontiguousarray(z.detach().float().cpu().numpy())
        run = self.runners()
        if SAMPLING in run:
            images = run[SAMPLING]({"z": z_np})[0]
        elif DENOISE in run:
            images = self._drive_denoiser(run[DENOISE], z_np)
        else:
            images = self._drive_rows(run, z_np)
        return torch.from_numpy(np.asarray(images)).to(self._device)

    def _drive_denoiser(self, denoise: GraphRunner, z: np.ndarray) -> np.ndarray:
        return _ddim_loop(self, denoise, z)

    def _drive_rows(self, run: dict[str, GraphRunner], z: np.ndarray) -> np.ndarray:
        state = run[ROW_INIT]({"z": z})
        prev = np.zeros((z.shape[0], self.row_dim), dtype=np.float32)
        rows = []
        for _ in range(self.n_rows):  # free-running: row t feeds on row t-1's probabilities
            feeds = {"prev": prev, "z": z, **dict(zip(self.states, state, strict=True))}
            prev, *state = run[ROW_STEP](feeds)
            rows.append(prev)
        rows_t = torch.from_numpy(np.stack(rows, axis=1))  # (B, H, W*C)
        return from_rows(rows_t, self.image_shape).numpy()


def _ddim_loop(model: OnnxGraphModel, denoise: GraphRunner, z: np.ndarray) -> np.ndarray:
    """DDPM.ddim_sample with the exported denoiser: same timesteps, same ddim_step update."""
    from genmodels.models.diffusion import ddim_step

    x = torch.from_numpy(z).reshape(-1, *model.image_shape)
    ts, alphas = model.timesteps, model.alphas_bar
    for i, t in enumerate(ts):
        eps = denoise({"x": x.numpy(), "t": np.full(x.shape[0], t, dtype=np.int64)})[0]
        prev = alphas[ts[i + 1]] if i + 1 < len(ts) else 1.0
        x = ddim_step(x, torch.from_numpy(np.asarray(eps)), alphas[t], prev)
    return ((x + 1) / 2).clamp(0, 1).numpy()


def graph_bytes(files: dict[str, Any]) -> dict[str, bytes]:
    """Graph name -> file bytes (the deployable artefact, kept in memory)."""
    return {name: Path(path).read_bytes() for name, path in files.items()}
