"""Benchmarks: each ``bench_*.py`` module here has a ``main()`` that prints its figures as ratios
against a baseline measured in the same process. Run them all with ``python -m benchmarks``,
or some with ``python -m benchmarks ollama gpu`` (names match the module names)."""
