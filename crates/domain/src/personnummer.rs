//! Detection of Swedish personal identity numbers (personnummer) and coordination numbers
//! (samordningsnummer, day + 60) in free text. Events must never carry one: victims, suspects
//! and clients are known by pseudonymous UUIDs only.
//!
//! A match is a run of 10 or 12 digits, optionally with `-` or `+` before the last four, that
//! is not part of a longer digit run, whose date part is a real month and day (or day + 60),
//! and whose last digit is the Luhn check over `YYMMDDNNN`.

/// The first personal identity or coordination number found in `text`, as written there.
pub fn find(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        for len in [12usize, 10] {
            if let Some(end) = candidate_end(b, i, len) {
                if is_valid(&b[i..end]) {
                    return Some(&text[i..end]);
                }
            }
        }
        i += 1;
    }
    None
}

/// End of a candidate of `len` digits starting at `start`, with an optional separator before the
/// last four digits, not followed by a further digit.
fn candidate_end(b: &[u8], start: usize, len: usize) -> Option<usize> {
    let head = len - 4;
    let digits = |from: usize, n: usize| {
        b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
    };
    if !digits(start, head) {
        return None;
    }
    let mut pos = start + head;
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    if !digits(pos, 4) {
        return None;
    }
    let end = pos + 4;
    if end < b.len() && b[end].is_ascii_digit() {
        return None;
    }
    Some(end)
}

fn is_valid(candidate: &[u8]) -> bool {
    let digits: Vec<u8> = candidate
        .iter()
        .filter(|c| c.is_ascii_digit())
        .map(|c| c - b'0')
        .collect();
    let ten = &digits[digits.len() - 10..];
    let month = ten[2] * 10 + ten[3];
    let mut day = ten[4] * 10 + ten[5];
    if day > 60 {
        day -= 60;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if digits.len() == 12 {
        let century = u32::from(digits[0]) * 10 + u32::from(digits[1]);
        if !(18..=20).contains(&century) {
            return false;
        }
        let year = century as i32 * 100 + i32::from(ten[0] * 10 + ten[1]);
        if crate::Date::from_ymd(year, u32::from(month), u32::from(day)).is_none() {
            return false;
        }
    }
    luhn_ok(ten)
}

fn luhn_ok(ten: &[u8]) -> bool {
    let sum: u32 = ten[..9]
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(ten[9])
}

#[cfg(test)]
mod tests {
    use super::find;

    // Test numbers built for these tests: valid dates with a correct Luhn digit, none belonging to
    // anyone on purpose. 811218-9876 is the Swedish Tax Agency's documented example format.
    #[test]
    fn finds_numbers_in_every_written_form() {
        for (text, hit) in [
            ("811218-9876", "811218-9876"),
            ("8112189876", "8112189876"),
            ("19811218-9876", "19811218-9876"),
            ("198112189876", "198112189876"),
            ("born 811218+9876 in Farsta", "811218+9876"),
            ("samordningsnummer 811278-9873", "811278-9873"),
        ] {
            assert_eq!(find(text), Some(hit), "{text}");
        }
    }

    #[test]
    fn ignores_numbers_that_are_not_identity_numbers() {
        for text in [
            "811218-9875",   // wrong check digit
            "811318-9876",   // month 13
            "8112189876123", // part of a longer digit run
            "Polisregion Stockholm",
            "Lokalpolisområde Södermalm 2020",
            "0418",
            "ärende 2020-03-02",
        ] {
            assert_eq!(find(text), None, "{text}");
        }
    }
}
