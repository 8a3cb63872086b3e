"""Test agent: start a grandchild that ignores SIGTERM and shares our stdout, print its pid.

`--exit` makes the agent itself exit at once afterwards, leaving the grandchild behind.
"""

import subprocess
import sys
import time

code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(0.05)"
child = subprocess.Popen([sys.executable, "-c", code])
print(f"grandchild {child.pid}", flush=True)
print("ready", flush=True)
if "--exit" in sys.argv:
    sys.exit(0)
while True:
    time.sleep(0.05)
