//! Both pages opened in a real browser: Debian's Chromium, headless. The test renders the
//! committed sample's reports, dumps each page's DOM after load and takes a screenshot; the
//! screenshots stay under `target/tmp/screenshots/` for a person to look at.
//!
//! `.ci/run` installs Chromium and sets `DESKPULSE_REQUIRE_BROWSER=1`, so there a missing browser
//! fails the test; elsewhere it is skipped with a message.

use std::path::Path;

use deskpulse::config::Config;
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;
use deskpulse::report::browser;
use deskpulse::{demo, report};

use crate::common;

/// Loads `page`, checks its DOM and screenshots it to `shot`.
fn check_page(
    browser: &Path,
    page: &Path,
    shot: &Path,
    (width, height): (u32, u32),
    sections: &[&str],
) {
    let dom = browser::dump_dom(browser, page).unwrap();
    assert!(dom.contains("</html>"), "the page did not load: {dom:.200}");
    for id in sections {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "section {id} missing after load"
        );
    }
    let svgs = dom.matches("<svg").count();
    assert!(svgs >= 3, "{svgs} charts in the loaded page");
    assert!(
        !dom.contains("<script"),
        "the loaded page has a script element"
    );

    let _ = std::fs::remove_file(shot);
    browser::screenshot(browser, page, shot, width, height).unwrap();
    // A loaded page with charts has many colours and a good deal of ink.
    let img = common::assert_drawn(shot, (width, height), 200, 0.025);
    // Chart bars in the series colour (Tableau blue) are on screen, not only text.
    let blue = img
        .pixels()
        .filter(|p| {
            let [r, g, b] = p.0;
            b > 150 && r < 90 && (100..160).contains(&g)
        })
        .count();
    assert!(
        blue > 2000,
        "{blue} chart-blue pixels in {}",
        shot.display()
    );
}

#[test]
fn both_pages_load_in_a_real_browser() {
    let Some(browser) = browser::chromium() else {
        assert!(
            std::env::var_os("DESKPULSE_REQUIRE_BROWSER").is_none(),
            "DESKPULSE_REQUIRE_BROWSER is set but no Chromium is installed"
        );
        eprintln!("skipped: no Chromium in /usr/bin (apt-get install chromium)");
        return;
    };
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&work);
    let lake = Lake::open(work.join("lake")).unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    ingest_canonical(&lake, &deskpulse::generate::files(&sample), false).unwrap();
    let config = Config::default();
    let week = demo::sample_week(&config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = rt
        .block_on(report::gather(&lake, &config, &week, report::Scope::Weekly))
        .unwrap();
    let reports = work.join("reports");
    let weekly = report::weekly(&data, &reports).unwrap().index;
    let dashboard = reports.join("dashboard.html");
    report::dashboard(&data, &dashboard).unwrap();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    check_page(
        &browser,
        &weekly,
        &shots.join("weekly.png"),
        report::WEEKLY_SHOT,
        &common::WEEKLY_SECTIONS,
    );
    check_page(
        &browser,
        &dashboard,
        &shots.join("dashboard.png"),
        report::DASHBOARD_SHOT,
        &["kpis", "channels", "self-service", "data-quality"],
    );
    eprintln!("screenshots: {}", shots.display());
}
