"""The results history of nightly runs: the store and its trends."""
