#!/usr/bin/env bash
# dispatch_event.sh — the dispatcher's event path (`--io event`) against
# stand-in workers (dispatch_fake_backend.py): many concurrent clients
# checked byte for byte (Content-Length and chunked answers), garbage and
# mid-answer closes → retried elsewhere, or a clean 502/503 when no good
# backend is left, a slow answer not blocking its loop, a hanging backend →
# 504 at the deadline, SIGTERM draining. Needs no model. The logic is in
# dispatch_event.py.
set -u
: "${OSPREY:?OSPREY must point at the osprey binary}"
exec /usr/bin/python3 "$(dirname "$0")/dispatch_event.py"
