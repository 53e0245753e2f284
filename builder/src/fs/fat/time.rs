//! FAT dates and times from SOURCE_DATE_EPOCH (UTC; FAT has no time zone).
//!
//! FAT stores local dates from 1980-01-01 to 2107-12-31 and times in 2-second steps
//! (creation times add tenths of a second, 0..=199). Times outside that range are clamped to
//! its ends, so any SOURCE_DATE_EPOCH gives a valid, fixed stamp.

/// One instant as FAT stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatTime {
    pub date: u16,
    pub time: u16,
    /// Creation time's tenths of a second: 100 for an odd second.
    pub tenths: u8,
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// 1980-01-01T00:00:00Z and 2107-12-31T23:59:59Z.
const MIN: i64 = 315_532_800;
const MAX: i64 = 4_354_819_199;

impl FatTime {
    pub fn from_unix(secs: i64) -> FatTime {
        let t = secs.clamp(MIN, MAX);
        let (y, m, d) = civil(t.div_euclid(86_400));
        let s = t.rem_euclid(86_400) as u32;
        let (hh, mm, ss) = (s / 3600, s / 60 % 60, s % 60);
        FatTime {
            date: (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16,
            time: ((hh as u16) << 11) | ((mm as u16) << 5) | (ss / 2) as u16,
            tenths: if ss % 2 == 1 { 100 } else { 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 1980-01-01 00:00:00: date 0x0021 (day 1, month 1), time 0.
        assert_eq!(FatTime::from_unix(315_532_800), FatTime { date: 0x21, time: 0, tenths: 0 });
        // 2023-11-14T22:13:21Z (`date -u -d @1700000001`).
        let t = FatTime::from_unix(1_700_000_001);
        assert_eq!(t.date, (43 << 9) | (11 << 5) | 14);
        assert_eq!(t.time, (22 << 11) | (13 << 5) | 10);
        assert_eq!(t.tenths, 100);
        assert_eq!(FatTime::from_unix(0), FatTime::from_unix(MIN));
        assert_eq!(FatTime::from_unix(i64::MAX).date, (127 << 9) | (12 << 5) | 31);
    }
}
