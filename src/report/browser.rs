//! Headless Chromium, when it is installed: the DOM of a page after load, and screenshots of the
//! reports (the demo's, shown in the README). Nothing in deskpulse needs a browser otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Debian's Chromium (or Chrome) in /usr/bin, if installed.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| Path::new("/usr/bin").join(name))
        .find(|p| p.exists())
}

/// Runs headless `browser` on `page` with `args`, in a fresh profile; returns its stdout.
fn headless(browser: &Path, page: &Path, args: &[String]) -> Result<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let profile = std::env::temp_dir().join(format!(
        "deskpulse-chromium-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::SeqCst)
    ));
    let page = std::fs::canonicalize(page).with_context(|| format!("{}", page.display()))?;
    // Off the network and quiet: a sandboxed machine refuses Chromium's background connections.
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .with_context(|| format!("cannot run {}", browser.display()));
    let _ = std::fs::remove_dir_all(&profile);
    let out = out?;
    if !out.status.success() {
        bail!(
            "{} failed on {}: {}",
            browser.display(),
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The page's DOM after it loaded, as HTML.
pub fn dump_dom(browser: &Path, page: &Path) -> Result<String> {
    headless(browser, page, &["--dump-dom".into()])
}

/// A PNG screenshot of the top `width` × `height` pixels of `page`, written atomically.
pub fn screenshot(browser: &Path, page: &Path, png: &Path, width: u32, height: u32) -> Result<()> {
    let dir = png.parent().context("screenshot path has no directory")?;
    std::fs::create_dir_all(dir)?;
    let name = png.file_name().context("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.png"));
    headless(
        browser,
        page,
        &[
            format!("--window-size={width},{height}"),
            format!("--screenshot={}", tmp.display()),
        ],
    )?;
    std::fs::rename(&tmp, png).with_context(|| format!("cannot write {}", png.display()))
}
