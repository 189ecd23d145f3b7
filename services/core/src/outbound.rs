//! Rules of the outbound channel that every front-end and the sender share: the written
//! channel a citizen prefers (with consent), how many SMS segments a text takes, and the
//! retry schedule of the outbox. Pure.

use crate::pb::{self, Channel, ContactChannel};

/// Longest SMS answer, in segments (a long text is split by the gateway and billed per part).
pub const MAX_SMS_SEGMENTS: u32 = 10;

/// Attempts before the sender gives an answer up and hands it back to the agent.
pub const MAX_ATTEMPTS: u32 = 8;

/// The written channel the citizen chose, if they consented to be answered on it.
pub fn preferred_channel(identity: &pb::Identity) -> Option<Channel> {
    identity
        .consent
        .as_ref()
        .and_then(|c| c.given_at.as_ref())?;
    match ContactChannel::try_from(identity.preferred_channel).ok()? {
        ContactChannel::Email => Some(Channel::Email),
        ContactChannel::Sms => Some(Channel::Sms),
        ContactChannel::Courrier => Some(Channel::Courrier),
        _ => None,
    }
}

/// The GSM 03.38 default alphabet, and its extension table (two units each).
const GSM: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// The GSM-7 units of `text`, or `None` when a character is outside that alphabet.
fn gsm_units(text: &str) -> Option<usize> {
    text.chars()
        .map(|c| {
            if GSM.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum()
}

/// Whether `text` goes in the GSM 7-bit alphabet (else UCS-2).
pub fn is_gsm7(text: &str) -> bool {
    gsm_units(text).is_some()
}

/// Segments an SMS of `text` takes: 160 GSM-7 characters in one, 153 per part when split;
/// 70 UCS-2 units (any character outside GSM-7, like `ê` or `ł`) in one, 67 per part.
pub fn sms_segments(text: &str) -> u32 {
    let gsm = gsm_units(text);
    let (units, single, part) = match gsm {
        Some(units) => (units, 160, 153),
        None => (text.encode_utf16().count(), 70, 67),
    };
    if units <= single {
        1
    } else {
        units.div_ceil(part) as u32
    }
}

/// When attempt `attempt` (1 for the first) failed at `now_us`, when to try again: 30 s,
/// 2 min, 8 min… (×4, at most 6 h), or never after [`MAX_ATTEMPTS`].
pub fn retry_at(attempt: u32, now_us: i64) -> Option<i64> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let seconds = (30u64 * 4u64.pow(attempt.saturating_sub(1).min(8))).min(6 * 3600);
    Some(now_us + seconds as i64 * 1_000_000)
}

/// What an SMS says to the sender of the commune's SMS: stop them, or start again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKeyword {
    Stop,
    Start,
}

/// The keyword a short SMS is (« STOP », « stop sms », « Arrêt SMS », « START »), if it is
/// one: the keyword, then at most « sms », « mairie », « svp », « merci » — « Arrêt de bus »
/// or « Stop les travaux » are messages, not keywords.
pub fn sms_keyword(text: &str) -> Option<SmsKeyword> {
    let folded = crate::identity::fold_name(text);
    let words: Vec<&str> = folded.split_whitespace().collect();
    let (first, rest) = words.split_first()?;
    if rest.len() > 2
        || !rest
            .iter()
            .all(|w| matches!(*w, "sms" | "mairie" | "svp" | "merci"))
    {
        return None;
    }
    match *first {
        "stop" | "arret" | "desabonnement" | "desinscription" => Some(SmsKeyword::Stop),
        "start" | "reprise" => Some(SmsKeyword::Start),
        _ => None,
    }
}

/// `at_us`, or the next 08:00 (Paris) when it falls between 21:00 and 08:00: a notice to a
/// person is not sent at night.
pub fn in_daytime(at_us: i64) -> i64 {
    use chrono::Timelike;
    let local = crate::courrier::paris(at_us);
    if (8..21).contains(&local.hour()) {
        return at_us;
    }
    let day = if local.hour() >= 21 {
        local.date() + chrono::Duration::days(1)
    } else {
        local.date()
    };
    crate::courrier::paris_local_to_utc_us(day.and_hms_opt(8, 0, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_is_read_as_people_write_it() {
        for stop in [
            "STOP",
            "stop",
            " Stop SMS ",
            "Arrêt",
            "STOP MAIRIE",
            "stop merci",
        ] {
            assert_eq!(sms_keyword(stop), Some(SmsKeyword::Stop), "{stop}");
        }
        assert_eq!(sms_keyword("START"), Some(SmsKeyword::Start));
        for not in [
            "",
            "Stop au bruit dans ma rue la nuit",
            "Bonjour",
            "stopper",
            "Arrêt de bus",
            "Stop les travaux",
        ] {
            assert_eq!(sms_keyword(not), None, "{not}");
        }
    }

    #[test]
    fn notices_wait_for_the_morning() {
        let paris = |d: u32, h: u32, m: u32| {
            crate::courrier::paris_local_to_utc_us(
                chrono::NaiveDate::from_ymd_opt(2026, 12, d)
                    .unwrap()
                    .and_hms_opt(h, m, 0)
                    .unwrap(),
            )
        };
        assert_eq!(in_daytime(paris(3, 14, 0)), paris(3, 14, 0));
        assert_eq!(in_daytime(paris(3, 23, 30)), paris(4, 8, 0));
        assert_eq!(in_daytime(paris(4, 2, 0)), paris(4, 8, 0));
        assert_eq!(in_daytime(paris(4, 20, 59)), paris(4, 20, 59));
    }

    #[test]
    fn segments_follow_the_two_alphabets() {
        assert_eq!(sms_segments(""), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
        // é is GSM-7; ê is not: the whole text goes UCS-2.
        assert_eq!(sms_segments(&"é".repeat(160)), 1);
        assert_eq!(sms_segments(&"ê".repeat(70)), 1);
        assert_eq!(sms_segments(&"ê".repeat(71)), 2);
        // € takes two GSM-7 units.
        assert_eq!(sms_segments(&"€".repeat(80)), 1);
        assert_eq!(sms_segments(&"€".repeat(81)), 2);
        // An emoji is two UTF-16 units.
        assert_eq!(sms_segments(&"😊".repeat(35)), 1);
        assert_eq!(sms_segments(&"😊".repeat(36)), 2);
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_at(1, 0), Some(30_000_000));
        assert_eq!(retry_at(2, 0), Some(120_000_000));
        assert_eq!(retry_at(MAX_ATTEMPTS, 0), None);
    }

    #[test]
    fn no_consent_no_preferred_channel() {
        let mut i = pb::Identity {
            preferred_channel: ContactChannel::Sms as i32,
            ..Default::default()
        };
        assert_eq!(preferred_channel(&i), None);
        i.consent = Some(pb::Consent {
            given_at: Some(contacthub_proto::ts::from_micros(1)),
            source: "accueil".into(),
        });
        assert_eq!(preferred_channel(&i), Some(Channel::Sms));
        i.preferred_channel = ContactChannel::Phone as i32;
        assert_eq!(
            preferred_channel(&i),
            None,
            "a call is not a written answer"
        );
    }
}
