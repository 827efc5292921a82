"""The demo page at `/` and the benchmark's I/O-bound endpoints."""
