//! Times for people and logs: `2024-05-01 12:34:56 UTC (3 hours ago)`. UTC,
//! the one zone that needs no time zone files (which a PAM module should not
//! read), and the relative part is what people read first.

/// `YYYY-MM-DD HH:MM:SS UTC` for a unix time.
pub fn utc(unix: u64) -> String {
    let (date, time) = split(unix);
    format!("{date} {time} UTC")
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`) for JSON.
pub fn rfc3339(unix: u64) -> String {
    let (date, time) = split(unix);
    format!("{date}T{time}Z")
}

/// A unix time as a civil UTC date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: u64,
    /// Month, 1 to 12.
    pub month: u64,
    /// Day of the month, 1 to 31.
    pub day: u64,
    /// Seconds since midnight.
    pub seconds: u64,
}

/// The civil UTC date and time of a unix time.
pub fn civil(unix: u64) -> Civil {
    let (year, month, day) = civil_from_days(unix / 86_400);
    Civil {
        year,
        month,
        day,
        seconds: unix % 86_400,
    }
}

fn split(unix: u64) -> (String, String) {
    let Civil {
        year,
        month,
        day,
        seconds,
    } = civil(unix);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        ),
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `3 hours ago`, `in 12 minutes`, `just now`.
pub fn relative(then: u64, now: u64) -> String {
    let (distance, future) = if then > now {
        (then - now, true)
    } else {
        (now - then, false)
    };
    let amount = if distance < 60 {
        if future {
            format!("{distance} second{}", plural(distance))
        } else {
            return "just now".into();
        }
    } else if distance < 3600 {
        // A lock that ends in 30 s is "in 1 minute", one that began 90 s ago
        // "1 minute ago": round towards the safe side for each.
        let minutes = if future {
            distance.div_ceil(60).clamp(1, 59)
        } else {
            distance / 60
        };
        format!("{minutes} minute{}", plural(minutes))
    } else if distance < 2 * 86_400 {
        let hours = distance / 3600;
        format!("{hours} hour{}", plural(hours))
    } else {
        let days = distance / 86_400;
        format!("{days} day{}", plural(days))
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// `40 seconds`, `12 minutes`, `3 hours`, `30 days` (rounded as
/// [`relative`] rounds a time to come).
pub fn duration(seconds: u64) -> String {
    let text = relative(seconds, 0);
    text.strip_prefix("in ").unwrap_or(&text).to_string()
}

/// `2024-05-01 12:34:56 UTC (3 hours ago)`.
pub fn utc_and_relative(then: u64, now: u64) -> String {
    format!("{} ({})", utc(then), relative(then, now))
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(100, 130), "just now");
        assert_eq!(relative(100, 220), "2 minutes ago");
        assert_eq!(relative(0, 7200), "2 hours ago");
        assert_eq!(relative(0, 3 * 86_400), "3 days ago");
        assert_eq!(relative(130, 100), "in 30 seconds");
        assert_eq!(relative(100 + 61, 100), "in 2 minutes");
        assert_eq!(relative(100 + 900, 100), "in 15 minutes");
        assert_eq!(relative(3600 + 100, 100), "in 1 hour");
    }
}
