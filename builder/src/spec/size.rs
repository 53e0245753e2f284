//! The seed's size strings: `numfmt --from=iec` forms such as `"512M"` and `"1.5G"`.
//!
//! The seed passes `bootSize` and `additionalSpace` through `numfmt --from=iec`, which reads a
//! decimal number with an optional single upper-case suffix `K`, `M`, `G`, `T`, `P` or `E`
//! (powers of 1024) and rounds fractions up. `"256MiB"`, `"5m"` and negative numbers are
//! rejected by numfmt and so here. `diskSize` is different: an integer counts MiB.

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error(
        "`{0}` is empty: write a number of bytes with an optional K, M, G, T, P or E suffix, e.g. \"512M\""
    )]
    Empty(String),
    #[error("`{0}` is not a number: write digits with an optional K, M, G, T, P or E suffix, e.g. \"512M\"")]
    NotANumber(String),
    #[error(
        "`{input}` has the suffix `{suffix}`, which numfmt --from=iec rejects: use one upper-case letter of K, M, G, T, P, E (powers of 1024), e.g. \"256M\""
    )]
    BadSuffix { input: String, suffix: String },
    #[error("`{0}` does not fit in 64 bits")]
    TooLarge(String),
}

/// Parses a size as `numfmt --from=iec` does and returns bytes.
pub fn parse_iec(input: &str) -> Result<u64, SizeError> {
    let s = input.trim_start();
    if s.is_empty() {
        return Err(SizeError::Empty(input.to_string()));
    }
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    if number.is_empty() {
        return Err(SizeError::NotANumber(input.to_string()));
    }
    let shift = match suffix {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return Err(SizeError::BadSuffix { input: input.to_string(), suffix: suffix.to_string() }),
    };
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(SizeError::NotANumber(input.to_string()));
    }
    let too_large = || SizeError::TooLarge(input.to_string());
    let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| too_large())? };
    let mut bytes = int.checked_mul(1u128 << shift).ok_or_else(too_large)?;
    if !frac_part.is_empty() {
        // Exact rational arithmetic: fraction * 2^shift / 10^digits, rounded up like numfmt.
        let digits = frac_part.len().min(30) as u32;
        let frac: u128 =
            frac_part[..digits as usize].parse().map_err(|_| SizeError::NotANumber(input.to_string()))?;
        let denom = 10u128.pow(digits);
        let scaled = frac.checked_mul(1u128 << shift).ok_or_else(too_large)?;
        bytes = bytes.checked_add(scaled.div_ceil(denom)).ok_or_else(too_large)?;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_numfmt_accepts() {
        // Values measured with `numfmt --from=iec` (GNU coreutils 9.1).
        for (s, v) in [
            ("512M", 536870912),
            ("1G", 1073741824),
            ("1.5G", 1610612736),
            ("100", 100),
            ("1K", 1024),
            ("2T", 2199023255552),
            ("0", 0),
            ("1P", 1125899906842624),
            ("1E", 1152921504606846976),
            (" 5M", 5242880),
            ("1.1K", 1127),
        ] {
            assert_eq!(parse_iec(s), Ok(v), "{s}");
        }
    }

    #[test]
    fn rejects_what_numfmt_rejects() {
        for s in ["256MiB", "1k", "5m", "5Mi", "", "-1M", "M", "1.2.3K", "abc", "16E"] {
            assert!(parse_iec(s).is_err(), "{s}");
        }
        assert!(matches!(parse_iec("256MiB"), Err(SizeError::BadSuffix { .. })));
    }
}
