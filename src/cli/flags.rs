//! Flags shared by several commands, and the value parsers that turn raw flag text into typed
//! values once (times, days, weeks), so a bad value is a usage error before anything runs.

use deskpulse::config::{Fcr, parse_duration};
use deskpulse::engine::{Params, output};
use deskpulse::model::Micros;
use deskpulse::timeparse::TimeParser;

const DAY: Micros = 86_400_000_000;

/// A point in time: `2026-11-16`, `2026-11-16T09:00:00Z`, ... (the ingest's time syntax).
pub fn time(s: &str) -> Result<Micros, String> {
    TimeParser::default().parse(s)
}

/// A whole number of days, at least one: `7d`.
pub fn days(s: &str) -> Result<u32, String> {
    whole(s, 86_400, "days such as 7d").and_then(|d| match d {
        0 => Err(format!("'{s}': at least one day")),
        d => Ok(d),
    })
}

/// A whole number of weeks: `12w`.
pub fn weeks(s: &str) -> Result<u32, String> {
    whole(s, 7 * 86_400, "weeks such as 12w")
}

fn whole(s: &str, unit_secs: u64, what: &str) -> Result<u32, String> {
    let bad = || format!("'{s}' is not a number of {what}");
    let d = parse_duration(s).map_err(|_| bad())?;
    if d.subsec_nanos() != 0 || !d.as_secs().is_multiple_of(unit_secs) {
        return Err(bad());
    }
    u32::try_from(d.as_secs() / unit_secs).map_err(|_| bad())
}

/// Where the queries run.
#[derive(clap::Args)]
pub struct On {
    /// Run the queries on the Ballista cluster whose scheduler is here (default: the
    /// configuration's `cluster`, else in this process).
    #[arg(long, value_name = "df://HOST:PORT", value_parser = deskpulse::config::check_cluster_url)]
    pub cluster: Option<String>,
}

/// The period of `followups` and `escalations`.
#[derive(clap::Args)]
pub struct Period {
    /// The last N days before --as-of (e.g. 7d), instead of --from/--to.
    #[arg(long, value_parser = days, conflicts_with_all = ["from", "to"])]
    window: Option<u32>,
    #[arg(long, value_parser = time)]
    from: Option<Micros>,
    #[arg(long, value_parser = time)]
    to: Option<Micros>,
    /// "Now" for the window and the cooldown (default: the current time).
    #[arg(long, value_parser = time)]
    as_of: Option<Micros>,
}

impl Period {
    /// `--window Nd` before `--as-of` (default now), or `--from`/`--to`.
    pub fn params(&self) -> Params {
        let mut p = Params {
            by_week: false,
            ..Params::default()
        };
        if let Some(a) = self.as_of {
            p.as_of = a;
        }
        match self.window {
            Some(days) => {
                p.from = Some(p.as_of - i64::from(days) * DAY);
                p.to = Some(p.as_of);
            }
            _ => (p.from, p.to) = (self.from, self.to),
        }
        p
    }
}

/// The period and output of a query.
#[derive(clap::Args)]
pub struct Scope {
    /// Start of the period (inclusive), e.g. 2026-11-16 or 2026-11-16T09:00:00Z.
    #[arg(long, value_parser = time)]
    from: Option<Micros>,
    /// End of the period (exclusive).
    #[arg(long, value_parser = time)]
    to: Option<Micros>,
    /// Split a --from/--to period into ISO weeks (without a range, weeks are the default).
    #[arg(long)]
    by_week: bool,
    /// Point in time of the backlog (default: now).
    #[arg(long, value_parser = time)]
    as_of: Option<Micros>,
    /// First-contact resolution definition: one_touch or no_reassignment (default: the configuration's).
    #[arg(long)]
    pub fcr: Option<Fcr>,
    /// Output: table, csv or json.
    #[arg(long, default_value = "table")]
    pub format: output::Format,
}

impl Scope {
    pub fn params(&self) -> Params {
        let mut p = Params {
            from: self.from,
            to: self.to,
            by_week: self.by_week || (self.from.is_none() && self.to.is_none()),
            ..Params::default()
        };
        if let Some(a) = self.as_of {
            p.as_of = a;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_weeks_are_whole() {
        assert_eq!(days("7d"), Ok(7));
        assert_eq!(days("1w"), Ok(7));
        assert!(days("a week").is_err() && days("36h").is_err() && days("7").is_err());
        assert!(days("0d").is_err());
        assert_eq!(weeks("12w"), Ok(12));
        assert_eq!(weeks("14d"), Ok(2));
        assert!(weeks("soon").is_err() && weeks("10d").is_err());
    }
}
