//! `deskpulse.toml`: what differs between desks. Every key has a default, so no file is needed;
//! an unknown key or a bad value is an error that names the key.
//!
//! ```toml
//! lake = "lake"                 # the lake: a directory or s3://bucket/prefix (--lake overrides)
//! satisfied = 4.0               # a rating is satisfied when score_5 >= this
//! fcr = "one_touch"             # or "no_reassignment" (ServiceNow's definition)
//! memory_mb = 4096              # the query engine's budget before it spills (default: none)
//! tickets_per_pass = 1000000    # larger lakes compute per-ticket stages in passes of this size
//! cluster = "df://sched:50050"  # run the metric SQL on this Ballista cluster (--cluster overrides)
//! sentiment_languages = ["en"]  # texts in these languages get a VADER score (others: NULL)
//!
//! [calendar]
//! timezone = "UTC"              # IANA name; periods (ISO weeks) and business hours use it
//! hours = "09:00-17:00"
//! workdays = ["mon", "tue", "wed", "thu", "fri"]
//! holidays = ["2026-12-25"]
//!
//! [targets]                     # reply-latency targets: "90s", "5m", "2h", "4bh" (business hours), "1bd"
//! phone = "1m"
//! email = "4bh"
//!
//! [followups]
//! min_rated = 5
//! csat_threshold = 0.7
//! cooldown_days = 30
//! cap = 100
//! opt_out = ""                  # a file of requester ids, one per line
//! seed = 42
//!
//! [ttr_shift]
//! window_weeks = 12
//! ramp_weeks = 2
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;

use crate::calendar::Calendar;
use crate::model::Channel;
use crate::sentiment::lang::ScoredLanguages;
use crate::timeparse::parse_tz;

/// The name looked for in the working directory.
pub const FILE_NAME: &str = "deskpulse.toml";

/// A latency target: wall-clock seconds, or business seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Seconds(f64),
    BusinessSeconds(f64),
}

/// First-contact resolution definitions (DESIGN §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fcr {
    /// Resolved with one agent reply and no reopen.
    OneTouch,
    /// Resolved with no reassignment and no reopen (ServiceNow).
    NoReassignment,
}

impl std::str::FromStr for Fcr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "one_touch" => Ok(Fcr::OneTouch),
            "no_reassignment" => Ok(Fcr::NoReassignment),
            other => Err(format!("'{other}' (expected one_touch or no_reassignment)")),
        }
    }
}

impl Fcr {
    pub fn as_str(self) -> &'static str {
        match self {
            Fcr::OneTouch => "one_touch",
            Fcr::NoReassignment => "no_reassignment",
        }
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub lake: PathBuf,
    pub satisfied: f64,
    pub fcr: Fcr,
    pub calendar: Calendar,
    pub targets: BTreeMap<Channel, Target>,
    /// The query engine's memory budget in MiB, if any: sorts and aggregations past it spill to
    /// temporary files (the process's peak is this plus Parquet decoding buffers).
    pub memory_mb: Option<u64>,
    /// A lake with more tickets computes the per-ticket stages (`ticket_facts`, `pair_scores`,
    /// `prediction_features`) in passes of about this many tickets, so the memory their joins
    /// take does not grow with the lake.
    pub tickets_per_pass: u64,
    /// The Ballista scheduler (`df://HOST:PORT`) that runs the metric SQL, if any (needs a build
    /// with the `cluster` feature).
    pub cluster: Option<String>,
    /// The languages whose texts get a VADER score at ingest (ISO 639-1; English by default).
    pub sentiment_languages: ScoredLanguages,
    pub min_rated: u32,
    pub csat_threshold: f64,
    pub cooldown_days: u32,
    pub cap: u32,
    pub opt_out: Option<PathBuf>,
    pub seed: u64,
    pub window_weeks: u32,
    pub ramp_weeks: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    lake: Option<PathBuf>,
    satisfied: Option<f64>,
    fcr: Option<String>,
    memory_mb: Option<u64>,
    tickets_per_pass: Option<u64>,
    cluster: Option<String>,
    sentiment_languages: Option<Vec<String>>,
    calendar: Option<CalendarFile>,
    targets: Option<BTreeMap<String, String>>,
    followups: Option<FollowupsFile>,
    ttr_shift: Option<TtrShiftFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    timezone: Option<String>,
    hours: Option<String>,
    workdays: Option<Vec<String>>,
    holidays: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowupsFile {
    min_rated: Option<u32>,
    csat_threshold: Option<f64>,
    cooldown_days: Option<u32>,
    cap: Option<u32>,
    opt_out: Option<String>,
    seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TtrShiftFile {
    window_weeks: Option<u32>,
    ramp_weeks: Option<u32>,
}

/// The default reply-latency targets (DESIGN §4.2).
pub fn default_targets() -> BTreeMap<Channel, Target> {
    Channel::ALL
        .into_iter()
        .map(|c| {
            let t = match c {
                Channel::Phone => Target::Seconds(60.0),
                Channel::Chat
                | Channel::Messaging
                | Channel::Sms
                | Channel::Social
                | Channel::Bot => Target::Seconds(300.0),
                Channel::Email | Channel::Portal => Target::BusinessSeconds(4.0 * 3600.0),
                _ => Target::BusinessSeconds(8.0 * 3600.0),
            };
            (c, t)
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lake: PathBuf::from("lake"),
            satisfied: 4.0,
            fcr: Fcr::OneTouch,
            calendar: Calendar::default(),
            targets: default_targets(),
            memory_mb: None,
            tickets_per_pass: 1_000_000,
            cluster: None,
            sentiment_languages: ScoredLanguages::default(),
            min_rated: 5,
            csat_threshold: 0.7,
            cooldown_days: 30,
            cap: 100,
            opt_out: None,
            seed: 42,
            window_weeks: 12,
            ramp_weeks: 2,
        }
    }
}

/// Checks a cluster address: `df://HOST:PORT` (the scheduler of a Ballista cluster).
pub fn check_cluster_url(url: &str) -> Result<String, String> {
    let bad = || format!("'{url}' (expected df://HOST:PORT)");
    let rest = url.strip_prefix("df://").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// Parses "90s", "5m", "2h", "1d" (wall clock) or "4bh", "1bd" (business hours, days of the
/// calendar's working hours).
pub fn parse_target(s: &str, calendar: &Calendar) -> Result<Target, String> {
    let s = s.trim();
    let (n, unit) =
        number_and_unit(s).ok_or_else(|| format!("'{s}' is not a duration such as 5m or 4bh"))?;
    let day = (calendar.close - calendar.open).num_seconds() as f64;
    Ok(match unit {
        "s" => Target::Seconds(n),
        "m" => Target::Seconds(n * 60.0),
        "h" => Target::Seconds(n * 3600.0),
        "d" => Target::Seconds(n * 86400.0),
        "bh" => Target::BusinessSeconds(n * 3600.0),
        "bd" => Target::BusinessSeconds(n * day),
        _ => return Err(format!("'{s}': unit must be s, m, h, d, bh or bd")),
    })
}

/// Splits "4.5bh" into 4.5 and "bh".
fn number_and_unit(s: &str) -> Option<(f64, &str)> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    Some((num.parse().ok()?, unit))
}

/// Parses a wall-clock duration such as `250ms`, `5s`, `10m`, `1h`, `2d` or `12w`: the one
/// duration syntax of the configuration and every flag.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (n, unit) = number_and_unit(s)
        .ok_or_else(|| format!("'{s}' is not a duration (like 500ms, 5s, 10m, 1h, 2d, 12w)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        "w" => n * 7.0 * 86400.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (ms, s, m, h, d, w)")),
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

impl Config {
    /// Reads `path`, or `deskpulse.toml` in the working directory when there is one, else the
    /// defaults.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        match path {
            Some(p) => Config::from_file(p),
            None if Path::new(FILE_NAME).exists() => Config::from_file(Path::new(FILE_NAME)),
            None => Ok(Config::default()),
        }
    }

    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Config::from_toml(&text).with_context(|| format!("configuration {}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Config> {
        let f: File = toml::from_str(text)?;
        let mut c = Config::default();
        if let Some(l) = f.lake {
            c.lake = l;
        }
        if let Some(s) = f.satisfied {
            if !(1.0..=5.0).contains(&s) {
                bail!("key 'satisfied': {s} is not on the 1–5 scale");
            }
            c.satisfied = s;
        }
        if let Some(fcr) = f.fcr {
            c.fcr = fcr
                .parse()
                .map_err(anyhow::Error::msg)
                .context("key 'fcr'")?;
        }
        if let Some(m) = f.memory_mb {
            if m < 64 {
                bail!("key 'memory_mb': {m} MiB is too little for the query engine (at least 64)");
            }
            c.memory_mb = Some(m);
        }
        if let Some(n) = f.tickets_per_pass {
            if n == 0 {
                bail!("key 'tickets_per_pass': must be at least 1");
            }
            c.tickets_per_pass = n;
        }
        if let Some(url) = f.cluster {
            check_cluster_url(&url).map_err(|e| anyhow::anyhow!("key 'cluster': {e}"))?;
            c.cluster = Some(url);
        }
        if let Some(langs) = f.sentiment_languages {
            c.sentiment_languages = ScoredLanguages::new(&langs)
                .map_err(|e| anyhow::anyhow!("key 'sentiment_languages': {e}"))?;
        }
        if let Some(cal) = f.calendar {
            if let Some(tz) = cal.timezone {
                c.calendar.tz = parse_tz(&tz)
                    .map_err(anyhow::Error::msg)
                    .context("key 'calendar.timezone'")?;
            }
            if let Some(h) = cal.hours {
                let (open, close) = h
                    .split_once('-')
                    .and_then(|(a, b)| {
                        Some((
                            NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
                            NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
                        ))
                    })
                    .filter(|(a, b)| a < b)
                    .with_context(|| {
                        format!("key 'calendar.hours': '{h}' (expected HH:MM-HH:MM)")
                    })?;
                c.calendar.open = open;
                c.calendar.close = close;
            }
            if let Some(days) = cal.workdays {
                let mut w = [false; 7];
                for d in &days {
                    let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                        .iter()
                        .position(|x| d.to_ascii_lowercase().starts_with(x))
                        .with_context(|| {
                            format!("key 'calendar.workdays': '{d}' is not a weekday")
                        })?;
                    w[i] = true;
                }
                c.calendar.workdays = w;
            }
            if let Some(hs) = cal.holidays {
                let mut v = hs
                    .iter()
                    .map(|h| {
                        NaiveDate::parse_from_str(h, "%Y-%m-%d").with_context(|| {
                            format!("key 'calendar.holidays': '{h}' is not YYYY-MM-DD")
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                v.sort();
                c.calendar.holidays = v;
            }
        }
        if let Some(t) = f.targets {
            for (ch, v) in t {
                let channel: Channel = ch
                    .parse()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("key 'targets.{ch}'"))?;
                let target = parse_target(&v, &c.calendar)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("key 'targets.{ch}'"))?;
                c.targets.insert(channel, target);
            }
        }
        if let Some(fu) = f.followups {
            c.min_rated = fu.min_rated.unwrap_or(c.min_rated);
            if let Some(t) = fu.csat_threshold {
                if !(0.0..=1.0).contains(&t) {
                    bail!("key 'followups.csat_threshold': {t} is not a share between 0 and 1");
                }
                c.csat_threshold = t;
            }
            c.cooldown_days = fu.cooldown_days.unwrap_or(c.cooldown_days);
            c.cap = fu.cap.unwrap_or(c.cap);
            c.opt_out = fu.opt_out.filter(|s| !s.is_empty()).map(PathBuf::from);
            c.seed = fu.seed.unwrap_or(c.seed);
        }
        if let Some(t) = f.ttr_shift {
            c.window_weeks = t.window_weeks.unwrap_or(c.window_weeks);
            c.ramp_weeks = t.ramp_weeks.unwrap_or(c.ramp_weeks);
            if c.window_weeks == 0 {
                bail!("key 'ttr_shift.window_weeks': must be at least 1");
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.satisfied, 4.0);
        assert_eq!(c.targets[&Channel::Phone], Target::Seconds(60.0));
        assert_eq!(
            c.targets[&Channel::Email],
            Target::BusinessSeconds(14_400.0)
        );
        assert_eq!(
            c.targets[&Channel::WalkIn],
            Target::BusinessSeconds(28_800.0)
        );
    }

    #[test]
    fn values_are_read_and_errors_name_the_key() {
        let c = Config::from_toml(
            "satisfied = 4.5\n[calendar]\ntimezone = \"Europe/Berlin\"\nhours = \"08:00-16:30\"\nworkdays = [\"mon\",\"tue\"]\n[targets]\nchat = \"2m\"\nemail = \"1bd\"\n",
        )
        .unwrap();
        assert_eq!(c.satisfied, 4.5);
        assert_eq!(
            Config::from_toml("memory_mb = 512").unwrap().memory_mb,
            Some(512)
        );
        assert_eq!(
            Config::from_toml("tickets_per_pass = 250000")
                .unwrap()
                .tickets_per_pass,
            250_000
        );
        assert_eq!(
            Config::from_toml("cluster = \"df://sched.example:50050\"")
                .unwrap()
                .cluster
                .as_deref(),
            Some("df://sched.example:50050")
        );
        assert_eq!(
            c.calendar.workdays,
            [true, true, false, false, false, false, false]
        );
        assert_eq!(c.targets[&Channel::Chat], Target::Seconds(120.0));
        assert_eq!(
            c.targets[&Channel::Email],
            Target::BusinessSeconds(8.5 * 3600.0)
        );
        for (bad, key) in [
            ("colour = 1", "colour"),
            ("[calendar]\nhours = \"17:00-09:00\"", "calendar.hours"),
            ("[calendar]\ntimezone = \"Nowhere\"", "calendar.timezone"),
            ("[targets]\nfax = \"1h\"", "targets.fax"),
            ("[targets]\nchat = \"soon\"", "targets.chat"),
            ("fcr = \"magic\"", "fcr"),
            ("memory_mb = 10", "memory_mb"),
            ("tickets_per_pass = 0", "tickets_per_pass"),
            ("cluster = \"http://sched:50050\"", "cluster"),
            ("cluster = \"df://sched\"", "cluster"),
            (
                "[followups]\ncsat_threshold = 7",
                "followups.csat_threshold",
            ),
        ] {
            let e = format!("{:#}", Config::from_toml(bad).unwrap_err());
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
