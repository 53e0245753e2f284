//! FAT directory-entry dates and times (fatgen103 section 6.3): 2-second time, 10 ms creation
//! refinement, dates from 1980. FAT stores no time zone; reprodisk writes UTC.

use serde::Serialize;
use std::fmt;

/// A FAT date, a time and the 10 ms count (`DIR_CrtTimeTenth`, 0..=199); missing parts are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FatTime {
    pub date: u16,
    pub time: u16,
    pub tenth: u8,
}

impl FatTime {
    pub fn new(date: u16, time: u16, tenth: u8) -> Self {
        FatTime { date, time, tenth }
    }
    pub fn year(self) -> u32 {
        1980 + u32::from(self.date >> 9)
    }
    pub fn month(self) -> u32 {
        u32::from((self.date >> 5) & 0x0F)
    }
    pub fn day(self) -> u32 {
        u32::from(self.date & 0x1F)
    }
    pub fn hour(self) -> u32 {
        u32::from(self.time >> 11)
    }
    pub fn minute(self) -> u32 {
        u32::from((self.time >> 5) & 0x3F)
    }
    /// Seconds including the whole seconds of the 10 ms count.
    pub fn second(self) -> u32 {
        u32::from(self.time & 0x1F) * 2 + u32::from(self.tenth) / 100
    }
    /// Hundredths of a second left after [`second`](Self::second).
    pub fn centis(self) -> u32 {
        u32::from(self.tenth) % 100
    }

    /// Why this value is not a valid FAT date and time, or `None` when it is. A zero date
    /// means "not set", which the spec allows for the optional creation and access dates.
    pub fn invalid(self) -> Option<String> {
        let (m, d) = (self.month(), self.day());
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(self.year(), m) {
            return Some(format!("date {:#06x} is not a valid day (month {m}, day {d})", self.date));
        }
        if self.hour() > 23 || self.minute() > 59 || (self.time & 0x1F) > 29 {
            return Some(format!("time {:#06x} is not a valid time of day", self.time));
        }
        if self.tenth > 199 {
            return Some(format!("10 ms count {} is above 199", self.tenth));
        }
        None
    }

    /// Seconds since 1970-01-01 UTC, reading the fields as UTC; `None` for invalid values.
    pub fn unix(self) -> Option<i64> {
        if self.invalid().is_some() {
            return None;
        }
        let days = days_from_civil(self.year() as i64, self.month(), self.day());
        Some(days * 86400 + i64::from(self.hour() * 3600 + self.minute() * 60 + self.second()))
    }
}

impl fmt::Display for FatTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year(),
            self.month(),
            self.day(),
            self.hour(),
            self.minute(),
            self.second()
        )?;
        if self.centis() != 0 {
            write!(f, ".{:02}", self.centis())?;
        }
        Ok(())
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fat_epoch_is_315532800() {
        // 1980-01-01 00:00:00: date = day 1, month 1, year 0.
        assert_eq!(FatTime::new((1 << 5) | 1, 0, 0).unix(), Some(315_532_800));
    }

    #[test]
    fn fields_decode_and_ten_ms_units_carry_into_seconds() {
        // 2024-02-29 23:59:58 + 1.5 s.
        let t = FatTime::new(((2024 - 1980) << 9) | (2 << 5) | 29, (23 << 11) | (59 << 5) | 29, 150);
        assert_eq!(t.to_string(), "2024-02-29T23:59:59.50");
        assert_eq!(t.unix(), Some(1_709_251_199));
        assert!(FatTime::new(0, 0, 0).invalid().is_some());
    }
}
