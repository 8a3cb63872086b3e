"""Test agent: print a line, then exit with the given status."""

import sys

print("about to exit", sys.argv[1], flush=True)
sys.exit(int(sys.argv[1]))
