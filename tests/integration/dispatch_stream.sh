#!/usr/bin/env bash
# dispatch_stream.sh — request bodies streamed through the dispatcher's
# event path (docs/adr/0050-dispatch-body-streaming.md) against stand-in
# workers (dispatch_fake_backend.py): bodies on both sides of the 64 KiB
# streaming threshold and of the 1 MiB retry copy arrive byte for byte;
# a worker that reads slowly pushes back on the client instead of being
# buffered; retries where they are safe; a client that leaves mid-body
# leaves nothing held. Needs no model. The logic is in dispatch_stream.py.
set -u
: "${OSPREY:?OSPREY must point at the osprey binary}"
exec /usr/bin/python3 "$(dirname "$0")/dispatch_stream.py"
