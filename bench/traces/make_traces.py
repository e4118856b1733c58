#!/usr/bin/env python3
"""Writes the autoscaler's benchmark traces (bench/traces/*.csv).

Each trace is a CSV with the header `t_s,rps`: the offered request rate
from t_s until the next row (the last row lasts one second), the format
`osprey autoscale simulate --trace` and `osprey load --trace` read. The
shapes are the ones an autoscaler is judged on: a step (x4), a spike
(x10 for 30 s), a ramp, a compressed diurnal sine and a bursty trace. Rates
are for workers of about 10 requests/s (a base of 8/s is one worker at
80 %); the simulator's --capacity scales the meaning.

Deterministic: run it again and the files are byte-identical.
    python3 bench/traces/make_traces.py [OUT_DIR]
"""
import math
import os
import random
import sys


def write(path, rows):
    with open(path, "w") as f:
        f.write("t_s,rps\n")
        for t, r in rows:
            f.write(f"{t:g},{r:g}\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    base = 8
    # step: x4 at 60 s, held for 9 minutes (the HPA's 5-minute scale-down
    # window fits inside).
    write(f"{out}/step.csv", [(0, base), (60, 4 * base), (600, 4 * base)])
    # spike: x10 for 30 s at 60 s, then back to the base.
    write(f"{out}/spike.csv", [(0, base), (60, 10 * base), (90, base), (600, base)])
    # ramp: base to x8 over 5 minutes in 10 s steps, held 5 minutes.
    rows = [(t, round(base + (7 * base) * t / 300, 2)) for t in range(0, 300, 10)]
    rows += [(300, 8 * base), (600, 8 * base)]
    write(f"{out}/ramp.csv", rows)
    # sine: a day compressed to 20 minutes, base to x6, twice.
    rows = [(t, round(base + 5 * base * (1 - math.cos(2 * math.pi * t / 1200)) / 2, 2))
            for t in range(0, 2400, 10)]
    rows.append((2400, base))
    write(f"{out}/sine.csv", rows)
    # bursty: x2 of the base, with 10-20 s bursts of x5 every 40-120 s.
    rng = random.Random(7)
    rows, t = [], 0
    while t < 1200:
        quiet = rng.randint(40, 120)
        rows.append((t, 2 * base))
        t += quiet
        if t >= 1200:
            break
        rows.append((t, 5 * base))
        t += rng.randint(10, 20)
    rows.append((1200, 2 * base))
    write(f"{out}/bursty.csv", rows)


if __name__ == "__main__":
    main()
