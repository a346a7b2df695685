#!/usr/bin/env bash
# Peer benchmark: deskpulse against DuckDB and the reference VADER (vaderSentiment) on the same
# generated data, in the same run. Not part of `cargo test`; see docs/benchmarks.md.
#
#   benches/peers/run.sh [--tickets N] [--runs R] [--work DIR]
#
# Builds the release binary, creates a Python virtual environment with duckdb, pandas (with
# pyarrow, its Parquet reader) and vaderSentiment from PyPI (once, in WORK/venv), generates N
# tickets (default 20000, small enough for a quick check), then times each step R times
# (default 3) under /usr/bin/time -v
# and prints the median wall time and peak memory of each tool, and the ratio to deskpulse.
# A peer whose results disagree with deskpulse's fails the run.
set -euo pipefail
. "$(dirname "$0")/../args.sh"
mkdir -p "$work"
(cd "$root" && cargo build --release --quiet)
bin="$root/target/release/deskpulse"
venv="$work/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import duckdb, pandas, pyarrow, vaderSentiment" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "duckdb==2.0.1" "pandas==3.1.1" "pyarrow==26.0.1" "vaderSentiment==3.3.2"
fi
data="$work/data-$tickets"
if [ ! -f "$data/tickets.csv" ]; then
  "$bin" generate --tickets "$tickets" --seed 42 --out "$data"
fi
exec "$venv/bin/python" "$root/benches/peers/peers.py" \
  --bin "$bin" --data "$data" --work "$work/run-$tickets" --runs "$runs"
