"""The HTML report, its findings and sections, its screenshot, and README syncing."""
