"""The benchmarks' scoring arithmetic as pure functions: records in, dict out.

One module per benchmark. Nothing here loads a model, asks a judge or reads a benchmark's data;
the adapters (``bench/alpaca_eval.py`` ...) do that and hand the records over. Each function is
tested against the official implementation or an independent computation on the same inputs.
"""
