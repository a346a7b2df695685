//! VADER throughput: texts per second on one core, over the reference texts of
//! `tests/data/vader_reference.jsonl` (real customer remarks and tweets).
//! Run with `cargo bench --bench sentiment`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deskpulse::sentiment::vader;

fn texts() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vader_reference.jsonl"
    );
    std::fs::read_to_string(path)
        .expect("tests/data/vader_reference.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

fn bench_sentiment(c: &mut Criterion) {
    let texts = texts();
    let v = vader();
    let mut group = c.benchmark_group("sentiment");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("vader_reference_texts", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| v.polarity_scores(t).compound)
                .sum::<f64>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sentiment);
criterion_main!(benches);
