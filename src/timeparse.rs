//! Reading timestamps from exports: explicit `strftime` formats first (a profile's or a mapping's),
//! then ISO 8601 / RFC 3339 forms. A timestamp without a zone is read in the configured time zone.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::model::Micros;

/// Formats tried after the explicit ones, all zone-less (read in the configured zone).
const NAIVE_DEFAULTS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// The years a timestamp may fall in (UTC): what every reader of the lake can represent, and the
/// years an ISO week label can name with four digits.
pub const FIRST_YEAR: i32 = 1;
pub const LAST_YEAR: i32 = 9999;

/// `YYYY-MM-DDTHH:MM:SSZ`, the form most exports and the generator write, read without chrono's
/// general parser (perf: parsing timestamps was 6% of a 1 M ingest's CPU). `None` for any other
/// form and for what the general parser should judge: year 0, a leap second, a day that does not
/// exist.
fn utc_seconds(s: &[u8]) -> Option<Micros> {
    let form = s.len() == 20
        && (s[4], s[7], s[10], s[13], s[16], s[19]) == (b'-', b'-', b'T', b':', b':', b'Z');
    if !form {
        return None;
    }
    let num = |from: usize, to: usize| {
        s[from..to].iter().try_fold(0u32, |n, b| {
            let d = b.wrapping_sub(b'0');
            (d < 10).then_some(n * 10 + u32::from(d))
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if year == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let days = i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE;
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1_000_000)
}

/// 1970-01-01 counted from 0001-01-01 as day 1.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Parses timestamps for one input.
#[derive(Debug, Clone)]
pub struct TimeParser {
    formats: Vec<String>,
    tz: Tz,
}

impl Default for TimeParser {
    fn default() -> Self {
        TimeParser::new(Vec::new(), Tz::UTC)
    }
}

impl TimeParser {
    pub fn new(formats: Vec<String>, tz: Tz) -> Self {
        TimeParser { formats, tz }
    }

    /// Parses one value into UTC microseconds, or says why it cannot. A time outside the years
    /// 1 to 9999 (UTC) is refused.
    pub fn parse(&self, s: &str) -> Result<Micros, String> {
        if self.formats.is_empty()
            && let Some(t) = utc_seconds(s.trim().as_bytes())
        {
            return Ok(t);
        }
        let t = self.parse_any(s)?;
        let year = DateTime::from_timestamp_micros(t).map(|d| d.year());
        match year {
            Some(y) if (FIRST_YEAR..=LAST_YEAR).contains(&y) => Ok(t),
            _ => Err(format!(
                "timestamp '{}' is outside the years 1 to 9999 (UTC)",
                s.trim()
            )),
        }
    }

    fn parse_any(&self, s: &str) -> Result<Micros, String> {
        let s = s.trim();
        for f in &self.formats {
            if let Some(t) = self.with_format(s, f)? {
                return Ok(t);
            }
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.timestamp_micros());
        }
        // RFC 3339 with a space instead of the T, as many databases print it.
        if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return Ok(t.timestamp_micros());
        }
        for f in NAIVE_DEFAULTS {
            if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
                return self.localise(n);
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return self.localise(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
        }
        Err(format!("unparseable timestamp '{s}'"))
    }

    /// `Ok(None)` when the format does not match; `Err` when it matches a time that does not exist.
    fn with_format(&self, s: &str, format: &str) -> Result<Option<Micros>, String> {
        if format.contains("%z") || format.contains("%:z") || format.contains("%#z") {
            return Ok(DateTime::parse_from_str(s, format)
                .ok()
                .map(|t| t.timestamp_micros()));
        }
        if let Ok(n) = NaiveDateTime::parse_from_str(s, format) {
            return self.localise(n).map(Some);
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, format) {
            return self
                .localise(d.and_hms_opt(0, 0, 0).expect("midnight exists"))
                .map(Some);
        }
        Ok(None)
    }

    /// A local time in a DST overlap takes the earlier instant; one in a DST gap is an error.
    fn localise(&self, n: NaiveDateTime) -> Result<Micros, String> {
        match self.tz.from_local_datetime(&n) {
            LocalResult::Single(t) => Ok(t.timestamp_micros()),
            LocalResult::Ambiguous(a, _) => Ok(a.timestamp_micros()),
            LocalResult::None => Err(format!(
                "local time {n} does not exist in time zone {}",
                self.tz
            )),
        }
    }
}

/// Parses an IANA time zone name.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone '{name}' (expected an IANA name such as Europe/Berlin)")
    })
}

/// Formats UTC microseconds as RFC 3339 (seconds precision, `Z`).
pub fn format_micros(t: Micros) -> String {
    DateTime::from_timestamp_micros(t)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// The `YYYY-MM` month (UTC) of a timestamp: the lake's partition value.
pub fn month_of(t: Micros) -> String {
    DateTime::from_timestamp_micros(t)
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_else(|| "invalid".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Micros {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn iso_forms_parse() {
        let p = TimeParser::default();
        assert_eq!(
            p.parse("2024-03-01T10:00:00Z"),
            Ok(utc("2024-03-01T10:00:00Z"))
        );
        assert_eq!(
            p.parse("2024-03-01T12:00:00+02:00"),
            Ok(utc("2024-03-01T10:00:00Z"))
        );
        assert_eq!(
            p.parse("2024-03-01 10:00:00"),
            Ok(utc("2024-03-01T10:00:00Z"))
        );
        assert_eq!(
            p.parse("2024-03-01 10:00:00.250"),
            Ok(utc("2024-03-01T10:00:00.250Z"))
        );
        assert_eq!(p.parse("2024-03-01"), Ok(utc("2024-03-01T00:00:00Z")));
        assert!(p.parse("yesterday").is_err());
        assert!(p.parse("2024-02-30 10:00").is_err());
    }

    #[test]
    fn the_utc_seconds_form_is_read_as_chrono_reads_it() {
        assert_eq!(
            utc_seconds(b"2024-03-01T10:00:00Z"),
            Some(utc("2024-03-01T10:00:00Z"))
        );
        assert_eq!(utc_seconds(b"1969-12-31T23:59:59Z"), Some(-1_000_000));
        for other in [
            "2024-02-30T10:00:00Z",
            "0000-01-01T00:00:00Z",
            "2016-12-31T23:59:60Z",
        ] {
            assert_eq!(utc_seconds(other.as_bytes()), None, "{other}");
        }
        // Any value of that shape, its fields a little past their ranges: the fast path gives
        // chrono's instant, or leaves the value to the general parser.
        use proptest::prelude::*;
        proptest!(|(y in 0..=9999u32, mo in 0..=13u32, d in 0..=32u32, h in 0..=24u32, mi in 0..=60u32, s in 0..=60u32)| {
            let value = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
            let general = DateTime::parse_from_rfc3339(&value).map(|t| t.timestamp_micros());
            match utc_seconds(value.as_bytes()) {
                Some(fast) => prop_assert_eq!(Ok(fast), general, "{}", value),
                // Only what the general parser refuses, year 0 and leap seconds go past it.
                None => prop_assert!(general.is_err() || y == 0 || s == 60, "{}", value),
            }
        });
    }

    #[test]
    fn times_outside_years_1_to_9999_are_refused() {
        let p = TimeParser::default();
        assert!(p.parse("9999-12-31T23:59:59Z").is_ok());
        assert!(p.parse("0001-01-01T00:00:00Z").is_ok());
        // 10000-01-01T13:59:59Z in UTC: it would land in partition month=+10000-01.
        let e = p.parse("9999-12-31T23:59:59-14:00").unwrap_err();
        assert!(e.contains("outside the years 1 to 9999"), "{e}");
        assert!(p.parse("0000-06-01T00:00:00Z").is_err());
        assert!(p.parse("+10000-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn zone_less_values_use_the_configured_zone() {
        let p = TimeParser::new(
            vec!["%d/%m/%Y %H:%M".into()],
            parse_tz("Europe/Berlin").unwrap(),
        );
        // Winter: UTC+1.
        assert_eq!(p.parse("29/2/2016 07:08"), Ok(utc("2016-02-29T06:08:00Z")));
        // Explicit offsets are not shifted again.
        assert_eq!(
            p.parse("2016-02-29T07:08:00Z"),
            Ok(utc("2016-02-29T07:08:00Z"))
        );
        // 02:30 on the spring-forward night does not exist in Berlin.
        assert!(p.parse("27/3/2016 02:30").is_err());
    }

    #[test]
    fn profile_formats_parse() {
        let twitter = TimeParser::new(vec!["%a %b %d %H:%M:%S %z %Y".into()], Tz::UTC);
        assert_eq!(
            twitter.parse("Wed Oct 11 06:55:44 +0000 2017"),
            Ok(utc("2017-10-11T06:55:44Z"))
        );
        let jira = TimeParser::new(vec!["%d/%b/%y %I:%M %p".into()], Tz::UTC);
        assert_eq!(
            jira.parse("25/Feb/26 10:17 PM"),
            Ok(utc("2026-02-25T22:17:00Z"))
        );
        assert_eq!(
            jira.parse("5/Mar/26 9:05 AM"),
            Ok(utc("2026-03-05T09:05:00Z"))
        );
    }

    #[test]
    fn months_and_formatting() {
        assert_eq!(month_of(utc("2024-03-31T23:59:59Z")), "2024-03");
        assert_eq!(
            format_micros(utc("2024-03-01T10:00:00Z")),
            "2024-03-01T10:00:00Z"
        );
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
