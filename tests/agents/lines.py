"""Test agent: print N numbered lines on stdout (default 10)."""

import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
for i in range(n):
    print(f"line {i}")
