"""What each config key means, for the README reference where its field has no comment."""

# key, or METHOD.key where a method means something else by it -> one line of Markdown.
NOTES = {
    "name": "required; `[A-Za-z0-9_.-]+`; names the output directory `results/<name>`",
    "source": "",
    "description": "one line, shown by `genbench presets`",
    "dataset": "a registered dataset: mnist5k (embedded), mnist, fashion-mnist, cifar10, ...",
    "data_root": "root of the torchvision datasets (mnist, fashion-mnist, cifar10)",
    "download": "let torchvision download a missing dataset",
    "train": "base training budgets: `default` or `smoke`; `[families.X]` overrides them",
    "seeds": "training seeds; a scalar is a list of one",
    "devices": "latency devices: cpu, cuda, auto (cpu + cuda, cuda rows skipped without a GPU)",
    "quality_device": "where the quality metrics run (once per cell): cpu, cuda or auto",
    "batch_sizes": "latency batch sizes, each >= 1",
    "runtimes": "runtimes each variant is deployed on and timed with (compression.runtimes: "
                "eager, compiled, onnxruntime, onnxruntime_int8, openvino, sparse); `eager` is "
                "always measured; rows per (cell, runtime, device, batch); adding one to a "
                "finished run measures only its rows on resume (not part of cell ids)",
    "timeout_s": "seconds per cell; 0 disables the timeout (not part of cell ids)",
    "features": "feature net of FID-proxy/KID/P/R/D/C: `shipped` (frozen weights in "
                "genmodels/assets) or `retrain` (train here)",
    "eval": "table `[eval]`, below", "latency": "table `[latency]`, below",
    "families": "tables `[families.X]`, below", "pipelines": "`[[sweep]]` and `[[pipeline]]`",
    "n_samples": "generated images per metric evaluation (and real test images compared)",
    "kid_subsets": "KID subsets averaged", "kid_subset_size": "images per KID subset",
    "pr_k": "k of the k-NN precision/recall manifolds (arXiv 1904.06991)",
    "dc_k": "k of density/coverage (arXiv 2002.09797)",
    "iwae_k": "importance samples of the VAE IWAE bound (arXiv 1509.00519)",
    "n_recon": "test images reconstructed (VAE reconstruction error)",
    "seed": "seed of the sampling and the bootstrap",
    "epochs": "passes over the training set", "batch_size": "minibatch size",
    "lr": "learning rate (Adam)", "latent_dim": "latent dimension of the model",
    "beta1": "Adam beta1", "beta2": "Adam beta2",
    "model_kwargs": "family-specific constructor arguments, e.g. `{cell = \"lstm\"}`",
    "families.model": "the registered model this table trains (gan, vae, rvae, ...); a table of "
                      "another name is a further baseline of it, e.g. `[families.gan_w2]` with "
                      "`model = \"gan\"`, `width = 2.0`",
    "families.width": "channels and hidden units times this (> 0; 1 = the reference model); "
                      "part of the checkpoint key and of cell ids",
    "max_attempts": "measurements of a row at most (see max_rel_iqr)",
    "wait_idle_timeout_s": "longest idle wait per measurement (`--wait-idle-timeout`)",
    "idle_busy_cores": "cores other processes may keep busy on an \"idle\" machine",
    # method fields
    "sparsity": "fraction of the prunable weights removed, in [0, 1)",
    "threshold": "zero every weight with \\|w\\| < threshold (>= 0)",
    "scope": "ranking scope: `layer`, `global` or `lamp` (arXiv 2010.07611)",
    "iterations": "prune in this many steps (Zhu & Gupta schedule, arXiv 1710.01878)",
    "finetune_steps": "fine-tuning steps after pruning, masks fixed (0: none)",
    "include_bias": "prune biases too",
    "teacher_weight": "weight of matching the uncompressed model's outputs while fine-tuning",
    "width": "student width as a fraction of the teacher's, in (0, 1]",
    "steps": "training steps",
    "alpha_output": "weight of the output-matching loss", "alpha_latent": "weight of the "
    "latent-matching loss", "alpha_task": "weight of the family's own training loss",
    "bits": "weight bits, 2..8",
    "scheme": "`affine` (zero point) or `symmetric`",
    "granularity": "one scale per `tensor`, `channel` or `group`",
    "group_size": "weights per scale when granularity = `group`",
    "rounding": "range choice: `naive` (per-tensor min-max), `minmax`, `mse` (clip ratio that "
                "minimises the error)",
    "activation_bits": "fake-quantize each layer's input to this many bits (none: fp32)",
    "estimator": "gradient estimator: `ste` or `lsq` (arXiv 1902.08153)",
    "distill_weight": "weight of matching the fp32 model's outputs",
    "backend": "`auto`, `torchao` or `torch.ao-dynamic`", "mode": "`dynamic` or `weight_only`",
    "avg_bits": "average bits per weight; per-layer widths chosen by sensitivity",
    # METHOD.field: where a method's field means something else than the name's note above
    "prune_structured.sparsity": "fraction of channels / hidden units removed (by L1 norm)",
    "prune_adaptive.sparsity": "global sparsity of the prunable weights; per-layer ones chosen",
    "qat.granularity": "one scale per `tensor` or `channel`",
    "qat.bits": "weight bits of the final codes, 2..8",
    "steps.steps": "DDIM sampling steps (eta = 0) of the copy; diffusion families only",
}
