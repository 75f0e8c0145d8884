"""Benchmark adapters (AlpacaEval 2, Arena-Hard, RewardBench), the judges they share, and the benchmark
evaluation of a training run.

``bench.catalog`` declares each benchmark (name, model kind, judge, typed options) in
``bench.registry.BENCHMARKS`` without importing its adapter; the adapters (``bench/alpaca_eval.py``
...) load data, generate, judge and write files; the scoring arithmetic is pure functions in
``bench.metrics``, tested against the official implementations. ``bench.environment`` runs the
benchmarks on a run's final models. Nothing here imports ``reproduce``.
"""
