"""The PAR benchmark harness: processes, load generators, scenarios and the report.

Standard library only; driven by bench/bench.py (which bench/run.sh runs).
"""
