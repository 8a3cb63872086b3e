"""A longer run of the translator fuzz properties (tests/test_translators_fuzz.py) than CI's.

    python scripts/fuzz_translators.py [EXAMPLES_PER_PROPERTY] [--seed N]

Runs every property (each registered dialect pair's request, response and stream translation, and the
SSE parser) with EXAMPLES_PER_PROPERTY generated inputs (default 3000; CI runs 25). Without --seed the
run is deterministic; with it, Hypothesis draws a different sequence. Exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="?", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    env = {**os.environ, "IRON_FUZZ_EXAMPLES": str(args.examples), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_translators_fuzz.py"), "-q",
           "-p", "no:randomly", "-p", "no:cacheprovider", "--timeout=0"]
    if args.seed is not None:
        env["IRON_FUZZ_RANDOM"] = "1"
        cmd.append(f"--hypothesis-seed={args.seed}")
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=ROOT, check=False)
    print(f"{args.examples} examples per property in {time.monotonic() - start:.0f} s, exit {done.returncode}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
