"""`python -m benchmarks [group ...] [--quick]`: see benchmarks/run.py."""

from benchmarks.run import main

main()
