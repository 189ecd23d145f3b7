//! Identifier normalisation: phone numbers to E.164, e-mail case folding, names folded for
//! matching. Pure functions; each returns `None` for input that is not such an identifier.

use unicode_normalization::UnicodeNormalization;

/// French overseas departments dial with their own country code: `0262 …` is `+262 262 …`.
const OVERSEAS: &[(&str, &str)] = &[
    ("0262", "262"),
    ("0263", "262"),
    ("0692", "262"),
    ("0693", "262"),
    ("0269", "262"),
    ("0639", "262"),
    ("0590", "590"),
    ("0690", "590"),
    ("0691", "590"),
    ("0594", "594"),
    ("0694", "594"),
    ("0596", "596"),
    ("0696", "596"),
    ("0697", "596"),
    ("0508", "508"),
];

/// Normalises a phone number written in any usual French way to E.164 (`+33612345678`).
///
/// Accepts spaces, dots, dashes, slashes, `+33 (0)6…`, `0033…`, `33…` and a lost leading zero
/// (`612345678`, as spreadsheets write it). Numbers of other countries must carry `+` or `00`.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let s = raw.trim().replace("(0)", "");
    let mut digits = String::with_capacity(s.len());
    let mut plus = false;
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 || s[..i].trim().is_empty() => plus = true,
            ' ' | '.' | '-' | '/' | '(' | ')' | '\u{a0}' | '\u{202f}' => {}
            _ => return None,
        }
    }
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    if let Some(intl) = international {
        if let Some(national) = intl.strip_prefix("33") {
            return french_national(national);
        }
        let plausible = (8..=15).contains(&intl.len()) && !intl.starts_with('0');
        return plausible.then(|| format!("+{intl}"));
    }
    match digits.len() {
        10 if digits.starts_with('0') => {
            for (prefix, cc) in OVERSEAS {
                if digits.starts_with(prefix) {
                    return Some(format!("+{cc}{}", &digits[1..]));
                }
            }
            french_national(&digits[1..])
        }
        9 => french_national(&digits),
        11 if digits.starts_with("33") => french_national(&digits[2..]),
        _ => None,
    }
}

/// The E.164 start of a French number's beginning written nationally (`04 72 49 1` →
/// `+3347249 1`…, `0262 12` → `+26226212`): for number ranges (direct lines).
pub fn national_prefix_to_e164(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    if raw.trim().starts_with('+') {
        return (!digits.is_empty()).then(|| format!("+{digits}"));
    }
    let national = digits.strip_prefix('0').filter(|n| !n.is_empty())?;
    for (prefix, cc) in OVERSEAS {
        if digits.starts_with(prefix) {
            return Some(format!("+{cc}{national}"));
        }
    }
    Some(format!("+33{national}"))
}

/// The 9 digits after +33 (a wrongly kept leading 0 is dropped).
fn french_national(n: &str) -> Option<String> {
    let n = if n.len() == 10 {
        n.strip_prefix('0')?
    } else {
        n
    };
    (n.len() == 9 && !n.starts_with('0')).then(|| format!("+33{n}"))
}

/// Folds an e-mail address for matching: trimmed, `mailto:` and angle brackets removed,
/// lower case. Returns `None` when it is not an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    s = s.strip_prefix("mailto:").unwrap_or(s);
    s = s
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s);
    let s = s.trim().to_lowercase();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(s)
}

/// Folds a person's name for matching: accents and case removed, hyphens and apostrophes
/// become spaces, ligatures spelled out, white space collapsed. `"Jean-Élie  D'Aré"` folds to
/// `"jean elie d are"`.
pub fn fold_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.to_lowercase().nfd() {
        if ('\u{300}'..='\u{36f}').contains(&c) {
            continue;
        }
        match c {
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            'ß' => out.push_str("ss"),
            '-' | '\'' | '’' | '.' | ',' | '_' => out.push(' '),
            c if c.is_whitespace() => out.push(' '),
            c => out.extend(c.to_lowercase()),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A phone number as people write it: French numbers (metropolitan and overseas) in the
/// national format (« 06 12 34 56 78 », « 0692 12 34 56 »), others in the international
/// format (« +44 20 7946 0958 »), from libphonenumber's metadata. What is no phone number is
/// shown as given.
pub fn display_phone(raw: &str) -> String {
    let Some(e164) = normalize_phone(raw) else {
        return raw.to_string();
    };
    match phonenumber::parse(None, &e164) {
        Ok(n) => {
            let french = matches!(n.code().value(), 33 | 262 | 508 | 590 | 594 | 596);
            let mode = if french {
                phonenumber::Mode::National
            } else {
                phonenumber::Mode::International
            };
            n.format().mode(mode).to_string()
        }
        Err(_) => e164,
    }
}

/// A citizen id is 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_are_shown_as_people_write_them() {
        assert_eq!(super::display_phone("+33612345678"), "06 12 34 56 78");
        assert_eq!(super::display_phone("0472491818"), "04 72 49 18 18");
        assert_eq!(super::display_phone("+262692123456"), "0692 12 34 56");
        assert_eq!(super::display_phone("+442079460958"), "+44 20 7946 0958");
        assert_eq!(super::display_phone("Marie"), "Marie");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn french_writings_of_one_number_agree() {
        for w in [
            "06 12 34 56 78",
            "06.12.34.56.78",
            "06-12-34-56-78",
            "0612345678",
            "+33 6 12 34 56 78",
            "+33 (0)6 12 34 56 78",
            "+33612345678",
            "0033 6 12 34 56 78",
            "33612345678",
            "612345678",
            " +33 06 12 34 56 78 ",
            "\u{a0}+33 6 12 34 56 78",
            "06\u{a0}12\u{a0}34\u{a0}56\u{a0}78",
        ] {
            assert_eq!(normalize_phone(w).as_deref(), Some("+33612345678"), "{w}");
        }
    }

    #[test]
    fn overseas_and_foreign_numbers() {
        assert_eq!(
            normalize_phone("0262 12 34 56").as_deref(),
            Some("+262262123456")
        );
        assert_eq!(
            normalize_phone("0696 11 22 33").as_deref(),
            Some("+596696112233")
        );
        assert_eq!(
            normalize_phone("+41 22 123 45 67").as_deref(),
            Some("+41221234567")
        );
        assert_eq!(
            normalize_phone("0041221234567").as_deref(),
            Some("+41221234567")
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        for w in [
            "",
            "3939",
            "ORANGE",
            "06 12 34",
            "00 00 00 00 00",
            "06 12 34 56 78 9",
            "+",
            "06+12",
        ] {
            assert_eq!(normalize_phone(w), None, "{w}");
        }
    }

    #[test]
    fn number_ranges_start_like_the_numbers_they_hold() {
        let start = national_prefix_to_e164("04 72 49 1").unwrap();
        assert!(normalize_phone("04 72 49 12 34")
            .unwrap()
            .starts_with(&start));
        let start = national_prefix_to_e164("0262 12").unwrap();
        assert!(normalize_phone("0262 12 34 56")
            .unwrap()
            .starts_with(&start));
        assert_eq!(
            national_prefix_to_e164("+3347249").as_deref(),
            Some("+3347249")
        );
        assert_eq!(national_prefix_to_e164("0"), None);
    }

    #[test]
    fn emails_fold() {
        assert_eq!(
            normalize_email(" <Marie.Durand@Example.FR> ").as_deref(),
            Some("marie.durand@example.fr")
        );
        assert_eq!(normalize_email("mailto:a@b.fr").as_deref(), Some("a@b.fr"));
        for bad in ["", "a@", "@b.fr", "a@b", "a b@c.fr", "a@b@c.fr", "a@.fr"] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_fold() {
        assert_eq!(fold_name("Jean-Élie  D'Aré"), "jean elie d are");
        assert_eq!(fold_name("CŒUR Françoise"), "coeur francoise");
        assert_eq!(fold_name("Nguyễn Thị"), "nguyen thi");
    }

    proptest! {
        #[test]
        fn phone_normalisation_is_idempotent(s in "\\PC{0,24}") {
            if let Some(n) = normalize_phone(&s) {
                prop_assert_eq!(normalize_phone(&n), Some(n.clone()));
                prop_assert!(n.starts_with('+') && n[1..].bytes().all(|b| b.is_ascii_digit()));
            }
        }

        #[test]
        fn email_normalisation_is_idempotent(s in "\\PC{0,40}") {
            if let Some(n) = normalize_email(&s) {
                prop_assert_eq!(normalize_email(&n), Some(n.clone()));
            }
        }

        #[test]
        fn name_folding_is_idempotent(s in "\\PC{0,40}") {
            let f = fold_name(&s);
            prop_assert_eq!(fold_name(&f), f);
        }
    }
}
