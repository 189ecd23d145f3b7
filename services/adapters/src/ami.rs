//! Asterisk's Manager Interface (AMI), pure: its wire format — `Key: Value` lines, a blank line
//! ending each message, `\r\n` (a bare `\n` is taken too) — read into messages, and the calls
//! followed through their events (`Newchannel`, `DialBegin`, `DialEnd`, `BridgeEnter`,
//! `Hangup`, grouped by `Linkedid`): who calls, which agent's extension rings, who answered,
//! which service it was transferred to and whether it came back to the accueil, and the call
//! once it ended. No IO: `telephony` connects, logs in and feeds these.

use std::collections::BTreeMap;

/// The longest AMI message taken, in bytes; a longer one is dropped (its lines skipped up to
/// the next blank line).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Calls followed at once; beyond, the oldest is forgotten (a switch that never says
/// `Hangup` must not fill the hub's memory).
pub const MAX_CALLS: usize = 4096;

/// One AMI message: its keys in order of arrival (a key given twice keeps the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message(pub BTreeMap<String, String>);

impl Message {
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }
}

/// Reads messages out of the bytes a connection delivers, in whatever pieces they come.
#[derive(Debug, Default)]
pub struct Frames {
    pending: Vec<u8>,
    /// Skipping an oversized message up to its blank line.
    skipping: bool,
}

impl Frames {
    /// The whole messages `bytes` completes, in order; what is left waits for more. The
    /// banner line (`Asterisk Call Manager/…`) is a message with the key `Banner`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Message> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            // The banner: one line, no blank line after it.
            if self.pending.starts_with(b"Asterisk Call Manager") {
                let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line = String::from_utf8_lossy(&self.pending[..end])
                    .trim()
                    .to_string();
                self.pending.drain(..=end);
                let mut m = BTreeMap::new();
                m.insert("Banner".to_string(), line);
                out.push(Message(m));
                continue;
            }
            let Some(end) = blank_line(&self.pending) else {
                if self.pending.len() > MAX_MESSAGE_BYTES {
                    // Too long: drop what came and skip to the message's end.
                    self.pending.clear();
                    self.skipping = true;
                }
                break;
            };
            let raw: Vec<u8> = self.pending.drain(..end.1).collect();
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            let text = String::from_utf8_lossy(&raw[..end.0]);
            let mut m = BTreeMap::new();
            for line in text.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    m.entry(k.trim().to_string())
                        .or_insert_with(|| v.trim().to_string());
                }
            }
            if !m.is_empty() {
                out.push(Message(m));
            }
        }
        out
    }
}

/// Where the first blank line is: (end of the message's text, end of the blank line).
fn blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            let next = &b[i + 1..];
            if next.starts_with(b"\r\n") {
                return Some((i, i + 3));
            }
            if next.starts_with(b"\n") {
                return Some((i, i + 2));
            }
        }
        i += 1;
    }
    None
}

/// The `Login` action, as the wire carries it.
pub fn login(username: &str, secret: &str, action_id: &str) -> Vec<u8> {
    // Values are single lines: a line break would start another key.
    let clean = |s: &str| s.replace(['\r', '\n'], "");
    format!(
        "Action: Login\r\nUsername: {}\r\nSecret: {}\r\nEvents: call\r\nActionID: {}\r\n\r\n",
        clean(username),
        clean(secret),
        clean(action_id)
    )
    .into_bytes()
}

/// How the extensions of a commune's switch map to agents and services.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    /// Extension → the agent whose desk shows who calls.
    pub agents: BTreeMap<String, String>,
    /// Extension → the service it belongs to (for transfers and bounce-backs).
    pub services: BTreeMap<String, String>,
    /// The central accueil's extensions (a call transferred back to one is a bounce-back).
    pub accueil: Vec<String>,
}

/// What following the events says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An agent's extension rings: show who calls on their desk.
    Ring {
        call: String,
        agent: String,
        /// The caller's number as the switch gives it; `None` when withheld.
        caller: Option<String>,
    },
    /// The call reached someone (`agent` when it is a configured extension).
    Answered { call: String, agent: String },
    /// The call ended.
    Ended(Call),
}

/// A call from its first channel to its hangup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    /// The `Linkedid` (the first channel's `Uniqueid`, the CDR's `uniqueid`).
    pub id: String,
    pub caller: Option<String>,
    /// The number called (the commune's line), when the first channel says it.
    pub called: String,
    /// When it began, was first answered and ended (µs since the epoch): the event's
    /// `Timestamp` when the switch sends one (`timestampevents = yes`), else when it arrived.
    pub started_us: i64,
    pub answered_us: i64,
    pub ended_us: i64,
    pub answered: bool,
    /// Extensions that answered, in order.
    pub answered_by: Vec<String>,
    /// The service it was transferred to last (by extension), if any.
    pub transferred_to: Option<String>,
    /// Whether, after a transfer to a service, it came back to the accueil.
    pub bounced: bool,
}

/// Calls followed by `Linkedid`.
#[derive(Debug, Default)]
pub struct Calls {
    open: BTreeMap<String, Call>,
    /// Arrival order, to forget the oldest beyond [`MAX_CALLS`].
    order: std::collections::VecDeque<String>,
}

/// The extension a `DialBegin` rings: its dial string without technology or context
/// (`PJSIP/201`, `201@from-internal` → `201`), else the destination's caller id or extension.
fn dial_target(m: &Message) -> String {
    let dial = m.get("DialString");
    let dial = dial.rsplit('/').next().unwrap_or_default();
    let dial = dial.split('@').next().unwrap_or_default().trim();
    if !dial.is_empty() {
        return dial.to_string();
    }
    match m.get("DestCallerIDNum") {
        "" => m.get("DestExten").to_string(),
        n => n.to_string(),
    }
}

/// A caller id that names no number: withheld, unknown or empty.
fn number(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let withheld = raw.is_empty()
        || raw.eq_ignore_ascii_case("<unknown>")
        || raw.eq_ignore_ascii_case("anonymous")
        || raw.eq_ignore_ascii_case("unknown")
        || raw.eq_ignore_ascii_case("restricted")
        || !raw.bytes().any(|b| b.is_ascii_digit());
    (!withheld).then(|| raw.to_string())
}

impl Calls {
    /// Folds one message, arrived at `now_us`; what it tells, if anything.
    pub fn apply(&mut self, m: &Message, ext: &Extensions, now_us: i64) -> Vec<Notice> {
        let at = m
            .get("Timestamp")
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
            .map_or(now_us, |t| (t * 1e6) as i64);
        let linked = match m.get("Linkedid") {
            "" => m.get("Uniqueid"),
            l => l,
        }
        .to_string();
        if linked.is_empty() || linked.len() > 64 {
            return Vec::new();
        }
        let mut out = Vec::new();
        match m.get("Event") {
            "Newchannel" if !self.open.contains_key(&linked) => {
                if self.open.len() >= MAX_CALLS {
                    if let Some(old) = self.order.pop_front() {
                        self.open.remove(&old);
                    }
                }
                self.order.push_back(linked.clone());
                self.open.insert(
                    linked.clone(),
                    Call {
                        id: linked.clone(),
                        caller: number(m.get("CallerIDNum")),
                        called: m.get("Exten").to_string(),
                        started_us: at,
                        ..Default::default()
                    },
                );
            }
            "DialBegin" => {
                let Some(call) = self.open.get_mut(&linked) else {
                    return out;
                };
                let dest = dial_target(m);
                if let Some(service) = ext.services.get(&dest) {
                    if call.answered {
                        call.transferred_to = Some(service.clone());
                    }
                } else if ext.accueil.contains(&dest) && call.transferred_to.is_some() {
                    call.bounced = true;
                }
                if let Some(agent) = ext.agents.get(&dest) {
                    out.push(Notice::Ring {
                        call: linked.clone(),
                        agent: agent.clone(),
                        caller: call.caller.clone(),
                    });
                }
            }
            "BridgeEnter" => {
                let Some(call) = self.open.get_mut(&linked) else {
                    return out;
                };
                // The callee's channel entering the bridge: `CallerIDNum` is its extension.
                let who = m.get("CallerIDNum");
                if m.get("Uniqueid") != linked && !who.is_empty() {
                    if !call.answered {
                        call.answered_us = at;
                    }
                    call.answered = true;
                    if call.answered_by.last().map(String::as_str) != Some(who) {
                        call.answered_by.push(who.to_string());
                    }
                    if let Some(agent) = ext.agents.get(who) {
                        out.push(Notice::Answered {
                            call: linked.clone(),
                            agent: agent.clone(),
                        });
                    }
                }
            }
            // The call ends with its first channel.
            "Hangup" if m.get("Uniqueid") == linked => {
                if let Some(mut call) = self.open.remove(&linked) {
                    self.order.retain(|c| c != &linked);
                    call.ended_us = at;
                    out.push(Notice::Ended(call));
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext() -> Extensions {
        Extensions {
            agents: [("201", "accueil-1"), ("301", "etat-civil-1")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            services: [("301", "etat-civil")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            accueil: vec!["201".into()],
        }
    }

    #[test]
    fn messages_are_read_in_any_pieces() {
        let wire = b"Asterisk Call Manager/7.0.3\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\nEvent: Newchannel\r\nUniqueid: 1.1\r\n\r\n";
        for cut in 0..wire.len() {
            let mut f = Frames::default();
            let mut got = f.push(&wire[..cut]);
            got.extend(f.push(&wire[cut..]));
            assert_eq!(got.len(), 3, "cut at {cut}");
            assert_eq!(got[0].get("Banner"), "Asterisk Call Manager/7.0.3");
            assert_eq!(got[1].get("Message"), "Authentication accepted");
            assert_eq!(got[2].get("Uniqueid"), "1.1");
        }
        // Bare line feeds, a value with a colon, an oversized message dropped whole.
        let mut f = Frames::default();
        let got = f.push(b"Event: X\nChannel: SIP/a:b\n\n");
        assert_eq!(got[0].get("Channel"), "SIP/a:b");
        let mut big = b"Event: Y\r\nData: ".to_vec();
        big.extend(vec![b'x'; MAX_MESSAGE_BYTES + 10]);
        assert!(f.push(&big).is_empty());
        let got = f.push(b"\r\n\r\nEvent: Z\r\n\r\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].get("Event"), "Z");
    }

    /// The notices of a recorded event sequence (`tests/fixtures/ami/`), one message a second.
    fn replay(name: &str) -> Vec<Notice> {
        let path = format!(
            "{}/../../tests/fixtures/ami/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let wire = std::fs::read(path).unwrap();
        let mut frames = Frames::default();
        let mut calls = Calls::default();
        let mut out = Vec::new();
        for (i, m) in frames.push(&wire).iter().enumerate() {
            out.extend(calls.apply(m, &ext(), 1_764_838_800_000_000 + i as i64 * 1_000_000));
        }
        out
    }

    fn ended(notices: &[Notice]) -> Call {
        match notices.last() {
            Some(Notice::Ended(c)) => c.clone(),
            other => panic!("the call did not end: {other:?}"),
        }
    }

    #[test]
    fn an_answered_call_rings_the_accueil_then_ends() {
        let n = replay("answered.txt");
        assert_eq!(
            n[0],
            Notice::Ring {
                call: "1764838800.101".into(),
                agent: "accueil-1".into(),
                caller: Some("0612345678".into()),
            }
        );
        assert!(matches!(&n[1], Notice::Answered { agent, .. } if agent == "accueil-1"));
        let c = ended(&n);
        assert!(c.answered && c.transferred_to.is_none() && !c.bounced);
        assert_eq!(c.called, "0472491818");
        assert_eq!(c.answered_by, ["201"]);
        assert!(c.started_us < c.answered_us && c.answered_us < c.ended_us);
    }

    #[test]
    fn a_missed_call_rings_and_ends_unanswered() {
        let n = replay("missed.txt");
        assert!(matches!(&n[0], Notice::Ring { caller: Some(c), .. } if c == "+33478123456"));
        let c = ended(&n);
        assert!(!c.answered && c.answered_us == 0);
    }

    #[test]
    fn a_transfer_that_comes_back_is_a_bounce_against_the_service() {
        let n = replay("transfer-bounce.txt");
        let rings: Vec<&str> = n
            .iter()
            .filter_map(|x| match x {
                Notice::Ring { agent, .. } => Some(agent.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(rings, ["accueil-1", "etat-civil-1", "accueil-1"]);
        let c = ended(&n);
        assert_eq!(c.transferred_to.as_deref(), Some("etat-civil"));
        assert!(c.bounced);
    }

    #[test]
    fn a_withheld_number_rings_without_a_caller() {
        let n = replay("withheld.txt");
        assert!(matches!(&n[0], Notice::Ring { caller: None, .. }));
        assert_eq!(ended(&n).caller, None);
    }

    #[test]
    fn calls_never_ended_are_forgotten_beyond_the_limit() {
        let mut calls = Calls::default();
        for i in 0..MAX_CALLS + 10 {
            let mut m = BTreeMap::new();
            m.insert("Event".to_string(), "Newchannel".to_string());
            m.insert("Uniqueid".to_string(), format!("1.{i}"));
            calls.apply(&Message(m), &ext(), 1);
        }
        assert_eq!(calls.open.len(), MAX_CALLS);
        assert!(!calls.open.contains_key("1.0"));
    }

    #[test]
    fn the_login_cannot_smuggle_a_line() {
        let l = String::from_utf8(login("hub", "s3cret\r\nAction: Originate", "1")).unwrap();
        assert_eq!(l.matches("\r\n").count(), 6, "{l}");
        assert!(l.contains("Secret: s3cretAction: Originate\r\n"));
    }
}
