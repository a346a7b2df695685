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
                    .filter_map(|k| self.day_window(d + Duration::days(k)))
                    .map(|(a, b)| b - a)
                    .sum();
                // Only safe when no window is clipped: the week lies strictly inside (first, last).
                if d > first {
                    total += week;
                    d += Duration::days(7);
                    continue;
                }
            }
            if let Some((open, close)) = self.day_window(d) {
                let (a, b) = (open.max(start), close.min(end));
                if b > a {
                    total += b - a;
                }
            }
            d += Duration::days(1);
        }
        total as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeparse::TimeParser;

    fn t(s: &str) -> Micros {
        TimeParser::default().parse(s).unwrap()
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
