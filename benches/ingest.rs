//! Ingest throughput: generated exports (fixed seed) into a fresh lake, rows per second.
//! Run with `cargo bench --bench ingest`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deskpulse::generate::{GenerateOptions, generate};
use deskpulse::ingest::{IngestOptions, ingest};
use deskpulse::lake::Lake;

const TICKETS: u64 = 20_000;

fn bench_ingest(c: &mut Criterion) {
    let data = tempfile::tempdir().unwrap();
    let summary = generate(&GenerateOptions {
        tickets: TICKETS,
        seed: 7,
        out: data.path().to_path_buf(),
    })
    .unwrap();
    let rows = summary.tickets + summary.interactions + summary.ratings + summary.adoptions;
    let files = deskpulse::generate::files(data.path());
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function(format!("generic_{TICKETS}_tickets"), |b| {
        b.iter_with_setup(
            || tempfile::tempdir().unwrap(),
            |lake_dir| {
                let lake = Lake::open(lake_dir.path()).unwrap();
                let opts = IngestOptions {
                    profile: "generic".into(),
                    ..Default::default()
                };
                let (reports, errors) = ingest(&lake, &files, &opts).unwrap();
                assert!(errors.is_empty());
                assert_eq!(reports.len(), files.len());
                lake_dir
            },
        );
    });
    group.finish();
}

criterion_group!(benches, bench_ingest);
criterion_main!(benches);
