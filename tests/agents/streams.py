"""Test agent: stdout and stderr lines, invalid UTF-8 bytes, CRLF, and a final line with no newline."""

import sys
import time

out, err = sys.stdout.buffer, sys.stderr.buffer
out.write(b"out 1\n")
out.flush()
err.write(b"err 1\n")
err.flush()
time.sleep(0.05)  # keep the cross-stream order observable
out.write(b"bin \xff\xfe\x00 end\n")
out.write(b"crlf\r\n")
out.write(b"progress 10%\rprogress 100%\n")
out.flush()
err.write(b"err partial")
err.flush()
out.write(b"out partial")
out.flush()
