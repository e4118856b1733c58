# file_server.bash — a loopback HTTP file server for tests that download
# (`osprey models fetch --url-base`): python3 -m http.server bound to
# 127.0.0.1 on a free port, serving one directory, its access log kept so a
# test can count requests. Sourced (named .bash so the *.sh glob does not
# register it as a test); the caller's EXIT trap must call
# file_server_stop (safe under set -e, returns 0).
#
#   file_server_start DIR   → sets FS_PORT, FS_URL, FS_LOG; 1 on failure
#   file_server_hits PATH   → how many GETs of /PATH the server logged
#   file_server_stop

FS_PID= FS_PORT= FS_URL= FS_LOG=

file_server_start() {
    local dir=$1 i
    FS_LOG=$(mktemp /tmp/osp_file_server.XXXXXX)
    # -u: the "Serving HTTP on ... port N" line must not sit in a buffer.
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$dir" >"$FS_LOG" 2>&1 &
    FS_PID=$!
    for ((i = 0; i < 100; i++)); do
        FS_PORT=$(sed -n 's/^Serving HTTP on .* port \([0-9]*\).*/\1/p' "$FS_LOG" | head -1)
        if [ -n "$FS_PORT" ]; then
            FS_URL=http://127.0.0.1:$FS_PORT
            return 0
        fi
        kill -0 "$FS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "file server did not start:"; cat "$FS_LOG"
    return 1
}

file_server_hits() {
    grep -c "\"GET /$1 HTTP" "$FS_LOG" || true
}

file_server_stop() {
    if [ -n "$FS_PID" ]; then
        kill "$FS_PID" 2>/dev/null || true
        wait "$FS_PID" 2>/dev/null || true
        FS_PID=
    fi
    if [ -n "$FS_LOG" ]; then rm -f "$FS_LOG"; fi
    FS_LOG=
}
