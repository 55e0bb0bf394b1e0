"""Sweep configs: parsing, validation, derived defaults and the generated reference docs."""
