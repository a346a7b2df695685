//! Each metric family on a fixed generated lake (20,000 tickets, seed 7): the time to open the
//! engine and collect the view. Run with `cargo bench --bench metrics`.

use criterion::{Criterion, criterion_group, criterion_main};
use deskpulse::config::Config;
use deskpulse::engine::catalogue::CATALOGUE;
use deskpulse::engine::{Engine, Params};
use deskpulse::generate::{GenerateOptions, generate};
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;

fn bench_metrics(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&GenerateOptions {
        tickets: 20_000,
        seed: 7,
        out: data.clone(),
    })
    .unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let files = deskpulse::generate::files(&data);
    ingest_canonical(&lake, &files, false).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::default();
    let params = Params::default();
    let mut group = c.benchmark_group("metrics");
    group.sample_size(10);
    for name in CATALOGUE.iter().map(|m| m.name) {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let e = Engine::open(&lake, &config, &params).await.unwrap();
                    e.metric(name)
                        .await
                        .unwrap()
                        .iter()
                        .map(|b| b.num_rows())
                        .sum::<usize>()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_metrics);
criterion_main!(benches);
