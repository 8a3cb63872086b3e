"""Test agent: one line of N bytes ('x' * N), then a short line."""

import sys

n = int(sys.argv[1])
sys.stdout.write("x" * n + "\n")
sys.stdout.write("after\n")
