//! Size limits of every field an event carries (documented in docs/events.md). Every writer
//! checks them at its edge (gRPC: INVALID_ARGUMENT; adapters: quarantine), and
//! [`crate::event::validate`] checks them again, so nothing over a limit reaches the log or a
//! reader. Text longer than [`TEXT_CHARS`] is kept whole in the content store by the adapters
//! and clipped in the event.

/// Largest encoded event (bytes). Below Kafka's default `message.max.bytes` (1,000,000) with
/// room for the key and headers, so every event fits both backends.
pub const EVENT_BYTES: usize = 900_000;
/// A person's or organisation's name (characters).
pub const NAME_CHARS: usize = 200;
/// A phone number as written (characters).
pub const PHONE_CHARS: usize = 40;
/// An e-mail address (characters; RFC 5321's path limit).
pub const EMAIL_CHARS: usize = 254;
/// A subject line or title (characters).
pub const SUBJECT_CHARS: usize = 1_000;
/// Free text: message body, agent's notes (characters).
pub const TEXT_CHARS: usize = 20_000;
/// Form fields per submission.
pub const FIELDS: usize = 300;
/// A form field's name (characters).
pub const FIELD_NAME_CHARS: usize = 200;
/// A form field's value (characters).
pub const FIELD_VALUE_CHARS: usize = 5_000;
/// Documents per event.
pub const ATTACHMENTS: usize = 50;
/// A document's file name (characters).
pub const FILE_NAME_CHARS: usize = 255;
/// Lines of a postal address.
pub const ADDRESS_LINES: usize = 6;
/// One line of a postal address, a postal code, a city, a country (characters).
pub const ADDRESS_LINE_CHARS: usize = 200;
/// Short labels: desk, service, step, form slug, mailbox, commune number, kind (characters).
pub const LABEL_CHARS: usize = 200;
/// Notes on bookkeeping events (routing, steps, resolutions) (characters).
pub const NOTE_CHARS: usize = 2_000;
/// Ids and references from a source: event id, source id, Message-ID, MessageSid (characters).
pub const ID_CHARS: usize = 250;
/// A desk visit lasts at most a day (minutes).
pub const VISIT_MINUTES: u32 = 24 * 60;
/// A phone call lasts at most a day (seconds).
pub const CALL_SECONDS: u32 = 86_400;
/// SMS segments of one message (gateways cap concatenated SMS far below).
pub const SMS_SEGMENTS: u32 = 255;
/// Phones, and e-mails, of one citizen record.
pub const IDENTIFIERS: usize = 10;
/// A search query (characters).
pub const QUERY_CHARS: usize = 200;

/// How much of a refused input an error message quotes (characters).
pub const QUOTE_CHARS: usize = 40;

/// `Err("FIELD is N characters; the limit is MAX")` when `value` is longer than `max`.
pub fn check_chars(field: &str, value: &str, max: usize) -> Result<(), String> {
    // Bytes bound characters from above: most values are decided without counting.
    if value.len() <= max {
        return Ok(());
    }
    let n = value.chars().count();
    if n > max {
        Err(format!("{field} is {n} characters; the limit is {max}"))
    } else {
        Ok(())
    }
}

/// At most [`QUOTE_CHARS`] characters of untrusted input, for error messages.
pub fn quote(s: &str) -> String {
    clip(s, QUOTE_CHARS)
}

/// Up to `max` characters of `s`, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Longest reason of an erasure, in characters.
pub const ERASURE_REASON_CHARS: usize = 300;
/// Most keys one erasure destroys (a person with many numbers, requests and records).
pub const ERASED_KEYS: usize = 100_000;
/// Most read-trail lines one `reads_recorded` event carries.
pub const TRAIL_READS: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_say_which_field_and_how_much() {
        assert!(check_chars("subject", "abc", 3).is_ok());
        assert!(
            check_chars("subject", "ééé", 3).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            check_chars("subject", "abcd", 3).unwrap_err(),
            "subject is 4 characters; the limit is 3"
        );
        assert_eq!(
            quote(&"x".repeat(1_000_000)).chars().count(),
            QUOTE_CHARS + 1
        );
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
