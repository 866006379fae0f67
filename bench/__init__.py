"""The benchmark suite (`./scripts/bench`): each figure beside a baseline run in the same script.

Tests never time anything; the suite's own tests run this code on a tiny scale.
"""
