//! Finding a citizen by name or address as an agent types it: "durand marie", "Vélasquez",
//! "velazquez", "12 rue Émile Zola". Pure: the index lives in the read model (keys `nx/` and
//! `dx/`, written by [`crate::fold::citizens`]) and is read through [`Kv`].
//!
//! Every word of a record's names and addresses is folded (accents, case, hyphens and
//! apostrophes removed, [`fold_name`]) and indexed; name words of 4 letters or more are also
//! indexed under each of their one-letter deletions, so a query word one typo away (a
//! letter changed, added or missing) meets them ("symmetric delete") when no word is written
//! or started as typed. A query matches a
//! citizen when each of its words is a word of the record, the start of one (2 letters or
//! more), or one typo away from one; word order does not matter.

use crate::fold::Kv;
use crate::identity::fold_name;
use crate::keys;
use crate::pb;
use crate::Result;
use std::collections::{BTreeMap, BTreeSet};

/// How well a query word matched a record's word.
const EXACT: u32 = 3;
const PREFIX: u32 = 2;
const TYPO: u32 = 1;

/// Citizens one query word may bring in, at most: a word as typed brings in every holder; a
/// started word (or a typo) its first 500, by word — type one more letter to narrow.
const CANDIDATES_PER_WORD: usize = 20_000;
const CANDIDATES_PER_PREFIX: usize = 500;

/// Words of a record, folded and deduplicated: its names, and its addresses.
pub fn words(identity: Option<&pb::Identity>, display_name: &str) -> Words {
    let mut names = String::new();
    let mut places = String::new();
    match identity {
        Some(i) => {
            for part in [&i.usage_name, &i.birth_name, &i.first_names] {
                names.push(' ');
                names.push_str(part);
            }
            for a in &i.addresses {
                for part in [&a.number, &a.street, &a.city] {
                    places.push(' ');
                    places.push_str(part);
                }
            }
            if i.usage_name.is_empty() && i.birth_name.is_empty() {
                names.push(' ');
                names.push_str(display_name);
            }
        }
        None => names.push_str(display_name),
    }
    let split = |text: &str| -> BTreeSet<String> {
        fold_name(text)
            .split(' ')
            .filter(|w| !w.is_empty() && w.chars().count() <= 40)
            .map(str::to_string)
            .collect()
    };
    Words {
        names: split(&names),
        places: split(&places),
    }
}

/// The words of a record: names are searched with one typo allowed, places (addresses) as
/// written or by prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    pub names: BTreeSet<String>,
    pub places: BTreeSet<String>,
}

/// The one-letter deletions of a word of 4 letters or more.
pub fn deletions(word: &str) -> BTreeSet<String> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 {
        return BTreeSet::new();
    }
    (0..chars.len())
        .map(|i| {
            chars
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

/// Index keys of a record's words: each word, and each deletion of each name.
pub fn index_keys(tenant: &str, citizen: &str, words: &Words) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for w in words.names.union(&words.places) {
        out.push(keys::name_word(tenant, w, citizen));
    }
    for w in &words.names {
        for d in deletions(w) {
            out.push(keys::name_variant(tenant, &d, citizen));
        }
    }
    out
}

/// Titles and civilities an agent types before a name (« madame Durand », « M. Martin »),
/// folded: not words of anyone's record.
const CIVILITIES: &[&str] = &[
    "m",
    "mr",
    "mme",
    "mmes",
    "mlle",
    "mlles",
    "madame",
    "monsieur",
    "mademoiselle",
    "messieurs",
    "mesdames",
    "dr",
    "docteur",
];

/// The words of a query as searched: folded, civilities left out, at most 8.
pub fn query_words(query: &str) -> Vec<String> {
    fold_name(query)
        .split(' ')
        .filter(|w| !w.is_empty() && !CIVILITIES.contains(w))
        .take(8)
        .map(str::to_string)
        .collect()
}

/// Whether a record was found by its address rather than its names: every word of the query
/// is (the start of) a word of its addresses and none of its names.
pub fn found_by_address(record: &Words, query: &str) -> bool {
    let words = query_words(query);
    let meets = |set: &BTreeSet<String>, w: &str| set.iter().any(|x| x.starts_with(w));
    !words.is_empty()
        && words
            .iter()
            .all(|w| meets(&record.places, w) && !meets(&record.names, w))
}

/// Citizens whose words match every word of `query`, with a score (higher is better).
pub fn by_words(kv: &impl Kv, tenant: &str, query: &str) -> Result<Vec<(String, u32)>> {
    let words = query_words(query);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut total: Option<BTreeMap<String, u32>> = None;
    for w in &words {
        let mut scores: BTreeMap<String, u32> = BTreeMap::new();
        fn note(scores: &mut BTreeMap<String, u32>, citizen: String, score: u32) {
            let s = scores.entry(citizen).or_default();
            *s = (*s).max(score);
        }
        // The word itself, or a word it starts (2 letters or more).
        let prefix = keys::name_word_prefix(tenant, w);
        let exact_len = prefix.len();
        // Every holder of the word as typed; then, for a started word, others up to a bound.
        let mut scan = kv.scan_prefix(&prefix, CANDIDATES_PER_WORD)?;
        if w.chars().count() >= 2 {
            scan.extend(
                kv.scan_prefix(&prefix[..exact_len - 1], scan.len() + CANDIDATES_PER_PREFIX)?
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with(&prefix)),
            );
        }
        for (k, _) in scan {
            let rest = &k[exact_len - 1..];
            // rest = word-suffix \0 citizen
            let Some(sep) = rest.iter().position(|&b| b == 0) else {
                continue;
            };
            let citizen = String::from_utf8_lossy(&rest[sep + 1..]).into_owned();
            note(&mut scores, citizen, if sep == 0 { EXACT } else { PREFIX });
        }
        // One typo away (a deletion of one is the other, or both share a deletion), only
        // when nothing is written so: an exact or started word is what the agent means, and
        // the probes are what costs.
        if scores.is_empty() && w.chars().count() >= 3 {
            let mut probes: BTreeSet<String> = deletions(w);
            probes.insert(w.clone());
            for p in &probes {
                for (k, _) in
                    kv.scan_prefix(&keys::name_variant_prefix(tenant, p), CANDIDATES_PER_PREFIX)?
                {
                    let citizen = keys::last_part(&k);
                    note(&mut scores, citizen, TYPO);
                }
                if p != w {
                    for (k, _) in
                        kv.scan_prefix(&keys::name_word_prefix(tenant, p), CANDIDATES_PER_PREFIX)?
                    {
                        let citizen = keys::last_part(&k);
                        note(&mut scores, citizen, TYPO);
                    }
                }
            }
        }
        total = Some(match total {
            None => scores,
            Some(t) => t
                .into_iter()
                .filter_map(|(c, s)| scores.get(&c).map(|x| (c, s + x)))
                .collect(),
        });
        if total.as_ref().is_some_and(BTreeMap::is_empty) {
            break;
        }
    }
    Ok(total.unwrap_or_default().into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn index(kv: &mut BTreeMap<Vec<u8>, Vec<u8>>, citizen: &str, name: &str) {
        for k in index_keys("69091", citizen, &words(None, name)) {
            kv.put(k, vec![]);
        }
    }

    fn found(kv: &BTreeMap<Vec<u8>, Vec<u8>>, q: &str) -> Vec<String> {
        let mut r = by_words(kv, "69091", q).unwrap();
        r.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        r.into_iter().map(|(c, _)| c).collect()
    }

    #[test]
    fn names_are_found_as_agents_type_them() {
        let mut kv = BTreeMap::new();
        index(&mut kv, "C1", "Marie Durand");
        index(&mut kv, "C2", "Vélasquez-Durand Ana");
        index(&mut kv, "C3", "Jean-Élie D'Aré");
        index(&mut kv, "C4", "Mario Dupont");
        assert_eq!(found(&kv, "durand marie"), ["C1"]);
        assert_eq!(found(&kv, "Marie DURAND"), ["C1"]);
        assert_eq!(found(&kv, "velasquez"), ["C2"]);
        assert_eq!(found(&kv, "velazquez"), ["C2"], "one typo");
        assert_eq!(found(&kv, "vélasq"), ["C2"], "a prefix");
        assert_eq!(found(&kv, "durand"), ["C1", "C2"]);
        assert_eq!(found(&kv, "jean elie d are"), ["C3"]);
        assert_eq!(found(&kv, "d'aré jean-élie"), ["C3"]);
        assert_eq!(
            found(&kv, "mari"),
            ["C1", "C4"],
            "prefix of marie and mario"
        );
        assert!(found(&kv, "zola").is_empty());
        assert!(found(&kv, "").is_empty());
    }

    #[test]
    fn addresses_are_words_of_the_record() {
        let mut kv = BTreeMap::new();
        let identity = pb::Identity {
            usage_name: "Durand".into(),
            first_names: "Marie".into(),
            addresses: vec![pb::Address {
                number: "12".into(),
                street: "rue Émile Zola".into(),
                postcode: "69700".into(),
                city: "Givors".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        for k in index_keys("69091", "C1", &words(Some(&identity), "")) {
            kv.put(k, vec![]);
        }
        assert_eq!(found(&kv, "12 rue Émile Zola"), ["C1"]);
        assert_eq!(found(&kv, "marie zola"), ["C1"]);
    }
}
