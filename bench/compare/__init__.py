"""Comparing two runs: settings checks, quality and latency verdicts, the report."""
