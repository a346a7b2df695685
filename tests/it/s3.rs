//! The lake on object storage (`--lake s3://bucket/prefix`), against a real S3-compatible
//! server: moto's, from PyPI (`python3 -m moto.server`), on loopback. `.ci/run` installs it and
//! sets `DESKPULSE_REQUIRE_S3=1`, so that a missing server fails there instead of skipping.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A moto server with one bucket, stopped when dropped.
pub struct S3 {
    child: Child,
    port: u16,
    /// Where the commands keep their local state (staging, the stream's spool).
    state: tempfile::TempDir,
}

const BUCKET: &str = "desk";

impl S3 {
    /// Starts a server and creates the bucket; `None` (the test is skipped) when moto is not
    /// installed and `DESKPULSE_REQUIRE_S3` is not set.
    pub fn start() -> Option<S3> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var_os("DESKPULSE_REQUIRE_S3").is_none(),
                "moto's S3 server is required (python3 -m pip install 'moto[server]')"
            );
            eprintln!("skipped: moto is not installed (python3 -m pip install 'moto[server]')");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s3 = S3 {
            child,
            port,
            state: tempfile::tempdir().unwrap(),
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(s3.request("PUT", "", b"").0, 200);
        Some(s3)
    }

    pub fn lake(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The binary, with the credentials and endpoint in the usual variables.
    pub fn deskpulse(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deskpulse"));
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port))
            .env("AWS_ALLOW_HTTP", "true")
            .env("XDG_STATE_HOME", self.state.path());
        c
    }

    pub fn run(&self, lake: &str, args: &[&str]) -> Output {
        crate::common::succeeded(self.deskpulse().arg("--lake").arg(lake).args(args))
    }

    /// The rows of `query` on `lake`, as CSV.
    pub fn csv(&self, lake: &str, query: &str) -> String {
        String::from_utf8(self.run(lake, &["sql", "--format", "csv", query]).stdout).unwrap()
    }

    /// One plain HTTP request to the server (moto does not check signatures): status and body.
    fn request(&self, method: &str, key: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let head = format!(
            "{method} /{BUCKET}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        let status = text[9..12].parse().unwrap();
        let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => out[i + 4..].to_vec(),
            None => Vec::new(),
        };
        (status, body)
    }

    /// The keys under `prefix` in the bucket.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("?list-type=2&prefix={prefix}"), b"");
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&body);
        text.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generated exports of `tickets` tickets.
pub fn exports(dir: &Path, tickets: u64) -> Vec<PathBuf> {
    let out = dir.join("data");
    let o = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .args([
            "generate",
            "--seed",
            "7",
            "--tickets",
            &tickets.to_string(),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    ["adoptions", "interactions", "ratings", "tickets"]
        .iter()
        .map(|t| out.join(format!("{t}.csv")))
        .collect()
}

/// What the comparisons read: rows of every table and metric rows, rounded where a parallel
/// sum may differ in the last digit.
pub const QUERIES: [&str; 3] = [
    "SELECT (SELECT count(*) FROM tickets) t, (SELECT count(*) FROM interactions) i, \
     (SELECT count(*) FROM ratings) r, (SELECT count(*) FROM adoptions) a, \
     (SELECT count(*) FROM pairs) p",
    "SELECT period, channel, ratings, satisfied, resolved, responded, round(csat, 9) csat, \
     round(median_ttr_seconds, 3) ttr FROM channel_satisfaction ORDER BY period, channel",
    "SELECT status, count(*) n, max(updated_at) u FROM tickets GROUP BY status ORDER BY status",
];

fn answers(s3: &S3, lake: &str) -> Vec<String> {
    QUERIES.iter().map(|q| s3.csv(lake, q)).collect()
}

#[test]
fn an_s3_lake_gives_the_rows_and_metrics_of_a_local_one_and_compacts() {
    let Some(s3) = S3::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = exports(dir.path(), 400);
    let local = dir.path().join("lake").to_string_lossy().into_owned();
    let remote = s3.lake("desks/emea");
    for lake in [&local, &remote] {
        let mut args = vec!["ingest"];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        s3.run(lake, &args);
    }
    let want = answers(&s3, &local);
    assert!(want[0].contains("400"), "{want:?}");
    assert_eq!(answers(&s3, &remote), want);
    // Everything is under the prefix, in the layout of a local lake; nothing is left of the
    // writers' staging or lock.
    let keys = s3.keys("desks/emea/");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("desks/emea/tickets/_delta_log/"))
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("desks/emea/tickets/month="))
    );
    assert!(keys.iter().any(|k| k.starts_with("desks/emea/_snapshots/")));
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("_staging") || k.ends_with("_lock")),
        "{keys:?}"
    );
    // Another engine reads the tables in the bucket: the Python deltalake package (when
    // installed; `.ci/run` installs it).
    if Command::new("python3")
        .args(["-c", "import deltalake"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let script = r#"
import sys
from deltalake import DeltaTable
options = {"AWS_ENDPOINT_URL": sys.argv[2], "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
t = DeltaTable(sys.argv[1] + "/tickets", storage_options=options)
print(len(set(t.to_pyarrow_table(columns=["ticket_id"]).column("ticket_id").to_pylist())))
# deltalake 1.6 aborts the interpreter at exit ("terminate called without an active
# exception", delta-io/delta-rs#2184) after a correct read, local or S3: leave before its
# teardown.
sys.stdout.flush()
import os
os._exit(0)
"#;
        let o = Command::new("python3")
            .args(["-c", script, &remote])
            .arg(format!("http://127.0.0.1:{}", s3.port))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "400");
    }
    // The same files again: recognised from the manifest in the bucket.
    let mut again = vec!["ingest"];
    again.extend(files.iter().map(|f| f.to_str().unwrap()));
    let o = s3.run(&remote, &again);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 files ingested, 4 skipped"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Four commits, four manifest files: compaction packs them and the clean-up deletes the
    // replaced objects; the answers do not change, and an earlier snapshot is gone with them.
    let manifests = |s3: &S3| {
        s3.keys("desks/emea/_manifest/")
            .iter()
            .filter(|k| k.ends_with(".parquet"))
            .count()
    };
    assert_eq!(manifests(&s3), 4);
    s3.run(&remote, &["compact", "--retain", "0s"]);
    assert_eq!(manifests(&s3), 1);
    assert_eq!(answers(&s3, &remote), want);
    let history = String::from_utf8(s3.run(&remote, &["history"]).stdout).unwrap();
    assert!(
        history.contains("compact") && !history.contains(" 1  "),
        "{history}"
    );
}

#[test]
fn a_commit_killed_at_any_step_on_s3_shows_the_old_rows_and_a_rerun_completes_it() {
    let Some(s3) = S3::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = exports(dir.path(), 300);
    let tickets = &files[3];
    let lake = s3.lake("killed");
    s3.run(&lake, &["ingest", tickets.to_str().unwrap()]);
    let status = "SELECT status, count(*) n FROM tickets GROUP BY status ORDER BY status";
    let read = |s3: &S3| s3.csv(&lake, status);
    let before = read(&s3);
    // Every ticket again, a day later and closed: one new file per month, then each table's
    // Delta commit, then the snapshot.
    let text = std::fs::read_to_string(tickets).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (updated, state) = (col("updated_at"), col("status"));
    let mut changed = format!("{}\n", header.join(","));
    for l in lines {
        let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
        f[state] = "closed".into();
        f[updated] = "2030-01-01T00:00:00Z".into();
        changed.push_str(&f.join(","));
        changed.push('\n');
    }
    let changed_file = dir.path().join("tickets_closed.csv");
    std::fs::write(&changed_file, changed).unwrap();
    // The files are streamed to the bucket: a crash leaves no temporary file on this machine.
    let tmp = tempfile::tempdir().unwrap();
    for step in 1.. {
        let o = s3
            .deskpulse()
            .arg("--lake")
            .arg(&lake)
            .args(["ingest", changed_file.to_str().unwrap()])
            .env("DESKPULSE_CRASH_AT", step.to_string())
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(step > 3, "only {step} steps");
            break;
        }
        assert!(String::from_utf8_lossy(&o.stderr).contains("simulated crash"));
        assert_eq!(read(&s3), before, "after a crash at step {step}");
    }
    let after = read(&s3);
    assert_eq!(after, "status,n\nclosed,300\n");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_data_file_larger_than_an_upload_part_goes_to_s3_in_parts_and_reads_back_whole() {
    let Some(s3) = S3::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    // 40,000 interactions of one month with 400 random characters each: one data file of
    // about 16 MB, above the 10 MiB at which an upload goes in parts.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut body = || {
        (0..400)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                    [(seed % 64) as usize] as char
            })
            .collect::<String>()
    };
    let mut csv = String::from("interaction_id,ticket_id,at,actor_role,channel,body\n");
    for i in 0..40_000 {
        let at = format!("2026-01-{:02}T10:00:00Z", 1 + i % 28);
        csv.push_str(&format!(
            "I{i},T{},{at},requester,email,{}\n",
            i / 4,
            body()
        ));
    }
    let first = dir.path().join("interactions.csv");
    std::fs::write(&first, csv).unwrap();
    // One of them again, changed: the merge rewrites the whole month's file.
    let second = dir.path().join("interactions_again.csv");
    std::fs::write(
        &second,
        "interaction_id,ticket_id,at,actor_role,channel,body\n\
         I7,T1,2026-01-08T10:00:00Z,requester,email,changed\n",
    )
    .unwrap();
    let lake = s3.lake("big");
    let local = dir.path().join("lake").to_string_lossy().into_owned();
    for l in [&lake, &local] {
        for f in [&first, &second] {
            s3.run(l, &["ingest", "--no-sentiment", f.to_str().unwrap()]);
        }
    }
    let month = dir.path().join("lake/interactions/month=2026-01");
    let sizes: Vec<u64> = std::fs::read_dir(&month)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(sizes.iter().any(|s| *s > 10 << 20), "{sizes:?}");
    let rows = "SELECT count(*) n, sum(length(body)) chars, count(DISTINCT body) bodies, \
                max(CASE WHEN interaction_id = 'I7' THEN body END) i7 FROM interactions";
    assert_eq!(s3.csv(&lake, rows), s3.csv(&local, rows));
    assert_eq!(
        s3.csv(&lake, rows),
        "n,chars,bodies,i7\n40000,15999607,40000,changed\n"
    );
}

#[test]
fn writers_on_s3_wait_for_the_lock_object_and_take_over_a_dead_holders() {
    let Some(s3) = S3::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = exports(dir.path(), 200);
    let lake = s3.lake("locked");
    // A holder that died two seconds before its lease runs out.
    let expires = chrono::Utc::now().timestamp_micros() + 2_000_000;
    let lock = format!(r#"{{"id":"dead","pid":1,"expires_at":{expires}}}"#);
    assert_eq!(s3.request("PUT", "locked/_lock", lock.as_bytes()).0, 200);
    let start = Instant::now();
    let o = s3.run(&lake, &["ingest", files[3].to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("waiting for its turn"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(start.elapsed() >= Duration::from_millis(1500));
    // Two writers at once: both commit, in turn; nothing lost, no lock left.
    let spawn = |f: &PathBuf| {
        s3.deskpulse()
            .arg("--lake")
            .arg(&lake)
            .args(["ingest", f.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&files[1]), spawn(&files[2]));
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let counts = "SELECT (SELECT count(*) FROM tickets) t, (SELECT count(*) FROM ratings) r, \
                  (SELECT count(*) FROM interactions) i";
    let local = dir.path().join("lake").to_string_lossy().into_owned();
    let mut args = vec!["ingest"];
    args.extend(files[1..].iter().map(|f| f.to_str().unwrap()));
    s3.run(&local, &args);
    assert_eq!(s3.csv(&lake, counts), s3.csv(&local, counts));
    assert!(!s3.keys("locked/").iter().any(|k| k.ends_with("_lock")));
}

#[test]
fn the_stream_writes_to_an_s3_lake_and_keeps_its_spool_on_local_disk() {
    let Some(s3) = S3::start() else { return };
    let lake = s3.lake("live");
    let mut child = s3
        .deskpulse()
        .args(["stream", "--stdin", "--lake", &lake])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = concat!(
        r#"{"type":"ticket","event_id":"t1","ticket_id":"T1","opened_at":"2026-03-02T10:00:00Z","updated_at":"2026-03-02T10:00:00Z","channel":"chat"}"#,
        "\n",
        r#"{"type":"rating","event_id":"r1","rating_id":"R1","ticket_id":"T1","rated_at":"2026-03-02T11:00:00Z","score_raw":"2","channel":"chat","comment":"slow"}"#,
        "\n"
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(events.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let counts = "SELECT (SELECT count(*) FROM tickets) t, (SELECT count(*) FROM ratings) r";
    assert_eq!(s3.csv(&lake, counts), "t,r\n1,1\n");
    // The spool and the alerts file are on this machine, under XDG_STATE_HOME.
    let local = s3.state.path().join("deskpulse").join(BUCKET).join("live");
    assert!(local.join("_stream").join("alerts.ndjson").exists());
    assert!(!s3.keys("live/").iter().any(|k| k.contains("_stream")));
}

#[test]
fn the_committed_sample_on_s3_gives_the_figures_the_docs_show() {
    let Some(s3) = S3::start() else { return };
    let lake = s3.lake("emea");
    // As docs/commands.md runs it, from the project's directory.
    let o = crate::common::succeeded(
        s3.deskpulse()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--lake", &lake, "ingest"])
            .args(
                ["adoptions", "interactions", "ratings", "tickets"]
                    .map(|t| format!("sample-data/{t}.csv")),
            ),
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.ends_with(&format!(
            "total: 4 files ingested, 0 skipped, 0 refused; 13482 rows stored, 0 rejected (see {lake}/_rejects)\n"
        )),
        "{out}"
    );
    let shown = "select channel, count(*) ratings, round(avg(score_5),2) mean from ratings \
                 group by channel order by channel limit 3";
    assert_eq!(
        s3.csv(&lake, shown),
        "channel,ratings,mean\nbot,24,4.5\nchat,203,4.59\nemail,199,4.02\n"
    );
    assert_eq!(s3.csv(&lake, "select count(*) n from ratings"), "n\n859\n");
    let history = String::from_utf8(s3.run(&lake, &["history", "--limit", "2"]).stdout).unwrap();
    assert!(
        history.contains("ingest sample-data/tickets.csv")
            && history.contains("_manifest@4 adoptions@1 interactions@1 ratings@1 tickets@1"),
        "{history}"
    );
}
