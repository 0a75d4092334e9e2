//! RFC 3339 instants as SS 12000 uses them (`meta.created`, `meta.modified`, filters).

/// An instant with microsecond precision, in UTC. Parsed from RFC 3339 with any offset;
/// displayed as RFC 3339 in UTC (`2026-11-21T10:00:00.123456Z`, fraction only when non-zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch (what the stores keep, so comparisons are exact).
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(time::OffsetDateTime::now_utc())
    }

    /// Parses RFC 3339 (`2026-11-21T10:00:00Z`, `2026-11-21T11:00:00+01:00`, fractions).
    pub fn parse(text: &str) -> Result<Timestamp, InvalidTimestamp> {
        let parsed =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| InvalidTimestamp(text.to_owned()))?;
        Ok(Timestamp::from_datetime(parsed))
    }

    fn from_datetime(at: time::OffsetDateTime) -> Timestamp {
        let micros = at.unix_timestamp_nanos().div_euclid(1_000);
        Timestamp(i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX }))
    }

    fn to_datetime(self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()
    }

    /// This instant moved by a number of seconds (negative: earlier); saturates.
    pub fn add_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(at) = self.to_datetime() else {
            return write!(f, "@{}us", self.0);
        };
        let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
        let (hour, minute, second, micro) = at.to_offset(time::UtcOffset::UTC).to_hms_micro();
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )?;
        if micro != 0 {
            let fraction = format!("{micro:06}");
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = InvalidTimestamp;
    fn from_str(s: &str) -> Result<Timestamp, InvalidTimestamp> {
        Timestamp::parse(s)
    }
}

/// Text that is not an RFC 3339 date-time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 date-time (example: 2026-11-21T10:00:00Z)")]
pub struct InvalidTimestamp(pub String);

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn parses_offsets_and_prints_utc() {
        let t = Timestamp::parse("2026-11-21T11:00:00.250+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-21T10:00:00.25Z");
        assert_eq!(
            Timestamp::parse("2026-11-21T10:00:00Z")
                .unwrap()
                .to_string(),
            "2026-11-21T10:00:00Z"
        );
        assert_eq!(t.add_seconds(-300).to_string(), "2026-11-21T09:55:00.25Z");
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21 10:00:00",
            "yesterday",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
