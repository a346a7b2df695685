//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use deskpulse::generate::{self, GenerateOptions};
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;

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
