"""Bundled teaching scenarios, one TOML file each; `l2sim list` shows them."""
