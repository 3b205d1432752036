//! The one clock of the crate: epoch milliseconds, the UTC run id, and the calendar arithmetic
//! behind both (and behind HTTP dates), so no module keeps its own copy.

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `YYYYMMDDTHHMMSSZ` of an epoch second (UTC).
#[must_use]
pub fn utc_stamp(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `YYYYMMDDTHHMMSSZ` of now (UTC), used as the run id; `NACOS_DRIFT_RUN_ID` pins it.
#[must_use]
pub fn run_id() -> String {
    if let Ok(fixed) = std::env::var("NACOS_DRIFT_RUN_ID") {
        // Lets golden tests and CI pin the folder name.
        return fixed;
    }
    utc_stamp(u64::try_from(now_ms() / 1000).unwrap_or(0))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
#[must_use]
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
#[must_use]
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse an RFC 7231 HTTP date (`Fri, 27 Nov 2026 02:22:08 GMT`, the `Last-Modified` header
/// Nacos's `ConfigServletInner` sets) to epoch ms.
#[must_use]
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_both_ways() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (20_784, (2026, 11, 27)),
            (-1, (1969, 12, 31)),
            (11_016, (2000, 2, 29)),
        ] {
            assert_eq!(civil_from_days(days), date, "{days}");
            let (y, m, d) = date;
            assert_eq!(days_from_civil(y, m.into(), d.into()), days, "{date:?}");
        }
        assert_eq!(utc_stamp(1_795_746_128), "20261127T022208Z");
    }

    #[test]
    fn http_dates() {
        for (text, ms) in [
            ("Thu, 01 Jan 1970 00:00:01 GMT", Some(1000)),
            ("Fri, 27 Nov 2026 02:22:08 GMT", Some(1_795_746_128_000)),
            ("garbage", None),
            ("Fri, 27 Nov 2026 02:22:08 CET", None),
            ("Fri, 27 Foo 2026 02:22:08 GMT", None),
        ] {
            assert_eq!(parse_http_date(text), ms, "{text}");
        }
    }
}
