"""Test agent: print its pid and 'ready', then sleep until signalled.

With `--ignore-term` it traps SIGTERM (and keeps running), so only SIGKILL ends it.
"""

import os
import signal
import sys
import time

if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, lambda *_: print("ignoring SIGTERM", flush=True))
print(f"pid {os.getpid()}", flush=True)
print("ready", flush=True)
while True:
    time.sleep(0.05)
