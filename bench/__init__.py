"""double-boiler's mini benchmark: `python -m bench` (see bench/cli.py)."""
