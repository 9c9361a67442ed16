"""The benchmarks behind `python -m edge_sr.benchmark`, one module per subcommand (common.py: what they share),
and the ARM64 check behind `python -m edge_sr.armcheck` (arm64.py)."""
