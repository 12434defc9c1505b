"""Renders loadtest/axes.sh's results: delivery latency along each axis (members,
message size, rooms, replicas), one panel per axis, and prints a markdown table per axis."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, png: str) -> None:
    rows = [json.loads(line) for line in open(src) if line.strip()]
    members = [r for r in rows if r["scenario"] == "fanout" and r["params"]["payload"] == 64
               and r["params"]["rate"] == 50 and r["params"]["subscribers"] != 600]
    replicas = [r for r in rows if r["scenario"] == "fanout" and r["params"]["subscribers"] == 600]
    sizes = [r for r in rows if r["scenario"] == "fanout" and r["params"]["rate"] == 100]
    rooms = [r for r in rows if r["scenario"] == "chat"]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    panels = [
        (axes[0], members, lambda r: r["params"]["subscribers"], "members in the room (50 msg/s)",
         lambda f: (f["p50_ms"], f["p99_ms"], f["max_ms"])),
        (axes[1], sizes, lambda r: r["params"]["payload"], "payload bytes (200 members, 100 msg/s)",
         lambda f: (f["p50_ms"], f["p99_ms"], f["max_ms"])),
        (axes[2], rooms, lambda r: r["params"]["rooms"], "rooms for 1,000 clients (chat mix)",
         lambda f: (f["room"]["p50_ms"], f["room"]["p99_ms"], f["room"]["max_ms"])),
        (axes[3], replicas, lambda r: r["params"]["replicas"], "replicas (600 members, 50 msg/s)",
         lambda f: (f["p50_ms"], f["p99_ms"], f["max_ms"])),
    ]
    for ax, data, x_of, label, y_of in panels:
        data = sorted(data, key=x_of)
        xs = [x_of(r) for r in data]
        ys = [y_of(r["figures"]) for r in data]
        print(f"\n| {label} | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
        for x, (p50, p99, mx) in zip(xs, ys):
            print(f"| {x} | {p50} | {p99} | {mx} |")
        for i, name in enumerate(("p50", "p99", "max")):
            ax.plot(xs, [y[i] for y in ys], marker="o", label=name)
        if len(set(xs)) > 1 and max(xs) / max(min(xs), 1) >= 10:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("delivery latency (ms)")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.grid(True, alpha=0.3)
        ax.legend()
    commit = rows[0]["commit"] if rows else "?"
    fig.suptitle("Switchboard: delivery latency along one axis at a time "
                 f"(2 replicas unless varied, one Redis, one host; commit {commit})")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
