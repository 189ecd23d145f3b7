//! Phone: call detail records in Asterisk's standard CSV (`Master.csv`): accountcode, src,
//! dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, end, duration,
//! billsec, disposition, amaflags, then optionally uniqueid and userfield (and newer
//! columns, ignored). No header line; times in the PBX's local time unless configured UTC.
//!
//! The commune is the one whose number is dst (inbound) or src (outbound); failing that, the
//! one named by accountcode (INSEE code or prefix), failing that the one the file was sent
//! for. A leg in a transfer context to a central accueil extension is a bounce back.

use crate::config::{AdaptersConfig, CdrTimezone};
use crate::{clip, Adapter, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::normalize_phone;
use contacthub_core::pb::{self, event::Payload, phone_call::Disposition};
use contacthub_core::tenant::Tenants;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The `source` of CDR events.
pub const SOURCE: &str = "asterisk-cdr";

/// Columns of a CDR line.
const SRC: usize = 1;
const DST: usize = 2;
const DCONTEXT: usize = 3;
const CLID: usize = 4;
const START: usize = 9;
const DURATION: usize = 12;
const BILLSEC: usize = 13;
const DISPOSITION: usize = 14;
const UNIQUEID: usize = 16;
const COLUMNS: usize = 16;

/// The phone adapter.
#[derive(Debug, Clone)]
pub struct PhoneCdr {
    cfg: Arc<AdaptersConfig>,
    tenants: Arc<Tenants>,
}

impl PhoneCdr {
    pub fn new(cfg: Arc<AdaptersConfig>, tenants: Arc<Tenants>) -> Self {
        PhoneCdr { cfg, tenants }
    }

    /// The commune owning a number (E.164): one of its numbers or direct lines.
    fn commune_of(&self, number: &str) -> Option<&str> {
        self.tenants
            .iter()
            .find(|t| t.owns_number(number))
            .map(|t| t.code.as_str())
    }

    fn commune_named(&self, accountcode: &str) -> Option<&str> {
        let a = accountcode.trim();
        if a.is_empty() {
            return None;
        }
        self.tenants
            .iter()
            .find(|t| t.code == a || t.prefix.eq_ignore_ascii_case(a))
            .map(|t| t.code.as_str())
    }

    fn line(&self, f: &[String], raw: &[u8], locator: String, input: &Input<'_>) -> Item {
        let reject =
            |reason: String, tenant: Option<&str>| Item::reject(&locator, reason, tenant, raw);
        if f.len() < COLUMNS {
            return reject(
                format!(
                    "has {} fields; a CDR line has at least {COLUMNS} (accountcode … amaflags)",
                    f.len()
                ),
                input.tenant,
            );
        }
        let start =
            match chrono::NaiveDateTime::parse_from_str(f[START].trim(), "%Y-%m-%d %H:%M:%S") {
                Ok(t) => t,
                Err(_) => {
                    return reject(
                        format!(
                            "start {:?} is not a date (YYYY-MM-DD HH:MM:SS)",
                            clip(&f[START], 40)
                        ),
                        input.tenant,
                    )
                }
            };
        let start_us = match self.cfg.phone.timezone {
            CdrTimezone::Paris => contacthub_core::courrier::paris_local_to_utc_us(start),
            CdrTimezone::Utc => start.and_utc().timestamp_micros(),
        };
        let seconds = |i: usize, name: &str| {
            f[i].trim()
                .parse::<u32>()
                .map_err(|_| format!("{name} {:?} is not a number of seconds", clip(&f[i], 20)))
        };
        let (duration, billsec) = match (seconds(DURATION, "duration"), seconds(BILLSEC, "billsec"))
        {
            (Ok(d), Ok(b)) => (d, b),
            (Err(e), _) | (_, Err(e)) => return reject(e, input.tenant),
        };
        let disposition = match f[DISPOSITION].trim().to_ascii_uppercase().as_str() {
            "ANSWERED" => Disposition::Answered,
            "NO ANSWER" => Disposition::NoAnswer,
            "BUSY" => Disposition::Busy,
            "FAILED" | "CONGESTION" => Disposition::Failed,
            other => {
                return reject(
                    format!(
                        "unknown disposition {:?} (ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION)",
                        clip(other, 20)
                    ),
                    input.tenant,
                )
            }
        };

        let src = normalize_phone(&f[SRC]);
        let dst = normalize_phone(&f[DST]);
        let (clid_name, clid_number) = split_clid(&f[CLID]);
        let dcontext = f[DCONTEXT].trim();
        // The dialplan context says which way the call went (FreePBX/Asterisk conventions,
        // configurable); failing that, which side is one of the commune's numbers.
        let direction = match self.cfg.phone.direction_of(dcontext) {
            Some(d) => d,
            None => match (
                dst.as_deref().and_then(|d| self.commune_of(d)),
                src.as_deref().and_then(|s| self.commune_of(s)),
            ) {
                (Some(_), _) => pb::Direction::Inbound,
                (None, Some(_)) => pb::Direction::Outbound,
                (None, None) if src.is_some() || (dst.is_none() && clid_number.is_some()) => {
                    pb::Direction::Inbound
                }
                (None, None) if dst.is_some() => pb::Direction::Outbound,
                (None, None) => {
                    return Item::Ignored {
                        locator,
                        why: "no outside number: a call between internal extensions or with a withheld number"
                            .into(),
                    }
                }
            },
        };
        // The commune's side and the citizen's side.
        let (ours, theirs) = match direction {
            pb::Direction::Outbound => (&src, dst.clone()),
            _ => (
                &dst,
                src.clone()
                    .or_else(|| clid_number.as_deref().and_then(normalize_phone)),
            ),
        };
        // The citizen's number, never one of the commune's own (a service line calling the
        // switchboard is not a citizen), never withheld.
        let Some(party_phone) = theirs.filter(|n| self.commune_of(n).is_none()) else {
            return Item::Ignored {
                locator,
                why: "no outside number: a call between internal extensions or the commune's own lines, or with a withheld number".into(),
            };
        };
        let by_number = ours
            .as_deref()
            .and_then(|n| self.commune_of(n))
            .or_else(|| {
                // A transfer leg or an internal leg: either number may be the commune's.
                [&dst, &src]
                    .into_iter()
                    .flatten()
                    .find_map(|n| self.commune_of(n))
            });
        let Some(tenant) = by_number
            .or_else(|| self.commune_named(&f[0]))
            .or(input.tenant)
        else {
            return reject(
                "no commune: neither src nor dst is a commune number, and accountcode names no commune"
                    .into(),
                None,
            );
        };
        let commune_number = ours
            .as_ref()
            .filter(|n| self.commune_of(n).is_some())
            .cloned();
        if let Some(sent_for) = input.tenant {
            if sent_for != tenant {
                return reject(
                    format!("the call belongs to commune {tenant}, not to {sent_for} that sent it"),
                    Some(sent_for),
                );
            }
        }
        let bounced = self
            .cfg
            .phone
            .transfer_contexts
            .iter()
            .any(|c| c == f[DCONTEXT].trim())
            && self.cfg.is_accueil(tenant, f[DST].trim());

        let source_id = match f.get(UNIQUEID).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            Some(id) => id.to_string(),
            None => format!(
                "line-sha256:{}",
                Sha256::digest(raw)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        };
        let payload = Payload::PhoneCall(pb::PhoneCall {
            disposition: disposition as i32,
            duration_seconds: duration,
            billed_seconds: billsec,
            commune_number: commune_number.unwrap_or_default(),
            bounced_to_accueil: bounced,
            ..Default::default()
        });
        let party = pb::Party {
            phone: party_phone,
            name: if direction == pb::Direction::Inbound {
                clid_name.filter(|n| !not_a_name(n)).unwrap_or_default()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let mut event = contact(
            tenant,
            SOURCE,
            &source_id,
            start_us,
            input.received_us,
            payload,
            party,
        );
        event.direction = direction as i32;
        crate::checked(&self.tenants, event, Vec::new(), &locator, raw)
    }
}

/// Caller-ID names that name nobody: what switches and carriers put for withheld or unknown
/// callers.
fn not_a_name(name: &str) -> bool {
    const PLACEHOLDERS: &[&str] = &[
        "inconnu",
        "anonyme",
        "anonymous",
        "unknown",
        "unavailable",
        "private",
        "prive",
        "masque",
        "numero masque",
        "restricted",
        "withheld",
    ];
    let folded = contacthub_core::identity::fold_name(name);
    folded.is_empty() || PLACEHOLDERS.contains(&folded.as_str())
}

/// `"Marie Durand" <0612345678>` → (name, number). A clid that is only a number gives no name.
fn split_clid(clid: &str) -> (Option<String>, Option<String>) {
    let clid = clid.trim();
    if let (Some(open), true) = (clid.rfind('<'), clid.ends_with('>')) {
        let number = clid[open + 1..clid.len() - 1].trim().to_string();
        let name = clid[..open].trim().trim_matches('"').trim().to_string();
        let name = (!name.is_empty() && normalize_phone(&name).is_none()).then_some(name);
        return (name, (!number.is_empty()).then_some(number));
    }
    if normalize_phone(clid).is_some() {
        (None, Some(clid.to_string()))
    } else {
        (None, None)
    }
}

impl Adapter for PhoneCdr {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        let bytes = input.bytes;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut starts = Vec::new();
        let mut records = Vec::new();
        let mut record = csv::ByteRecord::new();
        let mut items = Vec::new();
        loop {
            let at = reader.position().clone();
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let start = record.position().map_or(at.byte(), |p| p.byte()) as usize;
                    let line = record.position().map_or(at.line(), |p| p.line());
                    starts.push((start, line));
                    records.push(
                        record
                            .iter()
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .collect::<Vec<_>>(),
                    );
                }
                Err(e) => {
                    let from = (at.byte() as usize).min(bytes.len());
                    items.push(Item::reject(
                        format!("line {}", at.line()),
                        format!("not CSV: {e}"),
                        input.tenant,
                        &bytes[from..],
                    ));
                    break;
                }
            }
        }
        let mut out = Vec::with_capacity(records.len() + items.len());
        for (i, fields) in records.iter().enumerate() {
            let (start, line) = starts[i];
            let end = starts.get(i + 1).map_or(bytes.len(), |s| s.0);
            let raw = trim_eol(&bytes[start.min(end)..end]);
            let locator = format!("line {line}");
            if i == 0 && fields.first().is_some_and(|f| f.trim() == "accountcode") {
                out.push(Item::Ignored {
                    locator,
                    why: "header line".into(),
                });
                continue;
            }
            out.push(self.line(fields, raw, locator, input));
        }
        out.extend(items);
        out
    }
}

fn trim_eol(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contact;
    use proptest::prelude::*;

    fn adapter() -> PhoneCdr {
        let t = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml(
            "[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"9\"]",
            &t,
        )
        .unwrap();
        PhoneCdr::new(Arc::new(cfg), t)
    }

    fn parse(text: &str, tenant: Option<&str>) -> Vec<Item> {
        adapter().parse(&Input {
            bytes: text.as_bytes(),
            origin: "Master.csv",
            tenant,
            received_us: 1_800_000_000_000_000,
        })
    }

    fn contact(item: &Item) -> &Contact {
        match item {
            Item::Contact(c) => c,
            other => panic!("expected a contact, got {other:?}"),
        }
    }

    fn party(c: &Contact) -> &pb::Party {
        c.event.personal.as_ref().unwrap().party.as_ref().unwrap()
    }

    fn call(c: &Contact) -> &pb::PhoneCall {
        match c.event.payload.as_ref() {
            Some(Payload::PhoneCall(p)) => p,
            other => panic!("not a call: {other:?}"),
        }
    }

    const MASTER: &str = concat!(
        r#""","0612345678","0472491818","from-trunk","""Marie Durand"" <0612345678>","SIP/trunk-00000012","SIP/201-00000013","Dial","SIP/201,30","2026-11-02 09:14:03","2026-11-02 09:14:09","2026-11-02 09:17:12",189,183,"ANSWERED","DOCUMENTATION","1762071243.18","""#,
        "\n",
        r#""","+33 6 98 76 54 32","0472491818","from-trunk","""+33698765432"" <+33698765432>","SIP/trunk-00000014","","Dial","SIP/201,30","2026-07-14 18:02:00","","2026-07-14 18:02:30",30,0,"NO ANSWER","DOCUMENTATION","1752508920.20","""#,
        "\n",
        r#""GIV","201","0478000000","from-internal","""Etat civil"" <201>","SIP/201-00000015","SIP/trunk-00000016","Dial","SIP/trunk/0478000000","2026-11-02 10:00:00","2026-11-02 10:00:05","2026-11-02 10:01:05",65,60,"ANSWERED","DOCUMENTATION","1762074000.21","""#,
        "\n",
        r#""69091","201","9","from-internal-xfer","""Marie Durand"" <0612345678>","Local/9@from-internal-xfer","SIP/9-00000017","Dial","SIP/9","2026-11-02 09:17:12","2026-11-02 09:17:15","2026-11-02 09:20:00",168,165,"ANSWERED","DOCUMENTATION","1762071432.22","""#,
        "\n",
        r#""","201","202","from-internal","""201"" <201>","SIP/201-00000018","SIP/202-00000019","Dial","SIP/202","2026-11-02 11:00:00","2026-11-02 11:00:02","2026-11-02 11:00:30",30,28,"ANSWERED","DOCUMENTATION","1762077600.23","""#,
        "\n",
    );

    #[test]
    fn the_dialplan_context_tells_the_direction_and_commune_lines_are_never_citizens() {
        let t = Arc::new(
            Tenants::from_toml(
                "[[commune]]\ncode = \"69091\"\nname = \"Givors\"\nprefix = \"GIV\"\nnumbers = [\"04 72 49 18 18\"]\ndirect_lines = [\"04 72 49 1\"]\n",
            )
            .unwrap(),
        );
        let cfg = AdaptersConfig::from_toml("", &t).unwrap();
        let adapter = PhoneCdr::new(Arc::new(cfg), t);
        let line = |src: &str, dst: &str, ctx: &str, clid: &str| {
            format!(
                r#""","{src}","{dst}","{ctx}","{clid}","SIP/a","SIP/b","Dial","","2026-11-02 09:14:03","2026-11-02 09:14:09","2026-11-02 09:17:12",189,183,"ANSWERED","DOCUMENTATION","u-{src}-{dst}","""#
            )
        };
        let parse = |text: String| {
            adapter.parse(&Input {
                bytes: text.as_bytes(),
                origin: "Master.csv",
                tenant: None,
                received_us: 1_800_000_000_000_000,
            })
        };
        // A service's direct line (not in `numbers`, in the SDA range) calls a citizen.
        let items = parse(line(
            "0472491234",
            "0612345678",
            "from-internal",
            "\"Etat civil\" <0472491234>",
        ));
        let c = contact(&items[0]);
        assert_eq!(c.event.direction, pb::Direction::Outbound as i32);
        assert_eq!(party(c).phone, "+33612345678");
        assert_eq!(party(c).name, "", "the service's name is not the citizen's");
        assert_eq!(call(c).commune_number, "+33472491234");
        // An anonymous inbound call: no citizen, counted as ignored.
        let items = parse(line("", "0472491818", "from-trunk", ""));
        assert!(matches!(&items[0], Item::Ignored { .. }), "{items:?}");
        // A direct line calling the switchboard: not a citizen.
        let items = parse(line("0472491234", "0472491818", "from-trunk", ""));
        assert!(matches!(&items[0], Item::Ignored { .. }), "{items:?}");
        // Caller-ID placeholders are not names.
        for placeholder in ["Inconnu", "Anonymous", "UNKNOWN", "0612345678"] {
            let items = parse(line(
                "0612345678",
                "0472491818",
                "from-pstn",
                &format!("\"{placeholder}\" <0612345678>"),
            ));
            assert_eq!(party(contact(&items[0])).name, "", "{placeholder}");
        }
    }

    #[test]
    fn a_master_csv_becomes_calls_with_direction_commune_and_bounces() {
        let items = parse(MASTER, None);
        assert_eq!(items.len(), 5);

        let c = contact(&items[0]);
        assert_eq!(c.event.tenant, "69091");
        assert_eq!(c.event.direction, pb::Direction::Inbound as i32);
        let p = party(c);
        assert_eq!(p.phone, "+33612345678");
        assert_eq!(p.name, "Marie Durand");
        assert_eq!(call(c).disposition, Disposition::Answered as i32);
        assert_eq!(
            (call(c).duration_seconds, call(c).billed_seconds),
            (189, 183)
        );
        assert_eq!(call(c).commune_number, "+33472491818");
        assert!(!call(c).bounced_to_accueil);
        // 09:14:03 in Paris in November is 08:14:03 UTC.
        assert_eq!(
            contacthub_core::event::fmt_us(
                contacthub_proto::ts::to_micros(c.event.occurred_at.as_ref().unwrap()).unwrap()
            ),
            "2026-11-02T08:14:03Z"
        );
        assert_eq!(
            c.event.event_id,
            contacthub_core::event::event_id("69091", SOURCE, "1762071243.18")
        );

        // A missed call in summer: +2 h; the name equal to the number is no name.
        let c = contact(&items[1]);
        assert_eq!(call(c).disposition, Disposition::NoAnswer as i32);
        assert_eq!(party(c).name, "");
        assert_eq!(
            contacthub_core::event::fmt_us(
                contacthub_proto::ts::to_micros(c.event.occurred_at.as_ref().unwrap()).unwrap()
            ),
            "2026-07-14T16:02:00Z"
        );

        // Outbound from an extension, commune from accountcode (prefix).
        let c = contact(&items[2]);
        assert_eq!(c.event.tenant, "69091");
        assert_eq!(c.event.direction, pb::Direction::Outbound as i32);
        assert_eq!(party(c).phone, "+33478000000");

        // Transfer to the accueil extension 9: a bounce, party from the clid.
        let c = contact(&items[3]);
        assert!(call(c).bounced_to_accueil);
        assert_eq!(party(c).phone, "+33612345678");

        assert!(
            matches!(&items[4], Item::Ignored { why, .. } if why.contains("internal extensions"))
        );
    }

    #[test]
    fn broken_lines_are_rejected_with_their_raw_bytes_and_the_rest_goes_on() {
        let text = concat!(
            "accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,billsec,disposition,amaflags,uniqueid,userfield\n",
            r#""","0612345678","0472491818","from-trunk","","SIP/t","","Dial","","yesterday","","",10,5,"ANSWERED","DOCUMENTATION","a1","""#, "\n",
            r#""","0612345678","0472491818""#, "\n",
            r#""","0612345678","0472491818","from-trunk","","SIP/t","","Dial","","2026-11-02 09:00:00","","",ten,5,"ANSWERED","DOCUMENTATION","a2","""#, "\n",
            r#""","0612345678","0472491818","from-trunk","","SIP/t","","Dial","","2026-11-02 09:00:00","","",10,5,"HUNG UP","DOCUMENTATION","a3","""#, "\n",
            r#""","0612345678","0478000000","from-trunk","","SIP/t","","Dial","","2026-11-02 09:00:00","","",10,5,"ANSWERED","DOCUMENTATION","a4","""#, "\n",
            r#""","0612345678","0472491818","from-trunk","","SIP/t","","Dial","","2026-11-02 09:00:00","","",10,5,"BUSY","DOCUMENTATION","a5","""#, "\n",
        );
        let items = parse(text, None);
        assert!(matches!(&items[0], Item::Ignored { why, .. } if why == "header line"));
        let reasons: Vec<(String, String, String)> = items[1..5]
            .iter()
            .map(|i| match i {
                Item::Rejected(r) => (
                    r.locator.clone(),
                    r.reason.clone(),
                    String::from_utf8(r.raw.clone()).unwrap(),
                ),
                other => panic!("expected a rejection, got {other:?}"),
            })
            .collect();
        assert_eq!(reasons[0].0, "line 2");
        assert!(
            reasons[0]
                .1
                .starts_with("start \"yesterday\" is not a date"),
            "{reasons:?}"
        );
        assert!(reasons[0].2.contains("yesterday") && !reasons[0].2.ends_with('\n'));
        assert!(reasons[1].1.starts_with("has 3 fields"), "{reasons:?}");
        assert_eq!(reasons[1].2, r#""","0612345678","0472491818""#);
        assert!(reasons[2].1.starts_with("duration \"ten\""), "{reasons:?}");
        assert!(
            reasons[3].1.starts_with("unknown disposition \"HUNG UP\""),
            "{reasons:?}"
        );
        assert!(matches!(&items[5], Item::Rejected(r) if r.reason.starts_with("no commune")));
        // A line without a uniqueid still gets a stable id from its bytes.
        assert_eq!(
            call(contact(&items[6])).disposition,
            Disposition::Busy as i32
        );
        assert_eq!(items.len(), 7);
    }

    #[test]
    fn lines_without_uniqueid_get_ids_from_their_bytes_and_the_sender_must_match() {
        let line = r#""","0612345678","0472491818","from-trunk","","SIP/t","","Dial","","2026-11-02 09:00:00","","",10,5,"ANSWERED","DOCUMENTATION""#;
        let a = contact(&parse(line, None)[0]).event.event_id.clone();
        let b = contact(&parse(&format!("{line}\r\n"), None)[0])
            .event
            .event_id
            .clone();
        assert_eq!(a, b, "a line ending does not change the id");
        let other = line.replace("09:00:00", "09:00:01");
        assert_ne!(a, contact(&parse(&other, None)[0]).event.event_id);
        match &parse(line, Some("69096"))[0] {
            Item::Rejected(r) => assert_eq!(
                r.reason,
                "the call belongs to commune 69091, not to 69096 that sent it"
            ),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = adapter().parse(&Input { bytes: &bytes, origin: "x", tenant: None, received_us: 1_800_000_000_000_000 });
        }

        #[test]
        fn mangled_lines_never_panic(line in "(\"[^\"\n]{0,12}\",){0,20}[^\n]{0,20}", tenant in proptest::option::of("69091|69096|x")) {
            let _ = adapter().parse(&Input { bytes: line.as_bytes(), origin: "x", tenant: tenant.as_deref(), received_us: 1_800_000_000_000_000 });
        }
    }
}
