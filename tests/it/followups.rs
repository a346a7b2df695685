//! Follow-up targets: every throttle on the hand-built desk lake (tests/slt/desk), with the
//! answers worked out, and the planted outage cohort on generated data.
//!
//! On the desk, with min_rated 1 and threshold 0.8, the candidates are: low_rating u2 (T2) and
//! u5 (T6); same_issue "Hardware / " u1 (T4), u2 (T2) and u4 (T5) (see followup_candidates.slt).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use deskpulse::config::Config;
use deskpulse::engine::{Engine, Params};
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;
use deskpulse::metrics::followups::{Plan, Target, Throttles, plan, record};
use deskpulse::timeparse::TimeParser;
use sha2::{Digest, Sha256};

fn t(s: &str) -> i64 {
    TimeParser::default().parse(s).unwrap()
}

/// The desk lake plus a surveys file: u1 surveyed exactly 30 days before "now" (no longer
/// blocking), u5 one second later (still blocking).
fn desk() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt/desk");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let surveys = dir.path().join("surveys.csv");
    std::fs::write(
        &surveys,
        "requester_id,sent_at,cohort,cohort_key\nu1,2026-02-18T00:00:00Z,low_rating,T0\nu5,2026-02-18T00:00:01Z,low_rating,T0\n",
    )
    .unwrap();
    files.push(surveys);
    files.sort();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest_canonical(&lake, &files, false).unwrap();
    (dir, lake)
}

fn config() -> Config {
    Config {
        min_rated: 1,
        csat_threshold: 0.8,
        ..Config::default()
    }
}

fn throttles(cap: u32, opt_out: &[&str]) -> Throttles {
    Throttles {
        now: t("2026-03-20T00:00:00Z"),
        cooldown_days: 30,
        cap,
        seed: 42,
        opt_out: opt_out.iter().map(|s| s.to_string()).collect(),
    }
}

fn run(lake: &Lake, th: &Throttles) -> Plan {
    let params = Params {
        by_week: false,
        as_of: th.now,
        ..Params::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let e = Engine::open(lake, &config(), &params).await.unwrap();
        plan(&e, th).await.unwrap()
    })
}

fn who(p: &Plan) -> Vec<(String, String)> {
    p.targets
        .iter()
        .map(|x| (x.cohort.clone(), x.requester_id.clone()))
        .collect()
}

#[test]
fn every_throttle_applies() {
    let (_dir, lake) = desk();
    let p = run(&lake, &throttles(100, &["u4"]));
    // u4 opted out; u5 surveyed 29 days 23:59:59 ago; u1's survey is exactly 30 days old, so u1
    // is a target again; u2 is in both cohorts and stays in low_rating.
    assert_eq!(
        who(&p),
        vec![
            ("low_rating".into(), "u2".into()),
            ("same_issue".into(), "u1".into())
        ]
    );
    assert_eq!(
        (
            p.candidates,
            p.opted_out,
            p.in_cooldown,
            p.in_other_cohort,
            p.over_cap
        ),
        (5, 1, 1, 1, 0)
    );
    let u2: &Target = &p.targets[0];
    assert_eq!(
        (u2.tickets.clone(), u2.rating, u2.channel.as_deref()),
        (vec!["T2".to_string()], Some(1.0), Some("email"))
    );
    assert_eq!(u2.reason, "rated 1.0 of 5");
    assert_eq!(p.targets[1].cohort_key, "Hardware / ");
}

#[test]
fn the_cap_samples_by_seeded_hash_and_is_stable() {
    let (_dir, lake) = desk();
    // No opt-out, cap 1: low_rating has u2 and u5 (u5 in cooldown) -> u2; same_issue has u1 and
    // u4 (u2 went to low_rating) -> the one whose sha256(seed, id) is smaller.
    let th = throttles(1, &[]);
    let first = run(&lake, &th);
    assert_eq!(first.over_cap, 1);
    let rank = |id: &str| {
        let mut h = Sha256::new();
        h.update(42u64.to_le_bytes());
        h.update(id.as_bytes());
        h.finalize().to_vec()
    };
    let want = if rank("u1") < rank("u4") { "u1" } else { "u4" };
    assert_eq!(
        who(&first),
        vec![
            ("low_rating".into(), "u2".into()),
            ("same_issue".into(), want.into())
        ]
    );
    for _ in 0..3 {
        assert_eq!(who(&run(&lake, &th)), who(&first));
    }
}

#[test]
fn recorded_surveys_block_a_second_run_within_the_cooldown() {
    let (_dir, lake) = desk();
    let th = throttles(100, &[]);
    let first = run(&lake, &th);
    let picked: HashSet<String> = first
        .targets
        .iter()
        .map(|x| x.requester_id.clone())
        .collect();
    assert_eq!(
        record(&lake, &first.targets, th.now).unwrap(),
        first.targets.len() as u64
    );
    let second = run(&lake, &th);
    assert!(
        second
            .targets
            .iter()
            .all(|x| !picked.contains(&x.requester_id)),
        "{:?}",
        second.targets
    );
    assert!(second.targets.is_empty());
    // A day after the cooldown they can be asked again.
    let later = Throttles {
        now: th.now + 31 * 86_400_000_000,
        ..th
    };
    let third = run(&lake, &later);
    assert_eq!(third.in_cooldown, 0);
}
