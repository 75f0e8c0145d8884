"""Benchmark adapters (AlpacaEval 2, Arena-Hard, RewardBench) and the judges they share.

Each adapter registers one ``Benchmark`` in ``bench.registry.BENCHMARKS``; its scoring arithmetic
is a set of pure functions in the same module, tested against the official implementations.
"""
