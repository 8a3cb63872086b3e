"""Crash-test child: records analytics events into an Outbox forever, printing each event_id only
after `Outbox.add` has returned (i.e. once the event is acknowledged). The parent SIGKILLs it at an
arbitrary moment and checks that every acknowledged event is delivered exactly once.

Usage: python outbox_writer.py DB_PATH IC_TOKEN
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from iron_tui.core.analytics import Outbox
from iron_tui.core.analytics_protocol import completed_event


def main() -> None:
    outbox = Outbox(Path(sys.argv[1]))
    token = sys.argv[2]
    n = 0
    while True:
        event_id = str(uuid.uuid4())
        outbox.add(completed_event(ic_token=token, event_id=event_id, timestamp_ms=int(time.time() * 1000),
                                   model="gpt-4o-mini", provider="openai", input_tokens=n, output_tokens=1,
                                   cost_micros=n))
        sys.stdout.write(event_id + "\n")
        sys.stdout.flush()
        n += 1


if __name__ == "__main__":
    main()
