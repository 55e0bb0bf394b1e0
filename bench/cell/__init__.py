"""What one cell measures: compression, quality, size, latency, notes and training curves."""
