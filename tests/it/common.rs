//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use deskpulse::config::Config;
use deskpulse::engine::{Engine, Params};
use deskpulse::generate::{self, GenerateOptions};
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;
use deskpulse::predict::{Options, predict, record};

/// The section ids of the weekly report, in page order.
pub const WEEKLY_SECTIONS: [&str; 7] = [
    "headline",
    "channels",
    "pairing",
    "followups",
    "ttr-shift",
    "backlog",
    "data-quality",
];

/// A generated lake: the directory it lives in, the generated CSV files and the lake.
pub struct Generated {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub lake: Lake,
}

/// Generates `tickets` tickets with `seed` and ingests them into a fresh lake.
pub fn generated(tickets: u64, seed: u64) -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate::generate(&GenerateOptions {
        tickets,
        seed,
        out: data.clone(),
    })
    .unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest_canonical(&lake, &generate::files(&data), false).unwrap();
    Generated { dir, data, lake }
}

/// Fits `deskpulse predict` on a generated lake as of the generated period's end (no margin, no
/// driver refits) and records its predictions, so that the views reading them have rows. On a
/// thread of its own: callers may be inside a runtime.
pub fn record_predictions(lake: &Lake) {
    let lake = lake.clone();
    std::thread::spawn(move || {
        let params = Params {
            by_week: false,
            as_of: generate::end_micros(),
            ..Params::default()
        };
        let options = Options {
            margin: 0.0,
            driver_refits: 0,
            ..Options::default()
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let outcome = rt
            .block_on(async {
                let engine = Engine::open(&lake, &Config::default(), &params).await?;
                predict(&engine, &options).await
            })
            .unwrap();
        assert!(outcome.published, "{outcome:#?}");
        record(&lake, &outcome, params.as_of).unwrap();
    })
    .join()
    .unwrap();
}

/// Ingests predictions another tool might have made (`predictions.csv`, generic profile) for
/// every resolved ticket of a generated lake, with probabilities spread over 0.05..0.95 by
/// ticket number: rows for the views that read predictions, on a lake too small to publish a
/// model of its own (the cluster's).
#[cfg(feature = "cluster")]
pub fn ingest_predictions(g: &Generated) {
    let mut tickets = csv::Reader::from_path(g.data.join("tickets.csv")).unwrap();
    let header = tickets.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id, resolved) = (col("ticket_id"), col("resolved_at"));
    let path = g.dir.path().join("predictions.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record([
        "ticket_id",
        "model_id",
        "predicted_at",
        "p_satisfied",
        "validation_bias",
        "validation_tickets",
    ])
    .unwrap();
    for (n, row) in tickets.records().map(Result::unwrap).enumerate() {
        if !row[resolved].is_empty() {
            let p = format!("{:.2}", 0.05 + 0.9 * ((n * 37) % 100) as f64 / 100.0);
            let at = "2026-11-23T00:00:00Z";
            w.write_record([&row[id], "other-tool", at, &p, "0.01", "300"])
                .unwrap();
        }
    }
    w.flush().unwrap();
    let predictions = deskpulse::model::Table::Predictions;
    let before = g.lake.row_count(predictions).unwrap();
    ingest_canonical(&g.lake, &[path], false).unwrap();
    assert!(g.lake.row_count(predictions).unwrap() > before);
    assert_eq!(g.lake.reject_count().unwrap(), 0);
}

/// Opens a PNG of `size` and checks that something was drawn: more than `min_colours` distinct
/// colours and more than `min_ink` of the pixels not white (a blank or error image has neither).
pub fn assert_drawn(
    png: &Path,
    size: (u32, u32),
    min_colours: usize,
    min_ink: f64,
) -> image::RgbImage {
    let img = image::open(png)
        .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", png.display());
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() > min_colours,
        "{}: {} colours",
        png.display(),
        colours.len()
    );
    let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let share = ink as f64 / (size.0 * size.1) as f64;
    assert!(
        share > min_ink,
        "{}: {:.1}% inked",
        png.display(),
        share * 100.0
    );
    img
}

/// Runs `command` (the deskpulse binary, say) and returns its output, failing the test with
/// the command's stderr when it fails.
pub fn succeeded(command: &mut std::process::Command) -> std::process::Output {
    let o = command.output().unwrap();
    assert!(
        o.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}
