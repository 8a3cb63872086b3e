"""Test agent: print this process's environment as one JSON line."""

import json
import os

print(json.dumps(dict(os.environ)))
