//! Detection of Swedish personal identity numbers (personnummer) and coordination numbers
//! (samordningsnummer, day + 60) in free text. Events must never carry one: victims, suspects
//! and clients are known by pseudonymous UUIDs only.
//!
//! A match is a run of 10 or 12 digits that is not part of a longer digit run, whose date part is
//! a real month and day (or day + 60), and whose last digit is the Luhn check over `YYMMDDNNN`.
//! People write these numbers in many ways, so the run may hold up to three separator characters
//! between any two digits — a hyphen or any other dash (en dash, minus sign, …), `+`, a space of any width, `.`
//! or `/` — and its digits may be written in any decimal script that text input produces (ASCII,
//! full-width, Arabic-Indic).

/// The first personal identity or coordination number found in `text`, as written there.
pub fn find(text: &str) -> Option<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i].1).is_none() {
            i += 1;
            continue;
        }
        let groups = groups_from(&chars, i);
        // Candidates start and end at group boundaries: a number glued to further digits is
        // part of something longer, but one followed by a separator and more digits is not.
        for first in 0..groups.len() {
            let mut digits: Vec<u8> = Vec::with_capacity(12);
            for group in &groups[first..] {
                digits.extend(group.digits.iter().copied());
                if digits.len() > 12 {
                    break;
                }
                if (digits.len() == 10 || digits.len() == 12) && is_valid(&digits) {
                    let start = chars[groups[first].start].0;
                    let end = chars.get(group.end).map_or(text.len(), |&(at, _)| at);
                    return Some(&text[start..end]);
                }
            }
        }
        i = groups.last().map_or(i + 1, |g| g.end);
    }
    None
}

/// Digits written together, without a separator between them.
struct Group {
    digits: Vec<u8>,
    /// Index (in the char list) of the first digit and just past the last.
    start: usize,
    end: usize,
}

/// The most separator characters between two groups of one number (as in `1981 12 18 - 9876`).
const MAX_GAP: usize = 3;

/// The groups of the digit run that starts at `start`: groups joined by up to [`MAX_GAP`]
/// separator characters.
fn groups_from(chars: &[(usize, char)], start: usize) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut i = start;
    loop {
        let group_start = i;
        let mut digits = Vec::new();
        while let Some(d) = chars.get(i).and_then(|&(_, c)| digit(c)) {
            digits.push(d);
            i += 1;
        }
        groups.push(Group {
            digits,
            start: group_start,
            end: i,
        });
        let gap = chars[i..]
            .iter()
            .take(MAX_GAP + 1)
            .take_while(|&&(_, c)| is_separator(c))
            .count();
        let joined = (1..=MAX_GAP).contains(&gap)
            && chars.get(i + gap).is_some_and(|&(_, c)| digit(c).is_some());
        if !joined {
            return groups;
        }
        i += gap;
    }
}

/// The value of a decimal digit in the scripts that input methods commonly produce.
fn digit(c: char) -> Option<u8> {
    let zero = match c {
        '0'..='9' => '0',
        '\u{FF10}'..='\u{FF19}' => '\u{FF10}', // full-width
        '\u{0660}'..='\u{0669}' => '\u{0660}', // Arabic-Indic
        '\u{06F0}'..='\u{06F9}' => '\u{06F0}', // extended Arabic-Indic
        '\u{1D7CE}'..='\u{1D7FF}' => return Some(((c as u32 - 0x1D7CE) % 10) as u8), // mathematical
        _ => return None,
    };
    Some((c as u32 - zero as u32) as u8)
}

/// A character people put between the groups of an identity number.
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '+' | '.' | '/' | '\u{FF0D}' | '\u{FE63}' | '\u{FF0B}')
        || c.is_whitespace()
        // Every dash: hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar,
        // minus sign.
        || matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}')
}

fn is_valid(digits: &[u8]) -> bool {
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
            ("811218\u{2013}9876", "811218\u{2013}9876"), // en dash
            ("811218\u{2014}9876", "811218\u{2014}9876"), // em dash
            ("811218\u{2212}9876", "811218\u{2212}9876"), // minus sign
            ("811218\u{2011}9876", "811218\u{2011}9876"), // non-breaking hyphen
            ("811218 9876", "811218 9876"),
            ("811218\u{00A0}9876", "811218\u{00A0}9876"),
            ("81 12 18-98 76", "81 12 18-98 76"),
            ("1981-12-18-9876", "1981-12-18-9876"),
            ("811218.9876", "811218.9876"),
            ("811218/9876", "811218/9876"),
            ("811218-9876 12", "811218-9876"),
            ("1981 12 18 - 9876", "1981 12 18 - 9876"),
            ("2020 811218-9876", "811218-9876"),
            ("x\u{FF18}\u{FF11}\u{FF11}\u{FF12}\u{FF11}\u{FF18}-\u{FF19}\u{FF18}\u{FF17}\u{FF16}", "\u{FF18}\u{FF11}\u{FF11}\u{FF12}\u{FF11}\u{FF18}-\u{FF19}\u{FF18}\u{FF17}\u{FF16}"),
        ] {
            assert_eq!(find(text), Some(hit), "{text:?}");
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
            "2020-03-02 ---- 2020-03-04",
        ] {
            assert_eq!(find(text), None, "{text:?}");
        }
    }
}
