//! Business time: the desk's time zone, working hours, working days and holidays, and the number
//! of business seconds between two instants.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use crate::model::Micros;

/// When the desk works. The default is Monday to Friday, 09:00–17:00 UTC, no holidays.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Calendar {
    pub tz: Tz,
    pub open: NaiveTime,
    pub close: NaiveTime,
    /// Working days (Monday = index 0).
    pub workdays: [bool; 7],
    /// Sorted.
    pub holidays: Vec<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            tz: Tz::UTC,
            open: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            close: NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
            workdays: [true, true, true, true, true, false, false],
            holidays: Vec::new(),
        }
    }
}

impl Calendar {
    fn is_workday(&self, d: NaiveDate) -> bool {
        self.workdays[d.weekday().num_days_from_monday() as usize]
            && self.holidays.binary_search(&d).is_err()
    }

    /// The working interval of a local date, as UTC microseconds (DST-aware).
    fn day_window(&self, d: NaiveDate) -> Option<(Micros, Micros)> {
        if !self.is_workday(d) {
            return None;
        }
        let at = |t: NaiveTime| {
            self.tz
                .from_local_datetime(&d.and_time(t))
                .earliest()
                .map(|x| x.timestamp_micros())
        };
        Some((at(self.open)?, at(self.close)?))
    }

    /// Business seconds between two instants (0 when `end <= start`).
    pub fn business_seconds(&self, start: Micros, end: Micros) -> f64 {
        self.business_seconds_by(start, end, |d| self.day_window(d))
    }

    /// [`Calendar::business_seconds`] of many pairs of instants, each local date's working
    /// interval worked out once (that is, a zone conversion per date rather than per date of
    /// every pair).
    pub fn business_seconds_of(
        &self,
        pairs: impl Iterator<Item = Option<(Micros, Micros)>>,
    ) -> Vec<Option<f64>> {
        let mut windows: foldhash::HashMap<NaiveDate, Option<(Micros, Micros)>> =
            Default::default();
        pairs
            .map(|p| {
                let (start, end) = p?;
                Some(self.business_seconds_by(start, end, |d| {
                    *windows.entry(d).or_insert_with(|| self.day_window(d))
                }))
            })
            .collect()
    }

    fn business_seconds_by(
        &self,
        start: Micros,
        end: Micros,
        mut day_window: impl FnMut(NaiveDate) -> Option<(Micros, Micros)>,
    ) -> f64 {
        if end <= start {
            return 0.0;
        }
        let local = |t: Micros| {
            DateTime::from_timestamp_micros(t)
                .expect("valid timestamp")
                .with_timezone(&self.tz)
                .date_naive()
        };
        let (first, last) = (local(start), local(end));
        let mut total: i64 = 0;
        let mut d = first;
        while d <= last {
            // Whole weeks in the middle: the same number of working seconds each, bar holidays.
            if d.weekday() == Weekday::Mon
                && d + Duration::days(7) < last
                && self.holidays.is_empty()
            {
                let week: i64 = (0..7)
                    .filter_map(|k| day_window(d + Duration::days(k)))
                    .map(|(a, b)| b - a)
                    .sum();
                // Only safe when no window is clipped: the week lies strictly inside (first, last).
                if d > first {
                    total += week;
                    d += Duration::days(7);
                    continue;
                }
            }
            if let Some((open, close)) = day_window(d) {
                let (a, b) = (open.max(start), close.min(end));
                if b > a {
                    total += b - a;
                }
            }
            d += Duration::days(1);
        }
        total as f64 / 1e6
    }

    /// The ISO week (Monday 00:00 to the next Monday 00:00 in the desk's zone) that holds `t`.
    pub fn week_of(&self, t: Micros) -> Week {
        let local = DateTime::from_timestamp_micros(t)
            .expect("valid timestamp")
            .with_timezone(&self.tz)
            .date_naive();
        let w = local.iso_week();
        self.week(w.year(), w.week())
            .expect("the ISO week of a date exists")
    }

    /// ISO week `week` of `year`, or `None` when the year has no such week.
    pub fn week(&self, year: i32, week: u32) -> Option<Week> {
        let monday = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)?;
        let midnight = |d: NaiveDate| {
            self.tz
                .from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
                .map(|x| x.timestamp_micros())
        };
        Some(Week {
            label: format!("{year:04}-W{week:02}"),
            start: midnight(monday)?,
            end: midnight(monday + Duration::days(7))?,
        })
    }

    /// Parses an ISO week such as `2026-W47`.
    pub fn parse_week(&self, s: &str) -> Result<Week, String> {
        let bad = || format!("'{s}' is not an ISO week such as 2026-W47");
        let (y, w) = s.trim().split_once("-W").ok_or_else(bad)?;
        let (y, w): (i32, u32) = (y.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
        if !(crate::timeparse::FIRST_YEAR..=crate::timeparse::LAST_YEAR).contains(&y) {
            return Err(format!("'{s}': the year must be from 1 to 9999"));
        }
        self.week(y, w).ok_or_else(bad)
    }

    /// The week before `w`.
    pub fn previous_week(&self, w: &Week) -> Week {
        self.week_of(w.start - 1)
    }

    /// The ISO weeks that overlap `[from, to)`, oldest first.
    pub fn weeks_between(&self, from: Micros, to: Micros) -> Vec<Week> {
        let mut out = Vec::new();
        let mut w = self.week_of(from);
        while w.start < to {
            let next = self.week_of(w.end);
            out.push(w);
            w = next;
        }
        out
    }
}

/// One ISO week in the desk's time zone: `[start, end)` in UTC microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    /// `2026-W47`, as the `iso_week` SQL function writes it.
    pub label: String,
    pub start: Micros,
    pub end: Micros,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeparse::TimeParser;

    fn t(s: &str) -> Micros {
        TimeParser::default().parse(s).unwrap()
    }

    #[test]
    fn many_pairs_at_once_count_as_each_pair_alone() {
        // A DST zone and a holiday: each date's window is worked out once for the whole batch.
        let c = Calendar {
            tz: chrono_tz::Europe::Berlin,
            holidays: vec![NaiveDate::from_ymd_opt(2026, 3, 30).unwrap()],
            ..Calendar::default()
        };
        let base = t("2026-03-20T06:00:00Z");
        let pairs: Vec<Option<(Micros, Micros)>> = (0..300i64)
            .map(|i| {
                let start = base + i * 7_777_000_000;
                (i % 17 != 0).then_some((start, start + (i % 23) * 3_600_000_000 * 7 - 1))
            })
            .collect();
        let want: Vec<Option<f64>> = pairs
            .iter()
            .map(|p| p.map(|(s, e)| c.business_seconds(s, e)))
            .collect();
        assert_eq!(c.business_seconds_of(pairs.into_iter()), want);
    }

    #[test]
    fn counts_only_working_hours() {
        let c = Calendar::default();
        // Monday 2026-11-16 08:00 to 10:00: one business hour.
        assert_eq!(
            c.business_seconds(t("2026-11-16T08:00:00Z"), t("2026-11-16T10:00:00Z")),
            3600.0
        );
        // Friday 16:00 to Monday 10:00: 1 h + 1 h.
        assert_eq!(
            c.business_seconds(t("2026-11-20T16:00:00Z"), t("2026-11-23T10:00:00Z")),
            7200.0
        );
        // A weekend only.
        assert_eq!(
            c.business_seconds(t("2026-11-21T09:00:00Z"), t("2026-11-22T17:00:00Z")),
            0.0
        );
        assert_eq!(
            c.business_seconds(t("2026-11-16T10:00:00Z"), t("2026-11-16T09:00:00Z")),
            0.0
        );
        // Three whole weeks plus: 15 days × 8 h, then Monday 09–10.
        assert_eq!(
            c.business_seconds(t("2026-11-02T00:00:00Z"), t("2026-11-23T10:00:00Z")),
            (15 * 8 + 1) as f64 * 3600.0
        );
    }

    #[test]
    fn iso_weeks_in_the_desk_zone() {
        let c = Calendar {
            tz: "Europe/Berlin".parse().unwrap(),
            ..Default::default()
        };
        let w = c.parse_week("2026-W47").unwrap();
        assert_eq!(w.start, t("2026-11-15T23:00:00Z"));
        assert_eq!(w.end, t("2026-11-22T23:00:00Z"));
        assert_eq!(c.week_of(t("2026-11-22T22:59:59Z")), w);
        assert_eq!(c.week_of(t("2026-11-22T23:00:00Z")).label, "2026-W48");
        // The week of the autumn DST change is 169 hours long; its neighbours line up.
        let dst = c.parse_week("2026-W43").unwrap();
        assert_eq!(dst.end - dst.start, 169 * 3_600_000_000);
        assert_eq!(c.previous_week(&c.parse_week("2026-W44").unwrap()), dst);
        assert_eq!(c.parse_week("2027-W01").unwrap().label, "2027-W01");
        assert_eq!(
            c.previous_week(&c.parse_week("2027-W01").unwrap()).label,
            "2026-W53"
        );
        let span = c.weeks_between(w.start - 1, w.end + 1);
        let labels: Vec<_> = span.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(labels, ["2026-W46", "2026-W47", "2026-W48"]);
        for bad in ["2026-47", "2026-W54", "x-W01", "2025-W53"] {
            assert!(c.parse_week(bad).is_err(), "{bad}");
        }
        // Years a four-digit label can name (a report folder), and nothing past them.
        for bad in ["262143-W01", "0000-W01", "10000-W01", "-1-W01"] {
            let e = c.parse_week(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(c.parse_week("0001-W02").unwrap().label, "0001-W02");
        assert_eq!(c.parse_week("9999-W52").unwrap().label, "9999-W52");
    }

    #[test]
    fn holidays_zones_and_dst() {
        let mut c = Calendar {
            tz: "Europe/Berlin".parse().unwrap(),
            holidays: vec![NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
            ..Default::default()
        };
        // 09:00–17:00 Berlin is 08:00–16:00 UTC in winter.
        assert_eq!(
            c.business_seconds(t("2026-12-01T07:00:00Z"), t("2026-12-01T09:00:00Z")),
            3600.0
        );
        // Christmas Day is a holiday.
        assert_eq!(
            c.business_seconds(t("2026-12-25T00:00:00Z"), t("2026-12-26T00:00:00Z")),
            0.0
        );
        // Over two weeks with a holiday: the slow path agrees with a day-by-day count.
        let (a, b) = (t("2026-12-14T12:00:00Z"), t("2027-01-06T12:00:00Z"));
        let slow: f64 = {
            let mut s = 0.0;
            let mut x = a;
            while x < b {
                let y = (x + 3_600_000_000).min(b);
                s += c.business_seconds(x, y);
                x = y;
            }
            s
        };
        assert_eq!(c.business_seconds(a, b), slow);
        c.holidays.clear();
        // Summer: 09:00 Berlin is 07:00 UTC.
        assert_eq!(
            c.business_seconds(t("2026-07-01T06:00:00Z"), t("2026-07-01T08:00:00Z")),
            3600.0
        );
    }
}
