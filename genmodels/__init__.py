"""Reference generative models, datasets and training for genbench (knows nothing about compression)."""
