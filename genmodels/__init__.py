"""Reference generative models, datasets and training (knows nothing about compression)."""
