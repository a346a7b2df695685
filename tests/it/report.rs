//! The weekly report and the dashboard, rendered from a generated lake with planted effects and a
//! few hostile rows: every section is there, the planted effects show in the tables, ticket text
//! is escaped, the charts are real, non-trivial PNG and SVG files, and a published model's
//! recorded predictions add the estimated satisfaction beside the survey's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use deskpulse::config::Config;
use deskpulse::generate;
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;
use deskpulse::report;

use crate::common;
use serde_json::Value;

const TICKETS: u64 = 20_000;

/// Ticket text written to attack the page.
const SCRIPT_COMMENT: &str = "<script>alert('comment')</script> \"><img src=x onerror=alert(2)>";
const HOSTILE_REQUESTER: &str = "\"><img src=x onerror=alert(1)>";
const HOSTILE_CATEGORY: &str = "<script>alert(\"category\")</script>";
/// A comment that a spreadsheet opening the CSV would run as a formula.
const FORMULA_COMMENT: &str = "=HYPERLINK(\"http://evil.example/\",\"details\")";
const HOSTILE_ADOPTION: &str = "<b>Chat bot</b> \"><img src=x onerror=alert(3)>";

struct Rendered {
    _dir: tempfile::TempDir,
    week_dir: PathBuf,
    index: String,
    dashboard: String,
    /// The dashboard from data gathered for it alone ([`report::Scope::Dashboard`]).
    dashboard_alone: String,
    /// Why the weekly report refused that data.
    weekly_refused: String,
    charts: Vec<PathBuf>,
}

fn hostile_rows(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let tickets = dir.join("tickets.csv");
    let mut w = csv::Writer::from_path(&tickets).unwrap();
    w.write_record([
        "ticket_id",
        "opened_at",
        "resolved_at",
        "updated_at",
        "status",
        "category",
        "channel",
        "requester_id",
        "assignee_id",
        "assignment_group",
    ])
    .unwrap();
    w.write_record([
        "EVIL-1",
        "2026-11-17T09:00:00Z",
        "2026-11-17T11:00:00Z",
        "2026-11-17T11:00:00Z",
        "resolved",
        HOSTILE_CATEGORY,
        "email",
        HOSTILE_REQUESTER,
        "agent-01",
        "Service Desk L1",
    ])
    .unwrap();
    w.flush().unwrap();
    let ratings = dir.join("ratings.csv");
    let mut w = csv::Writer::from_path(&ratings).unwrap();
    w.write_record([
        "rating_id",
        "ticket_id",
        "rated_at",
        "score_raw",
        "scale",
        "comment",
    ])
    .unwrap();
    w.write_record([
        "R-EVIL-1",
        "EVIL-1",
        "2026-11-17T12:00:00Z",
        "1",
        "five",
        SCRIPT_COMMENT,
    ])
    .unwrap();
    w.write_record([
        "R-EVIL-2",
        "EVIL-1",
        "2026-11-17T12:30:00Z",
        "1",
        "five",
        FORMULA_COMMENT,
    ])
    .unwrap();
    w.flush().unwrap();
    let adoptions = dir.join("adoptions.csv");
    let mut w = csv::Writer::from_path(&adoptions).unwrap();
    w.write_record(["adoption_id", "name", "kind", "launched_at", "scope"])
        .unwrap();
    w.write_record([
        "ADP-EVIL",
        HOSTILE_ADOPTION,
        "bot",
        "2026-11-09T00:00:00Z",
        "",
    ])
    .unwrap();
    w.flush().unwrap();
    vec![tickets, ratings, adoptions]
}

/// The 20,000-ticket lake (seed 11) plus the hostile rows and the predictions of a model
/// published on it, and both pages for 2026-W47 (the planted outage week), rendered once for
/// all tests of this file.
fn rendered() -> &'static Rendered {
    static R: OnceLock<Rendered> = OnceLock::new();
    R.get_or_init(|| {
        let common::Generated { dir, lake, .. } = common::generated(TICKETS, 11);
        ingest_canonical(&lake, &hostile_rows(&dir.path().join("hostile")), false).unwrap();

        let config = Config::default();
        let week = config.calendar.parse_week("2026-W47").unwrap();
        common::record_predictions(&lake);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let d = rt
            .block_on(report::gather(&lake, &config, &week, report::Scope::Weekly))
            .unwrap();
        let out = dir.path().join("reports");
        let written = report::weekly(&d, &out).unwrap();
        let dash = out.join("dashboard.html");
        report::dashboard(&d, &dash).unwrap();
        let alone = rt
            .block_on(report::gather(
                &lake,
                &config,
                &week,
                report::Scope::Dashboard,
            ))
            .unwrap();
        let dash_alone = out.join("dashboard-alone.html");
        report::dashboard(&alone, &dash_alone).unwrap();
        let refused = report::weekly(&alone, &out.join("refused")).unwrap_err();
        Rendered {
            week_dir: out.join("2026-W47"),
            index: std::fs::read_to_string(&written.index).unwrap(),
            dashboard: std::fs::read_to_string(&dash).unwrap(),
            dashboard_alone: std::fs::read_to_string(&dash_alone).unwrap(),
            weekly_refused: format!("{refused:#}"),
            charts: written.charts,
            _dir: dir,
        }
    })
}

/// The dashboard gathers only what it shows, and shows the same page as from the full data; the
/// weekly report refuses the narrower data rather than render its sections empty.
#[test]
fn the_dashboard_from_its_own_data_is_the_same_page() {
    let r = rendered();
    assert!(r.dashboard.contains("Channel mix"));
    assert_eq!(r.dashboard_alone, r.dashboard);
    assert!(
        r.weekly_refused.contains("Scope::Weekly"),
        "{}",
        r.weekly_refused
    );
    assert!(!r.week_dir.with_file_name("refused").exists());
}

fn table(name: &str) -> Vec<serde_json::Map<String, Value>> {
    let r = rendered();
    let path = r.week_dir.join("tables").join(format!("{name}.json"));
    assert!(
        r.week_dir
            .join("tables")
            .join(format!("{name}.csv"))
            .exists(),
        "{name}.csv"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The text of the page between two markers.
fn between<'a>(page: &'a str, from: &str, to: &str) -> &'a str {
    let a = page
        .find(from)
        .unwrap_or_else(|| panic!("{from} not in page"));
    let b = a + page[a..]
        .find(to)
        .unwrap_or_else(|| panic!("{to} not after {from}"));
    &page[a..b]
}

#[test]
fn the_weekly_report_has_every_section() {
    let page = &rendered().index;
    for id in common::WEEKLY_SECTIONS {
        assert!(page.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    for heading in [
        "Headline KPIs",
        "Satisfaction by channel",
        "Request-response pairing",
        "Bot and human replies",
        "Best responders",
        "Worst responders",
        "Follow-up survey cohorts",
        "Escalations",
        "Time to resolve after self-service adoptions",
        "Backlog aging",
    ] {
        assert!(page.contains(heading), "{heading}");
    }
    // Charts are inline: the page needs no other file, and no network.
    assert!(page.matches("<svg").count() >= 7);
    for remote in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<link",
        "<img",
    ] {
        assert!(!page.contains(remote), "{remote}");
    }
}

#[test]
fn recorded_predictions_put_the_estimated_satisfaction_beside_the_survey() {
    let rows = table("estimated_satisfaction");
    assert!(rows.len() >= 5, "{rows:?}");
    let n = |r: &serde_json::Map<String, Value>, k: &str| r[k].as_f64().unwrap();
    for r in &rows {
        // The model was recorded after the week: every resolved ticket is rated or predicted.
        assert_eq!(n(r, "not_covered"), 0.0, "{r:?}");
        assert_eq!(n(r, "rated") + n(r, "predicted"), n(r, "resolved"), "{r:?}");
        let (low, est, high) = (
            n(r, "estimated_csat_low"),
            n(r, "estimated_csat"),
            n(r, "estimated_csat_high"),
        );
        assert!(low <= est && est <= high && (low < high || n(r, "predicted") == 0.0));
    }
    let page = &rendered().index;
    let section = between(
        page,
        "Estimated satisfaction over every resolved ticket",
        "</table>",
    );
    assert!(section.contains("Survey CSAT (95% interval)"), "{section}");
    let model = rows[0]["model_id"].as_str().unwrap();
    assert!(section.contains(model));
    let chart = rendered()
        .charts
        .iter()
        .find(|c| c.ends_with("estimated_csat.png"))
        .expect("the estimated CSAT chart");
    common::assert_drawn(chart, (760, 380), 20, 0.02);
    assert!(rendered().dashboard.contains("estimated (all resolved)"));
}

#[test]
fn the_planted_effects_show_in_the_report() {
    // The email outage of 2026-W47 is a same-issue follow-up cohort, named on the page.
    let followups = table("followups");
    assert!(
        followups
            .iter()
            .filter(|t| t["cohort"] == "same_issue")
            .all(|t| t["cohort_key"] == generate::OUTAGE_ISSUE_KEY)
    );
    assert!(
        followups
            .iter()
            .filter(|t| t["cohort"] == "same_issue")
            .count()
            > 20
    );
    assert!(rendered().index.contains(generate::OUTAGE_ISSUE_KEY));

    // The launch deflected the planted 80% of in-scope tickets.
    let shift = table("ttr_shift");
    let adp = shift
        .iter()
        .find(|r| r["adoption_id"] == generate::ADOPTION_ID)
        .expect("the planted adoption");
    let deflection = adp["deflection"].as_f64().unwrap();
    assert!(
        (deflection - generate::DEFLECTION).abs() < 0.08,
        "{deflection}"
    );
    // The adoption launched a week ago has no after window yet: said, not computed.
    assert!(shift.iter().all(|r| r["adoption_id"] != "ADP-EVIL"));
    assert!(
        rendered()
            .index
            .contains("No shift computed: adoption ADP-EVIL")
    );

    // Email satisfaction fell in the outage week, against the four weeks before it (pooled:
    // a week has about 20 email ratings).
    let cs = table("channel_satisfaction");
    let email = |weeks: &[&str]| {
        let rows: Vec<_> = cs
            .iter()
            .filter(|r| weeks.contains(&r["period"].as_str().unwrap()) && r["channel"] == "email")
            .collect();
        let sum = |k: &str| rows.iter().map(|r| r[k].as_f64().unwrap()).sum::<f64>();
        sum("satisfied") / sum("ratings")
    };
    let before = email(&["2026-W43", "2026-W44", "2026-W45", "2026-W46"]);
    assert!(email(&["2026-W47"]) < before - 0.15, "{before}");

    // The calming agents lead the ranking and the inflaming ones trail it.
    let page = &rendered().index;
    let best = between(page, "<h3>Best responders", "</table>");
    let worst = between(page, "<h3>Worst responders", "</table>");
    assert!(
        generate::CALMING_AGENTS.iter().any(|a| best.contains(a)),
        "{best}"
    );
    assert!(
        generate::INFLAMING_AGENTS.iter().any(|a| worst.contains(a)),
        "{worst}"
    );
    assert!(!generate::INFLAMING_AGENTS.iter().any(|a| best.contains(a)));

    // Bot replies score below human ones.
    let roles = table("pair_summary");
    let score = |role: &str| {
        roles
            .iter()
            .find(|r| r["dimension"] == "responder_role" && r["value"] == role)
            .and_then(|r| r["mean_pair_score"].as_f64())
            .unwrap()
    };
    assert!(score("bot") < score("agent"));

    // The headline compares with the week before, and every week of the trend is in kpis.
    let kpis = table("kpis");
    assert_eq!(kpis.len(), report::HISTORY_WEEKS);
    assert!(between(page, "<section id=\"headline\">", "</section>").contains("vs 2026-W46"));
}

#[test]
fn ticket_text_is_escaped_everywhere() {
    let r = rendered();
    for page in [&r.index, &r.dashboard] {
        for raw in [
            SCRIPT_COMMENT,
            HOSTILE_REQUESTER,
            HOSTILE_CATEGORY,
            HOSTILE_ADOPTION,
            "<script>alert",
            "<img src=x",
            "<b>Chat bot",
        ] {
            assert!(!page.contains(raw), "unescaped {raw}");
        }
        // Only our own tags: no script element at all.
        assert!(!page.to_lowercase().contains("<script"));
    }
    // The hostile rows are on the page, as text.
    assert!(r.index.contains("&lt;script&gt;alert("));
    assert!(r.index.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(
        r.index.contains("&lt;b&gt;Chat bot&lt;&#x2f;b&gt;")
            || r.index.contains("&lt;b&gt;Chat bot&lt;/b&gt;")
    );
    assert!(r.dashboard.contains("&lt;b&gt;Chat bot"));
    // The launch is marked in the volume chart: plotters escaped the name in the SVG.
    let svg = std::fs::read_to_string(r.week_dir.join("charts/volume_ttr.svg")).unwrap();
    assert!(svg.contains("&lt;b&gt;Chat bot"), "the launch mark");
    assert!(!svg.contains("<b>"));
}

#[test]
fn charts_are_valid_non_trivial_images() {
    let r = rendered();
    let pngs: Vec<_> = r
        .charts
        .iter()
        .filter(|p| p.extension().unwrap() == "png")
        .collect();
    let svgs: Vec<_> = r
        .charts
        .iter()
        .filter(|p| p.extension().unwrap() == "svg")
        .collect();
    // Seven kinds of chart, one TTR chart per adoption with a shift.
    assert!(pngs.len() >= 7 && pngs.len() == svgs.len(), "{pngs:?}");
    for p in pngs {
        common::assert_drawn(p, (760, 380), 20, 0.02);
    }
    for p in svgs {
        let s = std::fs::read_to_string(p).unwrap();
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "{}",
            p.display()
        );
        assert!(s.len() > 3000 && s.contains("<text"), "{}", p.display());
        assert!(!s.contains("no data for this period"), "{}", p.display());
    }
}

#[test]
fn the_dashboard_has_tiles_sparklines_mix_and_deflection() {
    let page = &rendered().dashboard;
    for label in [
        "CSAT",
        "Response rate",
        "First response (median)",
        "Time to resolve (median)",
        "First-contact resolution",
        "Backlog (open at week end)",
    ] {
        assert!(
            page.contains(&format!("<div class=\"label\">{label}</div>")),
            "{label}"
        );
    }
    assert_eq!(page.matches("<div class=\"spark\"><svg").count(), 6);
    assert!(page.contains("Channel mix, 2026-W47"));
    assert!(page.contains("Password reset self-service"));
    // The planted deflection, as the dashboard prints it.
    let row = between(page, "Password reset self-service", "</tr>");
    let pct: f64 = row
        .split("<td class=\"n\">")
        .nth(3)
        .and_then(|c| c.split('%').next())
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or_else(|| panic!("{row}"));
    assert!((pct / 100.0 - generate::DEFLECTION).abs() < 0.08, "{pct}");
}

#[test]
fn a_week_without_data_gives_no_data_charts() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let config = Config::default();
    let week = config.calendar.parse_week("2020-W01").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt
        .block_on(report::gather(&lake, &config, &week, report::Scope::Weekly))
        .unwrap();
    let w = report::weekly(&d, &dir.path().join("reports")).unwrap();
    let page = std::fs::read_to_string(&w.index).unwrap();
    assert!(page.contains("no data for this period"));
    assert!(page.contains("No self-service adoption in the lake."));
    assert!(page.contains("Nobody to survey this week."));
    for p in w.charts.iter().filter(|p| p.extension().unwrap() == "png") {
        let img = image::open(p).unwrap().to_rgb8();
        assert!(
            img.pixels().any(|p| p.0 != [255, 255, 255]),
            "{} is blank",
            p.display()
        );
    }
    let dash = dir.path().join("dash.html");
    report::dashboard(&d, &dash).unwrap();
    assert!(
        std::fs::read_to_string(dash)
            .unwrap()
            .contains("no data for this period")
    );
}

/// The data-quality panel of both pages, on the hand-built messy lake of `tests/slt/messy` (its
/// worked answers are in `tests/slt/data_quality.slt` and `channel_satisfaction_messy.slt`):
/// in 2026-W10 R3's ticket is missing, M2 was resolved and answered before it was opened, and
/// of 8 texts the Spanish, German and French ones are not scored.
#[test]
fn the_data_quality_panel_says_what_the_figures_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let messy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt/messy");
    let files: Vec<PathBuf> = ["tickets", "interactions", "ratings"]
        .iter()
        .map(|t| messy.join(format!("{t}.csv")))
        .collect();
    ingest_canonical(&lake, &files, false).unwrap();
    let config = Config::default();
    let week = config.calendar.parse_week("2026-W10").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt
        .block_on(report::gather(&lake, &config, &week, report::Scope::Weekly))
        .unwrap();
    let w = report::weekly(&d, &dir.path().join("reports")).unwrap();
    let dash = dir.path().join("dash.html");
    report::dashboard(&d, &dash).unwrap();
    for page in [
        std::fs::read_to_string(&w.index).unwrap(),
        std::fs::read_to_string(&dash).unwrap(),
    ] {
        let panel = between(&page, "<section id=\"data-quality\">", "</section>");
        for want in [
            "Ratings placed on a ticket: 2 of 3 (1 whose ticket is not in the lake",
            "Resolved tickets left out of TTR: 1 of 3",
            "opened tickets left out of first response time: 1 of 4",
            "Texts scored for sentiment: 5 of 8; 3 in a language VADER does not read",
        ] {
            assert!(panel.contains(want), "{want}\n{panel}");
        }
    }
}

/// No CSV the report writes hands a spreadsheet a formula: the escalated comment is there, made
/// inert with a leading quote (OWASP), and no cell of any table starts with `=`, `+`, `-` or `@`
/// unless it is a number.
#[test]
fn report_csv_cells_are_inert_for_spreadsheets() {
    let dir = rendered().week_dir.join("tables");
    let escalations = std::fs::read_to_string(dir.join("escalations.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(escalations.as_bytes());
    let comments: Vec<String> = reader
        .records()
        .map(|r| r.unwrap().iter().next_back().unwrap().to_string())
        .collect();
    assert!(
        comments.iter().any(|c| *c == format!("'{FORMULA_COMMENT}")),
        "{comments:?}"
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "csv") {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).unwrap();
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
                assert!(
                    !risky || cell.parse::<f64>().is_ok(),
                    "{}: {cell}",
                    path.display()
                );
            }
        }
    }
}

/// A report keeps the dashboard's figures in the lake; the dashboard of the same week, over the
/// same lake state and with the same configuration, reads them and is the same page as from the
/// computed figures. Another week, another configuration or a new commit computes its own.
#[test]
fn the_dashboard_reads_kept_figures_of_the_same_week_lake_state_and_configuration_only() {
    let common::Generated { dir, lake, .. } = common::generated(3_000, 5);
    let config = Config::default();
    let week = config.calendar.parse_week("2026-W47").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pinned = lake.pinned().unwrap();
    let data = rt
        .block_on(report::gather(
            &pinned,
            &config,
            &week,
            report::Scope::Weekly,
        ))
        .unwrap();
    assert!(!data.adoptions.is_empty());
    assert!(
        report::kept::load(&pinned, &config, &week)
            .unwrap()
            .is_none()
    );
    assert!(report::kept::keep(&pinned, &config, &data).unwrap());
    let kept = report::kept::load(&pinned, &config, &week)
        .unwrap()
        .expect("the figures just kept");

    let out = dir.path().join("pages");
    report::dashboard(&data, &out.join("computed.html")).unwrap();
    report::dashboard(&kept, &out.join("kept.html")).unwrap();
    let page = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    assert!(page("kept.html").contains("Channel mix"));
    assert_eq!(page("kept.html"), page("computed.html"));
    // They hold no detail: the weekly report refuses them.
    assert!(report::weekly(&kept, &out).is_err());

    let other_week = config.calendar.parse_week("2026-W46").unwrap();
    assert!(
        report::kept::load(&pinned, &config, &other_week)
            .unwrap()
            .is_none()
    );
    let stricter = Config {
        satisfied: 5.0,
        ..config.clone()
    };
    assert!(
        report::kept::load(&pinned, &stricter, &week)
            .unwrap()
            .is_none()
    );

    // A commit: the new lake state has none, the snapshot before keeps its own.
    ingest_canonical(&lake, &hostile_rows(&dir.path().join("hostile")), false).unwrap();
    let after = lake.pinned().unwrap();
    assert!(
        report::kept::load(&after, &config, &week)
            .unwrap()
            .is_none()
    );
    assert!(
        report::kept::load(&pinned, &config, &week)
            .unwrap()
            .is_some()
    );
}
