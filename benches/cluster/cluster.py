"""Cluster benchmark driver (run by benches/cluster/run.sh): one process against a Ballista
cluster of one scheduler and two executors on loopback, on the same lake, in the same run.

For each metric of the peer benchmark's metric set, `runs` times each:
  single   `deskpulse metrics M --format csv` in one process (the default engine: on a lake
           of more than a million tickets, the per-ticket stages run in passes);
  one pass the same with `tickets_per_pass` above the lake's size, as on the cluster (which
           has no passes): tells what the cluster gains from skipping passes;
  cluster  a fresh `deskpulse cluster scheduler` and two `deskpulse cluster executor`
           processes (push scheduling, default task slots: one per core each), waited for
           through /readyz; then the same command with `--cluster df://127.0.0.1:PORT`.
Reported: median wall time of the client command, the client's peak memory, and for the
cluster the sum of the scheduler's and executors' peaks (VmHWM, read before they are
stopped; a fresh cluster per run, so each peak is that run's). The cluster's rows must equal
the single process's, in the same order (text exactly, numbers to 1e-9 relative): any
difference fails the run (exit 1).

Uses only the standard library, and the timing helpers of benches/peers/peers.py.
"""

import argparse
import csv
import math
import os
import subprocess
import sys
import time
import urllib.request
from statistics import median

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
from peers import BENCH_CONFIG, METRICS, row, timed  # noqa: E402

SCHEDULER_PORT = 50150
# (flight, grpc, health) ports of the two executors.
EXECUTOR_PORTS = [(50151, 50152, 50153), (50161, 50162, 50163)]


class Cluster:
    """A scheduler and two executors of `bin`, started on loopback, stopped on exit."""

    def __init__(self, bin, work):
        self.procs = []
        log = open(os.path.join(work, "cluster.log"), "a")
        self.procs.append(subprocess.Popen(
            [bin, "cluster", "scheduler", "--bind", f"127.0.0.1:{SCHEDULER_PORT}",
             "--external-host", "127.0.0.1"], stdout=log, stderr=log))
        for i, (flight, grpc, health) in enumerate(EXECUTOR_PORTS):
            self.procs.append(subprocess.Popen(
                [bin, "cluster", "executor", "--scheduler", f"127.0.0.1:{SCHEDULER_PORT}",
                 "--bind-host", "127.0.0.1", "--external-host", "127.0.0.1",
                 "--flight-port", str(flight), "--grpc-port", str(grpc),
                 "--health-port", str(health), "--work-dir", os.path.join(work, f"exec{i}")],
                stdout=log, stderr=log))
        deadline = time.monotonic() + 60
        for _, _, health in EXECUTOR_PORTS:
            while not ready(health):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    self.stop()
                    sys.exit(f"the cluster did not become ready; see {work}/cluster.log")
                time.sleep(0.2)

    def peak_mib(self):
        """The sum of the processes' peak resident memory so far."""
        total = 0
        for p in self.procs:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
        return total

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def on_cluster(bin, work, command, runs, label):
    """Like `timed`, each run on a fresh cluster: (wall, client MiB, cluster MiB) medians."""
    walls, clients, servers = [], [], []
    for _ in range(runs):
        cluster = Cluster(bin, work)
        try:
            wall, client = timed(command + ["--cluster", f"df://127.0.0.1:{SCHEDULER_PORT}"],
                                 1, label)
            servers.append(cluster.peak_mib())
        finally:
            cluster.stop()
        walls.append(wall)
        clients.append(client)
    return median(walls), median(clients), median(servers)


def first_difference(a_path, b_path):
    """Where two CSV results differ (rows in order), or None."""
    with open(a_path, newline="") as fa, open(b_path, newline="") as fb:
        a, b = list(csv.reader(fa)), list(csv.reader(fb))
    if len(a) != len(b):
        return f"{len(a) - 1} rows against {len(b) - 1}"
    for n, (ra, rb) in enumerate(zip(a, b)):
        for col, (x, y) in enumerate(zip(ra, rb)):
            if x == y:
                continue
            try:
                if math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12):
                    continue
            except ValueError:
                pass
            return f"line {n + 1}, column {a[0][col]}: {x!r} against {y!r}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--lake", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    config = os.path.join(args.work, "deskpulse.toml")
    with open(config, "w") as f:
        f.write(BENCH_CONFIG)
    one_pass = os.path.join(args.work, "one-pass.toml")
    with open(one_pass, "w") as f:
        f.write("tickets_per_pass = 1000000000000\n" + BENCH_CONFIG)
    print(f"cluster benchmark on {args.lake} ({os.cpu_count()} cores), median of {args.runs} runs")
    print("| metric | engine | wall | peak memory | time ratio to one process |")
    print("|---|---|---|---|---|")
    for metric in METRICS:
        engines = ("single", "one-pass", "cluster")
        outs = {e: os.path.join(args.work, f"{metric}-{e}.csv") for e in engines}

        def command(engine):
            toml = one_pass if engine == "one-pass" else config
            return ["sh", "-c", '"$0" "$@" > "' + outs[engine] + '"', args.bin, "--config",
                    toml, "--lake", args.lake, "metrics", metric, "--format", "csv"]

        single = timed(command("single"), args.runs, f"{metric}, one process")
        whole = timed(command("one-pass"), args.runs, f"{metric}, one process, one pass")
        wall, client, servers = on_cluster(args.bin, args.work, command("cluster"), args.runs,
                                           f"{metric}, cluster")
        row(metric, "one process", single, None)
        row(metric, "one process, one pass", whole, single)
        print(f"| {metric} | cluster, 2 executors | {wall:.2f} s | {client:.0f} MiB client + "
              f"{servers:,.0f} MiB scheduler and executors | {wall / single[0]:.2f} |", flush=True)
        for engine in ("one-pass", "cluster"):
            problem = first_difference(outs["single"], outs[engine])
            if problem:
                sys.exit(f"DISAGREEMENT: {metric}, {engine}: {problem}")
    print("the one-pass and the cluster's results equal the single process's")


if __name__ == "__main__":
    main()
