#!/usr/bin/env bash
# Cluster benchmark: the metric set in one process against a two-executor Ballista cluster on
# loopback, on the same lake, in the same run. Not part of `cargo test`; see docs/scaling-out.md.
#
#   benches/cluster/run.sh [--tickets N] [--runs R] [--work DIR]
#
# Builds the release binary with the `cluster` feature, uses the lake of the peer benchmark
# (WORK/run-N/lake-scored; generated and ingested here if it is not there yet), and prints the
# median wall time and peak memory of each metric three ways: one process (in passes, as by
# default, and in one pass) and the cluster (benches/cluster/cluster.py).
set -euo pipefail
. "$(dirname "$0")/../args.sh"
(cd "$root" && cargo build --release --quiet --features cluster)
bin="$root/target/release/deskpulse"
data="$work/data-$tickets"
lake="$work/run-$tickets/lake-scored"
if [ ! -d "$lake" ]; then
  [ -f "$data/tickets.csv" ] || "$bin" generate --tickets "$tickets" --seed 42 --out "$data"
  "$bin" --lake "$lake" ingest "$data"/{tickets,interactions,ratings,adoptions}.csv >/dev/null
fi
exec python3 "$root/benches/cluster/cluster.py" \
  --bin "$bin" --lake "$lake" --work "$work/cluster-$tickets" --runs "$runs"
