"""Benchmarks that print their figures and the command that produced them.

A package so that the benches share one harness (`bench.harness`) by a plain import: run each one as a
module from the repository root, e.g. ``venv/bin/python -m bench.peers``. The package `action_rec`
never imports from here; the benches import from it.
"""
