#!/usr/bin/env python3
"""Compares the metric rows two deskpulse builds print for one lake (before and after a change).

    python3 benches/compare_metrics.py BEFORE_BIN AFTER_BIN LAKE [METRIC ...]
    python3 benches/compare_metrics.py BEFORE_BIN AFTER_BIN BEFORE_LAKE:AFTER_LAKE [METRIC ...]

Runs `deskpulse --lake LAKE metrics NAME --format csv` with each binary (default metrics: the
peer benchmark's set, channel_satisfaction, pair_summary, kpis); given two lakes, each binary
reads its own (the same files ingested by each, when the builds write different lakes). Fails
unless both print the same rows in the same order, text cells equal and numbers equal to 1e-9
relative (floating sums may differ in their last digits with the order DataFusion adds
partitions in). Prints the largest relative difference per metric.
"""
import csv
import io
import subprocess
import sys


def rows(binary, lake, metric):
    out = subprocess.run([binary, "--lake", lake, "metrics", metric, "--format", "csv"],
                         check=True, capture_output=True, text=True).stdout
    return list(csv.reader(io.StringIO(out)))


def compare(a, b, metric):
    if len(a) != len(b):
        sys.exit(f"{metric}: {len(a)} rows before, {len(b)} after")
    worst = 0.0
    for line, (x, y) in enumerate(zip(a, b), start=1):
        if len(x) != len(y):
            sys.exit(f"{metric} line {line}: {len(x)} columns before, {len(y)} after")
        for u, v in zip(x, y):
            if u == v:
                continue
            try:
                fu, fv = float(u), float(v)
            except ValueError:
                sys.exit(f"{metric} line {line}: {u!r} before, {v!r} after")
            diff = abs(fu - fv) / max(abs(fu), 1.0)
            if diff > 1e-9:
                sys.exit(f"{metric} line {line}: {u} before, {v} after")
            worst = max(worst, diff)
    return worst


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    before, after, lakes = sys.argv[1:4]
    before_lake, _, after_lake = lakes.partition(":")
    after_lake = after_lake or before_lake
    metrics = sys.argv[4:] or ["channel_satisfaction", "pair_summary", "kpis"]
    for m in metrics:
        a, b = rows(before, before_lake, m), rows(after, after_lake, m)
        print(f"{m}: {len(a) - 1} rows agree, largest relative difference {compare(a, b, m):.1e}")


if __name__ == "__main__":
    main()
