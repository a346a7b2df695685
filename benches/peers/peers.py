"""Peer benchmark driver (run by benches/peers/run.sh inside its virtual environment).

Each step runs every tool as its own process under /usr/bin/time -v, `runs` times, and reports
the median wall time and the median peak resident memory, with the ratio to deskpulse
(ratio < 1: the peer is faster). The peers' results are checked against deskpulse's; a
disagreement fails the run (exit 1).

Steps:
  ingest     CSV -> Parquet: `deskpulse ingest --no-sentiment` versus DuckDB
             `COPY (SELECT ... FROM read_csv(...)) TO ... (FORMAT parquet)` with the canonical
             columns and types (score_5 computed from score_raw and scale, as deskpulse does),
             partitioned by month like the lake, in the lake's codec (snappy). The input files
             are read once before each run (both tools read them from the page cache) and the
             two tools' runs alternate.
  metrics    the metric set: `deskpulse metrics` channel_satisfaction, pair_summary and kpis
             versus the same definitions in DuckDB SQL (duckdb_metrics.sql) and in a plain
             pandas script (pandas_metrics.py), over the same lake (ingested once, with
             sentiment, untimed); every shared column of every row is compared.
             deskpulse is timed twice: first after the ingest (its first process computes the
             per-ticket stages and keeps them in the lake's _derived/, removed before each run),
             then with those stages kept.
  reports    `deskpulse report weekly` and `report dashboard` of the generator's last week, one
             after the other in one process each, on the metric step's lake; the issue's target is
             that both together take no longer than DuckDB's metric set, so the row's ratio is
             DuckDB's metric-set time divided by the two reports' time (>= 1: target met). Timed
             after the metric set (the stages kept) and first after the ingest (none kept). The
             weekly report keeps the dashboard's figures in the lake (_derived/reports/) and the
             dashboard reads them; the dashboard alone, computing its figures (the stages kept),
             is timed too.
  sentiment  VADER compound of the same texts (interaction bodies and rating comments, up to one
             million): `deskpulse sentiment` on one thread and on all cores versus the reference
             vaderSentiment, in one process and in a process pool of all cores.

The second form, `peers.py TASK ARGS...`, is what the timed peer processes run.
"""

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.abspath(__file__)
PEERS = os.path.dirname(HERE)
MAX_TEXTS = 1_000_000

# The metric families compared, with the columns that identify a row.
METRICS = {
    "channel_satisfaction": ["period", "channel"],
    "pair_summary": ["dimension", "value"],
    "kpis": ["period"],
}
# Reply-latency targets in calendar time for the metric step: DuckDB and pandas have no
# business-hours calendar (deskpulse's business-seconds columns are computed, not compared).
BENCH_CONFIG = """[targets]
phone = "1m"
chat = "5m"
messaging = "5m"
sms = "5m"
social = "5m"
bot = "5m"
email = "4h"
portal = "4h"
walk_in = "8h"
screen_share = "8h"
other = "8h"
"""

# The canonical columns and types of each table (DESIGN section 3), as DuckDB expressions over
# the generator's CSV columns (read as text, so that DuckDB's type sniffing plays no part).
TS = "CAST({0} AS TIMESTAMPTZ)"
TABLES = {
    "tickets": {
        "partition": "opened_at",
        "columns": [
            ("ticket_id", "ticket_id"), ("source", "source"),
            ("opened_at", TS), ("first_response_at", TS), ("resolved_at", TS),
            ("closed_at", TS), ("updated_at", TS), ("status", "status"),
            ("priority", "CAST(priority AS INTEGER)"), ("priority_raw", "priority_raw"),
            ("category", "category"), ("subcategory", "subcategory"), ("service", "service"),
            ("issue_key", "issue_key"), ("channel", "channel"), ("channel_raw", "channel_raw"),
            ("requester_id", "requester_id"), ("assignee_id", "assignee_id"),
            ("assignment_group", "assignment_group"), ("tier", "tier"),
            ("reassignment_count", "CAST(reassignment_count AS INTEGER)"),
            ("reopen_count", "CAST(reopen_count AS INTEGER)"),
            ("made_sla", "CAST(made_sla AS BOOLEAN)"),
            ("resolution_path", "resolution_path"),
            ("survey_offered", "CAST(survey_offered AS BOOLEAN)"),
        ],
    },
    "interactions": {
        "partition": "at",
        "columns": [
            ("interaction_id", "interaction_id"), ("ticket_id", "ticket_id"), ("at", TS),
            ("seq", "CAST(seq AS INTEGER)"), ("actor_role", "actor_role"),
            ("actor_id", "actor_id"), ("channel", "channel"),
            ("is_public", "CAST(is_public AS BOOLEAN)"), ("body", "body"),
            ("sentiment", "CAST(NULL AS DOUBLE)"),
        ],
    },
    "ratings": {
        "partition": "rated_at",
        "columns": [
            ("rating_id", "rating_id"), ("ticket_id", "ticket_id"),
            ("interaction_id", "interaction_id"), ("requester_id", "requester_id"),
            ("rated_at", TS), ("channel", "channel"), ("score_raw", "score_raw"),
            ("scale", "scale"),
            ("score_5", """CASE scale
                WHEN 'five' THEN CAST(score_raw AS DOUBLE)
                WHEN 'good_bad' THEN CASE lower(score_raw) WHEN 'good' THEN 5.0 ELSE 1.0 END
                WHEN 'three' THEN 1 + (CAST(score_raw AS DOUBLE) - 1) * 2
                WHEN 'ten' THEN 1 + (CAST(score_raw AS DOUBLE) - 1) * 4 / 9
                WHEN 'eleven' THEN 1 + CAST(score_raw AS DOUBLE) * 4 / 10 END"""),
            ("comment", "comment"), ("sentiment", "CAST(NULL AS DOUBLE)"),
        ],
    },
}


class Failed(Exception):
    """A peer that did not finish (e.g. out of memory), with its wall time and peak so far."""


def timed(cmd, runs, label, env=None, may_fail=False, before=None):
    """Runs `cmd` `runs` times under /usr/bin/time -v; returns the median seconds and MiB.
    `before`, if given, is called (untimed) before each run.

    A failure ends the benchmark, unless `may_fail` (a peer that may run out of memory at
    scale): then it raises Failed with what the failed run measured."""
    walls, peaks = [], []
    for _ in range(runs):
        if before:
            before()
        with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
            p = subprocess.run(["/usr/bin/time", "-v", "-o", t.name] + cmd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, text=True)
            report = t.read()
            if p.returncode != 0:
                if not may_fail:
                    sys.exit(f"{label} failed ({p.returncode}): {p.stderr[-2000:]}")
                wall, peak = parse_time(report)
                last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
                why = "killed by signal 9 (out of memory)" if "signal 9" in report else last
                raise Failed(f"did not finish: {why}, after {wall:.0f} s at {peak:,.0f} MiB")
        wall, peak = parse_time(report)
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), statistics.median(peaks)


def alternated(tools, runs, before=None):
    """Times each (cmd, label) of `tools` `runs` times, taking turns; returns each one's median
    seconds and MiB."""
    times = [[] for _ in tools]
    for _ in range(runs):
        for (cmd, label), seen in zip(tools, times):
            seen.append(timed(cmd, 1, label, before=before))
    return [(statistics.median(w for w, _ in seen), statistics.median(m for _, m in seen))
            for seen in times]


def read_through(files):
    """Reads each file once, so that the next reader finds it in the page cache."""
    for f in files:
        with open(f, "rb") as h:
            while h.read(1 << 20):
                pass


def parse_time(report):
    """Wall seconds and peak MiB from a /usr/bin/time -v report."""
    wall, peak = 0.0, 0.0
    for line in report.splitlines():
        line = line.strip()
        if line.startswith("Elapsed (wall clock) time"):
            for part in line.rsplit(" ", 1)[1].split(":"):
                wall = wall * 60 + float(part)
        elif line.startswith("Maximum resident set size"):
            peak = int(line.rsplit(" ", 1)[1]) / 1024
    return wall, peak


def row(step, tool, result, base):
    wall, peak = result
    ratio = wall / base[0] if base else 1.0
    print(f"| {step} | {tool} | {wall:.2f} s | {peak:.0f} MiB | {ratio:.2f} |", flush=True)


def duckdb_ingest(data, out):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table, spec in TABLES.items():
        def column(name, expr):
            # Quoted: some canonical names (`at`) are DuckDB keywords.
            if "{0}" in expr:
                expr = expr.format(f'"{name}"')
            elif expr.isidentifier():
                expr = f'"{expr}"'
            return f'{expr} AS "{name}"'
        cols = ", ".join(column(n, e) for n, e in spec["columns"])
        part = spec["partition"]
        con.execute(f"""
            COPY (SELECT {cols}, strftime(CAST("{part}" AS TIMESTAMPTZ), '%Y-%m') AS month
                  FROM read_csv('{data}/{table}.csv', header = true, all_varchar = true))
            TO '{out}/{table}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (month))""")


def duckdb_metrics(lake, out):
    import duckdb
    con = duckdb.connect()
    with open(os.path.join(PEERS, "duckdb_metrics.sql"), encoding="utf-8") as f:
        con.execute(f.read().replace("$LAKE", lake))
    for metric in METRICS:
        con.execute(f"COPY (SELECT * FROM {metric}) TO '{out}/{metric}.csv' (HEADER)")


def vader_scores(texts_file, processes, out):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    with open(texts_file, encoding="utf-8") as f:
        texts = f.read().split("\n")[:-1]
    if processes == 1:
        analyser = SentimentIntensityAnalyzer()
        scores = [analyser.polarity_scores(t)["compound"] for t in texts]
    else:
        from multiprocessing import Pool
        with Pool(processes, initializer=_init_worker) as pool:
            scores = pool.map(_score, texts, chunksize=2000)
    if out:
        with open(out, "w") as f:
            f.writelines(f"{s}\n" for s in scores)


_WORKER = None


def _init_worker():
    global _WORKER
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    _WORKER = SentimentIntensityAnalyzer()


def _score(text):
    return _WORKER.polarity_scores(text)["compound"]


def live_files(lake):
    """The lake's current data files, by the Delta log of each table: a lake directory also holds
    files a later commit replaced (an ingest's automatic compaction, a superseded row), which
    `deskpulse compact` deletes only past its retention, so a glob would count their rows twice.
    Replays the JSON commits (paths are URI-encoded in the log); the benchmark's lakes are
    fresh and have no checkpoint."""
    import json
    from urllib.parse import unquote
    live = {}
    for table in TABLES:
        log = f"{lake}/{table}/_delta_log"
        if os.path.exists(f"{log}/_last_checkpoint"):
            sys.exit(f"{log} has a checkpoint, which this benchmark does not read")
        files = set()
        for commit in sorted(f for f in os.listdir(log) if f.endswith(".json")):
            with open(f"{log}/{commit}", encoding="utf-8") as f:
                for action in map(json.loads, f):
                    if "add" in action:
                        files.add(unquote(action["add"]["path"]))
                    elif "remove" in action:
                        files.discard(unquote(action["remove"]["path"]))
        live[table] = sorted(files)
    return live


def linked_live_files(lake, out):
    """A copy of the lake's layout holding only its current data files (hard links, the same
    bytes), for the peers that read Parquet files rather than Delta tables."""
    shutil.rmtree(out, ignore_errors=True)
    for table, files in live_files(lake).items():
        for rel in files:
            dest = f"{out}/{table}/{rel}"
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.link(f"{lake}/{table}/{rel}", dest)
    return out


def ingest_step(args, py):
    import duckdb
    data, work = args.data, args.work
    files = [f"{data}/{t}.csv" for t in ("tickets", "interactions", "ratings", "adoptions")]
    lake = f"{work}/lake"
    # A fresh lake per run: a re-run of the same files would (rightly) be skipped.
    script = f'rm -rf "{lake}" && exec "{args.bin}" --lake "{lake}" ingest --no-sentiment ' + \
        " ".join(f'"{f}"' for f in files)
    out = f"{work}/duckdb-parquet"
    peer_script = f'rm -rf "{out}" && mkdir -p "{out}" && exec "{py}" "{HERE}" duckdb-ingest "{data}" "{out}"'
    # Both read the CSV files from the page cache, and their runs alternate, so that neither
    # pays the disk for the other, and a machine that slows down slows both.
    ours, theirs = alternated([(["sh", "-c", script], "deskpulse ingest"),
                               (["sh", "-c", peer_script], "duckdb ingest")],
                              args.runs, before=lambda: read_through(files))
    row("CSV → Parquet (no sentiment)", "deskpulse", ours, None)
    row("CSV → Parquet (no sentiment)", "DuckDB", theirs, ours)
    con = duckdb.connect()
    lake = linked_live_files(lake, f"{work}/lake-live")
    for table in TABLES:
        a = con.execute(f"SELECT count(*) FROM read_parquet('{lake}/{table}/*/*.parquet')").fetchone()[0]
        b = con.execute(f"SELECT count(*) FROM read_parquet('{out}/{table}/*/*.parquet')").fetchone()[0]
        if a != b:
            sys.exit(f"DISAGREEMENT: {table}: deskpulse stored {a} rows, DuckDB wrote {b}")
    diff = con.execute(f"""
        SELECT count(*) FROM (
          SELECT rating_id, round(score_5, 9) FROM read_parquet('{lake}/ratings/*/*.parquet')
          EXCEPT
          SELECT rating_id, round(score_5, 9) FROM read_parquet('{out}/ratings/*/*.parquet'))""").fetchone()[0]
    if diff:
        sys.exit(f"DISAGREEMENT: {diff} ratings have another score_5 in DuckDB")
    return ours, theirs


def metrics_step(args, py):
    work = args.work
    lake = f"{work}/lake-scored"
    files = [f"{args.data}/{t}.csv" for t in ("tickets", "interactions", "ratings", "adoptions")]
    subprocess.run([args.bin, "--lake", lake, "ingest"] + files, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = f"{work}/deskpulse.toml"
    with open(config, "w") as f:
        f.write(BENCH_CONFIG)
    outs = {tool: f"{work}/metrics-{tool}" for tool in ("deskpulse", "duckdb", "pandas")}
    for d in outs.values():
        os.makedirs(d, exist_ok=True)
    ours_script = " && ".join(
        f'"{args.bin}" --config "{config}" --lake "{lake}" metrics {m} --format csv '
        f'> "{outs["deskpulse"]}/{m}.csv"' for m in METRICS)
    # Cold: the first process after the ingest computes the per-ticket stages and keeps them
    # in the lake (_derived/); warm: the same three again, reading them there.
    ours = timed(["sh", "-c", ours_script], args.runs, "deskpulse metrics",
                 before=lambda: drop_derived(lake))
    kept = timed(["sh", "-c", ours_script], args.runs, "deskpulse metrics")
    live = linked_live_files(lake, f"{work}/lake-scored-live")
    duck = timed([py, HERE, "duckdb-metrics", live, outs["duckdb"]], args.runs, "duckdb metrics")
    peers = ["duckdb", "pandas"]
    step = "metric set (" + ", ".join(METRICS) + ")"
    try:
        pand = timed([py, os.path.join(PEERS, "pandas_metrics.py"), live, outs["pandas"]],
                     args.runs, "pandas metrics", may_fail=True)
    except Failed as e:
        # pandas holds whole tables in memory: at 10 M tickets it may not fit. Say so, and
        # compare the peers that finished.
        pand = e
        peers.remove("pandas")
    row(step, "deskpulse, first after the ingest", ours, None)
    row(step, "deskpulse, per-ticket stages kept in the lake", kept, ours)
    row(step, "DuckDB SQL", duck, ours)
    if isinstance(pand, Failed):
        print(f"| {step} | pandas | {pand} | | |", flush=True)
    else:
        row(step, "pandas", pand, ours)
    checked(outs, peers)
    return lake, config, ours, duck


def checked(outs, peers):
    """Fails the run unless every peer's metric rows equal deskpulse's."""
    import pandas as pd
    for metric, keys in METRICS.items():
        a = pd.read_csv(f'{outs["deskpulse"]}/{metric}.csv')
        for peer in peers:
            b = pd.read_csv(f"{outs[peer]}/{metric}.csv")
            problem = disagreement(a, b, keys)
            if problem:
                sys.exit(f"DISAGREEMENT: {metric}, {peer}: {problem}")


def reports_step(args, lake, config, duck):
    """Both chart reports of the generator's last week, timed together against DuckDB's metric set."""
    out = f"{args.work}/reports"
    script = (f'"{args.bin}" --config "{config}" --lake "{lake}" report weekly --week {args.week} '
              f'--out "{out}" && "{args.bin}" --config "{config}" --lake "{lake}" report '
              f'dashboard --week {args.week} --out "{out}/dashboard.html"')
    # After the metric step the lake keeps its per-ticket stages; the first reader after an
    # ingest computes them (cold).
    for how, before in (("after the metric set", None),
                        ("first after the ingest", lambda: drop_derived(lake))):
        wall, peak = timed(["sh", "-c", script], args.runs, "deskpulse reports", before=before)
        print(f"| reports: weekly + dashboard of {args.week} | deskpulse, {how} | {wall:.2f} s "
              f"| {peak:.0f} MiB | DuckDB metric set / reports: **{duck[0] / wall:.2f}** |",
              flush=True)
    # The stages are kept now (the runs above computed them); the dashboard's figures are not.
    alone = [args.bin, "--config", config, "--lake", lake, "report", "dashboard", "--week",
             args.week, "--out", f"{out}/dashboard-alone.html"]
    wall, peak = timed(alone, args.runs, "deskpulse dashboard",
                       before=lambda: shutil.rmtree(f"{lake}/_derived/reports", ignore_errors=True))
    print(f"| reports: dashboard alone of {args.week} | deskpulse, computing its figures "
          f"(the stages kept) | {wall:.2f} s | {peak:.0f} MiB | |", flush=True)


def drop_derived(lake):
    """Removes the per-ticket stages a lake keeps (a cache), as if nothing had read it yet."""
    shutil.rmtree(f"{lake}/_derived", ignore_errors=True)


def disagreement(ours, theirs, keys):
    """What differs between two results (rows by `keys`, every shared numeric column), or None."""
    columns = [c for c in theirs.columns if c in ours.columns and c not in keys]
    m = ours.merge(theirs, on=keys, how="outer", suffixes=("", "_peer"), indicator=True)
    lost = m[m["_merge"] != "both"]
    if len(lost):
        first = lost.iloc[0]
        return (f"{len(lost)} rows only on one side, first {dict(first[keys])} "
                f"({first['_merge']})")
    for c in columns:
        for a, b, key in zip(m[c], m[c + "_peer"], m[keys].itertuples(index=False)):
            a, b = float(a), float(b)
            if math.isnan(a) and math.isnan(b):
                continue
            if not math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-9):
                return f"{c} at {tuple(key)}: deskpulse {a!r}, peer {b!r}"
    return None


def sentiment_step(args, py):
    import duckdb
    work = args.work
    texts = f"{work}/texts.txt"
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT replace(replace(t, chr(10), ' '), chr(13), ' ') FROM (
          SELECT body AS t FROM read_csv('{args.data}/interactions.csv', header = true, all_varchar = true)
          WHERE body IS NOT NULL
          UNION ALL
          SELECT comment FROM read_csv('{args.data}/ratings.csv', header = true, all_varchar = true)
          WHERE comment IS NOT NULL)
        LIMIT {MAX_TEXTS}""").fetchall()
    with open(texts, "w", encoding="utf-8") as f:
        f.writelines(r[0] + "\n" for r in rows)
    n = len(rows)
    cores = os.cpu_count() or 1
    step = f"VADER, {n:,} texts"
    one = timed([args.bin, "sentiment", texts, "--threads", "1"], args.runs, "deskpulse sentiment")
    allc = timed([args.bin, "sentiment", texts], args.runs, "deskpulse sentiment")
    ref_one = timed([py, HERE, "vader", texts, "1", ""], args.runs, "vaderSentiment")
    ref_all = timed([py, HERE, "vader", texts, str(cores), ""], args.runs, "vaderSentiment pool")
    row(step + ", 1 core", "deskpulse", one, None)
    row(step + ", 1 core", "vaderSentiment", ref_one, one)
    row(step + f", {cores} cores", "deskpulse", allc, None)
    row(step + f", {cores} cores", "vaderSentiment (process pool)", ref_all, allc)
    print(f"texts per second per core: deskpulse {n / one[0]:,.0f}, vaderSentiment "
          f"{n / ref_one[0]:,.0f} ({ref_one[0] / one[0]:.1f} times)", flush=True)
    # Agreement: every score, as the reference rounds them (4 decimals).
    ours = subprocess.run([args.bin, "sentiment", texts, "--scores"], check=True,
                          capture_output=True, text=True).stdout.split()
    ref = f"{work}/vader-scores.txt"
    vader_scores(texts, cores, ref)
    with open(ref) as f:
        theirs = f.read().split()
    # The reference rounds compound to 4 decimals; deskpulse keeps the unrounded value.
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs))
           if abs(round(float(a), 4) - float(b)) > 1e-9]
    if len(ours) != len(theirs) or bad:
        i = bad[0] if bad else min(len(ours), len(theirs))
        sys.exit(f"DISAGREEMENT: {len(bad)} of {n} sentiment scores differ (first at text {i + 1})")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "duckdb-ingest":
        return duckdb_ingest(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 1 and sys.argv[1] == "duckdb-metrics":
        return duckdb_metrics(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 1 and sys.argv[1] == "vader":
        return vader_scores(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--week", default="2026-W47",
                    help="the reports' week (the generator's data ends in 2026-W47)")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    py = sys.executable
    print(f"peer benchmark on {args.data} ({os.cpu_count()} cores), median of {args.runs} runs")
    print("| step | tool | wall | peak memory | time ratio to deskpulse |")
    print("|---|---|---|---|---|")
    ingested = ingest_step(args, py)
    lake, config, ours, duck = metrics_step(args, py)
    # CSV files to the three metrics' rows: each tool's ingest plus its metric set (deskpulse's
    # first after the ingest; DuckDB's metric set reads the lake, as its own Parquet would hold
    # the same rows).
    ends = [(ingested[0][0] + ours[0], "deskpulse"), (ingested[1][0] + duck[0], "DuckDB")]
    for wall, tool in ends:
        print(f"| end to end: CSV → the metric set's rows | {tool} | {wall:.2f} s | "
              f"| {wall / ends[0][0]:.2f} |", flush=True)
    reports_step(args, lake, config, duck)
    sentiment_step(args, py)
    print("all peers agree with deskpulse")


if __name__ == "__main__":
    main()
