#!/usr/bin/env bash
# dispatch_faults_blocking.sh — dispatch_faults.sh on the thread-per-connection
# path (`--io blocking`, kept selectable next to the default event path):
# the same behaviour is required of both.
export OSPREY_DISPATCH_IO=blocking
exec bash "$(dirname "$0")/dispatch_faults.sh"
