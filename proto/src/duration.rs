//! Durations as people write them on the command line and in config:
//! `90s`, `30m`, `8h`, `30d`, `1h30m`.

use std::time::Duration;

/// A duration that could not be parsed; says what is accepted.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration '{input}': use a number with a unit, like 30s, 15m, 8h or 30d")]
pub struct DurationError {
    input: String,
}

/// Parses `30s`, `15m`, `8h`, `30d`, `2w` and combinations (`1h30m`).
/// A bare number is refused: the unit is never guessed.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: input.to_string(),
    };
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    humantime::parse_duration(trimmed).map_err(|_| err())
}

/// Formats a duration the way people write one (`40d`, `8h`, `1h30m`,
/// `90s`): days, hours, minutes and seconds, no months or years, so what
/// is printed parses back to the same value. Sub-seconds are dropped.
pub fn format(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}

/// Parses a timeout: like [`parse`], but zero (or less than a second) is
/// refused rather than read as "none".
pub fn parse_timeout(input: &str) -> Result<Duration, String> {
    let d = parse(input).map_err(|e| e.to_string())?;
    if d.as_secs() == 0 {
        return Err(format!("timeout '{input}' is not at least 1s"));
    }
    Ok(d)
}

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z.
pub const MAX_RFC3339_SECS: i64 = 253_402_300_799;

/// Formats unix seconds as RFC 3339 UTC (`2026-11-28T19:00:00Z`), clamped
/// to 1970..=9999 (past the year 9999 the formatter fails, and `to_string`
/// would panic).
pub fn rfc3339(unix_secs: i64) -> String {
    let secs = unix_secs.clamp(0, MAX_RFC3339_SECS) as u64;
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_units() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn formats_as_written_and_round_trips() {
        for (secs, text) in [
            (40 * 86400, "40d"),
            (30 * 86400, "30d"),
            (5400, "1h30m"),
            (90, "1m30s"),
            (3600, "1h"),
            (86400 + 1, "1d1s"),
            (0, "0s"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(format(d), text);
            if secs > 0 {
                assert_eq!(parse(text).unwrap(), d, "{text}");
            }
        }
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("500ms").is_err());
        assert_eq!(parse_timeout("2s").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn refuses_bare_numbers_and_garbage() {
        for bad in ["", "10", "abc", "5 parsecs", "-1h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn formats_any_time_without_panicking() {
        // Found by fuzzing (fuzz/vault_record): an expiry after the year
        // 9999 (`set --expires 10000y`) made list, get --show-metadata and
        // the MCP shim's secret_list panic.
        assert_eq!(rfc3339(MAX_RFC3339_SECS), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(MAX_RFC3339_SECS + 1), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
    }
}
