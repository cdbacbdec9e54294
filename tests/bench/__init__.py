"""Benchmarks, run as scripts (``python tests/bench/ogc.py``); tests import their helpers as ``bench.*``."""
