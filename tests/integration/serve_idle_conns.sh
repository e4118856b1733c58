#!/usr/bin/env bash
# serve_idle_conns.sh — the epoll front holds many idle keep-alive
# connections cheaply: 500 clients each make one request and then sit idle
# on their open connection, while other clients' /classify and health
# requests are still answered promptly; the server process stays at a few
# dozen threads (thread-per-connection would need 500, and its default
# connection limit is 256); afterwards every idle connection still works.
# Skips when no ONNX model is found. Under ASan the same counts and bounds
# apply (the bounds are generous: seconds, where epoll answers in ms).
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 1100 ] || ulimit -n 1100 2>/dev/null || {
    echo "SKIP: need 1100 file descriptors (ulimit -n is $(ulimit -n))"; exit 77; }

serve_start --model "$MODEL" --threads 1 --http-mode epoll --http-threads 2 \
            --conn-timeout-s 120 || exit 1
echo "serving on port $SERVE_PORT (pid $SERVE_PID)"
timeout 300 "$PY" - "$SERVE_PORT" "$SERVE_PID" "$SRC/scripts/samples/gradient.jpg" <<'PYEOF' || {
import http.client, socket, subprocess, sys, time
port, pid, image = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
N = 500

def read_response(s):
    """Reads one HTTP/1.1 response with Content-Length; returns (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("connection closed by the server")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    n = 0
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.lower() == "content-length":
            n = int(v)
    while len(rest) < n:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("connection closed mid-body")
        rest += d
    return status, rest

def threads():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("Threads:"):
            return int(l.split()[1])

base = threads()
socks = []
for i in range(N):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
    st, _ = read_response(s)
    assert st == 200, f"connection {i}: status {st}"
    socks.append(s)
held = threads()
print(f"{N} idle keep-alive connections open; server threads {base} -> {held}")
assert held < base + 16, f"server grew from {base} to {held} threads for {N} idle connections"

# Other clients are served promptly while the idle ones stay open.
worst_live = worst_cls = 0.0
for i in range(20):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.monotonic()
    c.request("GET", "/v2/health/ready")
    r = c.getresponse(); r.read()
    worst_live = max(worst_live, time.monotonic() - t0)
    assert r.status == 200, r.status
    if i % 2 == 0:
        t0 = time.monotonic()
        c.request("POST", "/classify", body=image, headers={"Content-Type": "image/jpeg"})
        r = c.getresponse(); b = r.read()
        worst_cls = max(worst_cls, time.monotonic() - t0)
        assert r.status == 200, (r.status, b[:200])
        assert b'"predictions"' in b
    c.close()
print(f"while holding them: worst ready {worst_live*1e3:.1f} ms, worst classify {worst_cls*1e3:.1f} ms")
assert worst_live < 2.0 and worst_cls < 10.0, "requests were not answered promptly"

# Every idle connection still works (none was dropped or starved).
for i, s in enumerate(socks):
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
for i, s in enumerate(socks):
    try:
        st, _ = read_response(s)
    except (TimeoutError, socket.timeout):
        # Which side holds the request tells a lost wake-up (bytes still in
        # the server's receive queue: MHD never read them) from a request
        # read but never answered (server Recv-Q 0).
        lp = s.getsockname()[1]
        print(f"connection {i} of {N}: no answer in 30 s (answered before it: {i})")
        subprocess.run(["ss", "-tnio", f"( sport = :{lp} or dport = :{lp} )"])
        raise
    assert st == 200, f"connection {i} after idling: status {st}"
    s.close()
print(f"all {N} idle connections answered again")
PYEOF
    echo "--- server log"; tail -20 "$SERVE_LOG"; exit 1; }
serve_stop || { echo "serve did not exit 0 on SIGTERM"; tail -20 "$SERVE_LOG"; exit 1; }
echo "serve_idle_conns: ok"
