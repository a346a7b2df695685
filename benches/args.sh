# The benchmark scripts' arguments, sourced by benches/*/run.sh: sets tickets, runs, work and
# root (the checkout), and checks for /usr/bin/time, which measures peak memory.
# shellcheck shell=bash
tickets=20000
runs=3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work="$root/target/peers"
while [ $# -gt 0 ]; do
  case "$1" in
    --tickets) tickets=${2:?"--tickets needs a value"}; shift 2 ;;
    --runs) runs=${2:?"--runs needs a value"}; shift 2 ;;
    --work) work=${2:?"--work needs a value"}; shift 2 ;;
    *) echo "usage: $0 [--tickets N] [--runs R] [--work DIR]" >&2; exit 2 ;;
  esac
done
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 2; }
