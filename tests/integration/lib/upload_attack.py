"""upload_attack.py — the memory attack of issue 17 section 2, as a client:
N connections that each declare a large body (Content-Length) and send
most of it, then hold the connection open (a byte now and then, so neither
the idle timeout nor the minimum body rate cuts them) until the run ends.
Used by tests/integration/serve_memory.sh and bench/upload_attack.sh.

Prints one JSON line at the end: how many connections sent their whole
part ("held"), how many were answered before (and with what status:
"answered": {"503": n}), how many were reset or closed without an answer.

usage: upload_attack.py HOST PORT PATH CLIENTS DECLARED_BYTES SEND_BYTES
                        HOLD_S [RATE_BYTES_PER_S]
"""
import json
import select
import socket
import sys
import time


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n, declared, send = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    hold_s = float(sys.argv[7])  # the whole run, from the first connect
    rate = float(sys.argv[8]) if len(sys.argv) > 8 else 0  # 0 = at once
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n"
            ).encode()
    chunk = b"\xff" * 65536
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.setblocking(False)
        conns.append({"s": s, "sent": -len(head), "head": head, "state": "send",
                      "resp": b""})
    answered = {}

    def read_answer(c):
        """Reads what the server sent; an answer's status is counted, a
        close or reset without one is "reset"."""
        try:
            d = c["s"].recv(65536)
        except BlockingIOError:
            return
        except OSError:
            d = b""
        c["resp"] += d
        if b"\r\n" in c["resp"]:
            code = c["resp"].split(b" ", 2)[1].decode()
            answered[code] = answered.get(code, 0) + 1
            c["state"] = "answered"
        elif not d:
            c["state"] = "reset"

    start = time.monotonic()
    end = start + hold_s
    last_trickle = start
    while time.monotonic() < end:
        now = time.monotonic()
        want_w = [c for c in conns if c["state"] == "send"]
        rl = [c["s"] for c in conns if c["state"] in ("send", "hold")]
        _, wl, _ = select.select([], [c["s"] for c in want_w], [], 0.05)
        for c in want_w:
            if c["s"] not in wl:
                continue
            if c["sent"] < 0:
                buf = c["head"][len(c["head"]) + c["sent"]:]
            else:
                left = send - c["sent"]
                if rate > 0:
                    allowed = int(rate * (now - start)) - c["sent"]
                    left = min(left, allowed)
                buf = chunk[:max(0, min(left, len(chunk)))]
            if not buf:
                if c["sent"] >= send:
                    c["state"] = "hold"
                continue
            try:
                k = c["s"].send(buf)
                c["sent"] += k
                if c["sent"] >= send:
                    c["state"] = "hold"
            except BlockingIOError:
                pass
            except OSError:
                # The server answered early and closed (its reset stops
                # our send): the answer is still readable before the error.
                read_answer(c)
        r, _, _ = select.select(rl, [], [], 0)
        for c in conns:
            if c["s"] in r and c["state"] in ("send", "hold"):
                read_answer(c)
        # keep the held ones alive under the idle timeout (a byte per 5 s)
        if now - last_trickle > 5:
            last_trickle = now
            for c in conns:
                if c["state"] == "hold" and c["sent"] < declared - 1:
                    try:
                        c["s"].send(b"\xff")
                        c["sent"] += 1
                    except OSError:
                        c["state"] = "reset"
    held = sum(1 for c in conns if c["state"] == "hold")
    sending = sum(1 for c in conns if c["state"] == "send")
    reset = sum(1 for c in conns if c["state"] == "reset")
    for c in conns:
        c["s"].close()
    print(json.dumps({"clients": n, "held": held, "still_sending": sending,
                      "answered": answered, "closed_unanswered": reset}))


if __name__ == "__main__":
    main()
