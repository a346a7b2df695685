//! `deskpulse predict` on generated lakes: the planted effects are learned and published, and
//! recorded once however often recorded; the same lake with its ratings shuffled across tickets
//! cannot be told from chance and publishes nothing.

use deskpulse::config::Config;
use deskpulse::engine::{Engine, Params};
use deskpulse::generate::{self, GenerateOptions};
use deskpulse::ingest::ingest_canonical;
use deskpulse::lake::Lake;
use deskpulse::model::Table;
use deskpulse::predict::{Options, Outcome, Spec, predict, record, render_text};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::common;

/// Enough tickets for a validation fifth of about 1,400 ratings.
const TICKETS: u64 = 20_000;

fn outcome(lake: &Lake, options: &Options) -> Outcome {
    let params = Params {
        by_week: false,
        as_of: generate::end_micros(),
        ..Params::default()
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let engine = Engine::open(lake, &Config::default(), &params)
            .await
            .unwrap();
        predict(&engine, options).await.unwrap()
    })
}

#[test]
fn the_planted_effects_are_learned_and_published() {
    let g = common::generated(TICKETS, 11);
    // The generator ties satisfaction to the channel, the category, the bot, the outage and
    // the mood of the requester's follow-up (generate::MOOD_COUPLING): published at the
    // default margin.
    let o = outcome(&g.lake, &Options::default());
    assert!(o.published, "{o:#?}");
    let (auc, low) = (o.auc.unwrap(), o.auc_low.unwrap());
    assert!(low > 0.6 && auc > low, "{o:#?}");
    assert!(o.brier.unwrap() < o.brier_base_rate.unwrap(), "{o:#?}");
    assert_eq!(o.train_tickets + o.validation_tickets, o.rated_tickets);
    assert_eq!(o.predicted_tickets, o.resolved_tickets - o.rated_tickets);
    assert_eq!(o.predictions.len(), o.predicted_tickets);
    assert!(o.predictions.iter().all(|(_, p)| (0.0..=1.0).contains(p)));
    // About a fifth validates (ties at the split moment validate too).
    let share = o.validation_tickets as f64 / o.rated_tickets as f64;
    assert!((0.19..0.22).contains(&share), "{share}");
    // The planted bot penalty: a bot makes satisfaction less likely.
    let bot = o
        .drivers
        .iter()
        .find(|d| d.change.starts_with("a bot"))
        .unwrap();
    assert!(bot.points < 0.0 && bot.high.unwrap() < 0.0, "{bot:?}");
    // The planted mood: a happier last message makes satisfaction more likely.
    let mood = o
        .drivers
        .iter()
        .find(|d| d.change.starts_with("last requester message"))
        .unwrap();
    assert!(mood.points > 0.0 && mood.low.unwrap() > 0.0, "{mood:?}");
    // Calibration: ten tenths covering the validation tickets.
    assert_eq!(o.calibration.len(), 10);
    assert_eq!(
        o.calibration.iter().map(|d| d.tickets).sum::<usize>(),
        o.validation_tickets
    );
    assert!(o.validation_bias.unwrap().abs() < 0.05, "{o:#?}");

    // Recorded: one row per unrated resolved ticket; recorded again from the unchanged lake,
    // the same model and the same rows, not twice as many.
    let as_of = generate::end_micros();
    assert_eq!(
        record(&g.lake, &o, as_of).unwrap(),
        o.predicted_tickets as u64
    );
    let rows = g.lake.row_count(Table::Predictions).unwrap();
    assert_eq!(rows, o.predicted_tickets as u64);
    let again = outcome(
        &g.lake,
        &Options {
            driver_refits: 0,
            ..Options::default()
        },
    );
    assert_eq!(again.model_id, o.model_id);
    assert_eq!(again.predictions, o.predictions);
    record(&g.lake, &again, as_of).unwrap();
    assert_eq!(g.lake.row_count(Table::Predictions).unwrap(), rows);
    // The model itself is recorded once, and scores a ticket as predict did.
    assert_eq!(g.lake.row_count(Table::Models).unwrap(), 1);
    let spec = Spec::latest(&g.lake).unwrap().unwrap();
    assert_eq!(Some(&spec.model_id), o.model_id.as_ref());
    let examples = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let params = Params {
            by_week: false,
            as_of,
            ..Params::default()
        };
        let engine = Engine::open(&g.lake, &Config::default(), &params)
            .await
            .unwrap();
        let batches = engine.metric("prediction_features").await.unwrap();
        deskpulse::predict::features::examples(&batches).unwrap()
    });
    let predicted: std::collections::HashMap<&str, f64> = o
        .predictions
        .iter()
        .map(|(t, p)| (t.as_str(), *p))
        .collect();
    let unrated: Vec<_> = examples.iter().filter(|e| e.satisfied.is_none()).collect();
    assert_eq!(unrated.len(), predicted.len());
    for e in unrated.iter().take(200) {
        let p = spec.probability(e);
        assert!(
            (p - predicted[e.ticket_id.as_str()]).abs() < 1e-12,
            "{}",
            e.ticket_id
        );
    }
}

/// The figures docs/prediction.md and the README show for the demo lake (25,000 tickets, seed
/// 42; `--as-of 2026-11-30` there, after the generated period's end as here).
#[test]
fn the_demo_lake_gives_the_documented_figures() {
    let g = common::generated(deskpulse::demo::DEMO_TICKETS, deskpulse::demo::SAMPLE_SEED);
    let o = outcome(&g.lake, &Options::default());
    let r3 = |x: Option<f64>| format!("{:.3}", x.unwrap());
    assert_eq!(
        (r3(o.auc), r3(o.auc_low), r3(o.auc_high)),
        ("0.663".into(), "0.630".into(), "0.696".into()),
        "{o:#?}"
    );
    assert_eq!(format!("{:.4}", o.brier.unwrap()), "0.1880");
    assert_eq!(format!("{:.4}", o.brier_base_rate.unwrap()), "0.2038");
    assert_eq!(
        format!("{:+.1}", 100.0 * o.validation_bias.unwrap()),
        "+7.0"
    );
    assert_eq!(
        (
            o.resolved_tickets,
            o.rated_tickets,
            o.train_tickets,
            o.validation_tickets,
            o.predicted_tickets
        ),
        (24_976, 7_084, 5_667, 1_417, 17_892)
    );
    assert!(o.published);
    let driver = |name: &str| {
        let d = o.drivers.iter().find(|d| d.change == name).unwrap();
        let f = |x: f64| format!("{x:+.1}");
        (f(d.points), f(d.low.unwrap()), f(d.high.unwrap()))
    };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        driver("a bot took part (versus humans only)"),
        t("-7.8", "-10.5", "-4.2")
    );
    assert_eq!(
        driver("last requester message 0.5 more positive"),
        t("+2.4", "+1.6", "+3.3")
    );
    assert_eq!(driver("channel chat (versus phone)").0, "+6.8");
    assert_eq!(driver("channel email (versus phone)").0, "-7.1");
    assert_eq!(driver("channel portal (versus phone)").0, "-5.6");

    // The whole text docs/prediction.md shows (validation, calibration, every driver), and
    // the lines of it the README quotes.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
    let text = render_text(&o);
    assert!(
        page("docs/prediction.md").contains(text.trim_end()),
        "{text}"
    );
    let readme = page("README.md");
    let block = readme
        .split("$ deskpulse predict --as-of 2026-11-30 --record\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    for line in block.lines() {
        assert!(
            line == "..." || line.starts_with("recorded ") || text.contains(line),
            "README: {line}"
        );
    }

    // Recorded, the estimate of the outage week docs/prediction.md shows.
    record(&g.lake, &o, generate::end_micros()).unwrap();
    let t = |d: &str| {
        deskpulse::timeparse::TimeParser::default()
            .parse(d)
            .unwrap()
    };
    let params = Params {
        from: Some(t("2026-11-16")),
        to: Some(t("2026-11-23")),
        by_week: false,
        as_of: generate::end_micros(),
        ..Params::default()
    };
    let rows = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let engine = Engine::open(&g.lake, &Config::default(), &params)
            .await
            .unwrap();
        let sql = "SELECT channel, resolved, rated, ROUND(survey_csat,3) AS survey, predicted,
    ROUND(coverage,3) AS coverage, ROUND(estimated_csat,3) AS estimated,
    ROUND(estimated_csat_low,3) AS low, ROUND(estimated_csat_high,3) AS high
    FROM estimated_satisfaction ORDER BY channel";
        let batches = engine.sql(sql).await.unwrap();
        deskpulse::engine::output::render(&batches, deskpulse::engine::output::Format::Table)
            .unwrap()
    });
    assert!(
        page("docs/prediction.md").contains(rows.trim_end()),
        "{rows}"
    );
}

#[test]
fn shuffled_ratings_cannot_be_predicted_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate::generate(&GenerateOptions {
        tickets: TICKETS,
        seed: 11,
        out: data.clone(),
    })
    .unwrap();
    // Each rating keeps its ticket and time; the scores (with their scales) change places.
    let path = data.join("ratings.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let (raw, scale) = (
        header.iter().position(|h| h == "score_raw").unwrap(),
        header.iter().position(|h| h == "scale").unwrap(),
    );
    let mut scores: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[raw].to_string(), r[scale].to_string()))
        .collect();
    scores.shuffle(&mut rand_pcg::Pcg64Mcg::seed_from_u64(7));
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    for (row, (r, s)) in rows.iter_mut().zip(scores) {
        let fields: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, f)| match i {
                i if i == raw => r.clone(),
                i if i == scale => s.clone(),
                _ => f.to_string(),
            })
            .collect();
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest_canonical(&lake, &generate::files(&data), false).unwrap();
    let options = Options {
        driver_refits: 0,
        ..Options::default()
    };
    let o = outcome(&lake, &options);
    assert!(!o.published, "{o:#?}");
    let (low, high) = (o.auc_low.unwrap(), o.auc_high.unwrap());
    assert!(
        low < 0.5 && 0.5 < high,
        "the interval covers chance: {o:#?}"
    );
    assert_eq!(o.predicted_tickets, 0);
    assert!(o.predictions.is_empty());
    assert!(o.reason.as_deref().unwrap().contains("cannot be predicted"));
    // Nothing published, nothing recorded.
    assert_eq!(record(&lake, &o, generate::end_micros()).unwrap(), 0);
    assert_eq!(lake.row_count(Table::Predictions).unwrap(), 0);
}
