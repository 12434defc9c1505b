#!/usr/bin/env python3
"""What each connection allocates, by jemalloc size class.

Takes two dumps of a gateway's `/debug/allocator` (jemalloc's statistics as JSON), one
before and one while N clients are connected, and prints the live regions each
connection added per size class, their bytes, and the total:

    curl -s 127.0.0.1:8080/debug/allocator > before.json
    # ... connect N clients (e.g. `swarm --mode idle --conns 10000 ...`) ...
    curl -s 127.0.0.1:8080/debug/allocator > loaded.json
    python3 loadtest/size_classes.py before.json loaded.json 10000

Classes that changed by less than 5 % of N are left out of the table but counted in the
total; large allocations (hash tables of N entries) are summed on one line.
"""

import json
import sys


def load(path):
    stats = json.load(open(path))["jemalloc"]
    arenas = stats["stats.arenas"]
    # "merged" sums the arenas; a process that used only one prints just that one.
    merged = arenas.get("merged") or next(v for k, v in arenas.items() if k.isdigit())
    small = zip((b["size"] for b in stats["arenas"]["bin"]), (b["curregs"] for b in merged["bins"]))
    large = zip(
        (b["size"] for b in stats["arenas"]["lextent"]),
        (b["curlextents"] for b in merged["lextents"]),
    )
    return dict(small), dict(large)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    (small0, large0), (small1, large1) = load(sys.argv[1]), load(sys.argv[2])
    n = int(sys.argv[3])
    total = 0
    print(f"{'class (B)':>9}  {'per conn':>8}  {'B/conn':>8}")
    for size in sorted(small1):
        grown = small1[size] - small0.get(size, 0)
        total += grown * size
        if abs(grown) >= n * 0.05:
            print(f"{size:>9}  {grown / n:>8.2f}  {grown * size / n:>8.1f}")
    large = sum((large1[s] - large0.get(s, 0)) * s for s in large1)
    total += large
    print(f"{'large':>9}  {'':>8}  {large / n:>8.1f}")
    print(f"{'total':>9}  {'':>8}  {total / n:>8.1f}")


if __name__ == "__main__":
    main()
