//! Tenants are communes, named by INSEE code and loaded from a TOML file.

use crate::identity::normalize_phone;
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The configuration shipped with contacthub: the six communes of the syndicate.
pub const DEFAULT_COMMUNES: &str = include_str!("../communes.toml");

/// One commune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// INSEE code, e.g. "69091".
    pub code: String,
    pub name: String,
    /// Three-letter prefix of chrono numbers and provisional citizen ids, e.g. "GIV".
    pub prefix: String,
    /// The commune's own numbers, E.164.
    pub numbers: Vec<String>,
    /// Prefixes (E.164) of the commune's direct lines (SDA ranges), e.g. `+3347249`.
    pub direct_lines: Vec<String>,
    /// Committed answer delay for letters, in days, by category name (`urbanisme`…), and for
    /// every other category.
    pub answer_days_by_category: BTreeMap<String, u32>,
    pub answer_days: u32,
    /// Whether those days are working days (Monday to Friday, Paris time) rather than
    /// calendar days.
    pub answer_in_working_days: bool,
    /// The town hall's postal address, for the letterhead (lines).
    pub address: Vec<String>,
    /// The logo file named in the communes file (relative to it), if any.
    pub logo_file: Option<String>,
    /// The logo printed on the letterhead (PNG or JPEG bytes; empty: none), loaded from
    /// `logo_file` by the binary ([`Tenants::set_logo`]).
    pub logo: Vec<u8>,
}

impl Tenant {
    /// Whether `number` (E.164) is one of the commune's numbers or direct lines.
    pub fn owns_number(&self, number: &str) -> bool {
        self.numbers.iter().any(|n| n == number)
            || self
                .direct_lines
                .iter()
                .any(|p| number.starts_with(p.as_str()))
    }

    /// Days the commune commits to answer a letter of `category` (`pb::Category as i32`).
    pub fn answer_days_for(&self, category: i32) -> u32 {
        let name = crate::pb::Category::try_from(category)
            .map(|c| {
                c.as_str_name()
                    .trim_start_matches("CATEGORY_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        self.answer_days_by_category
            .get(&name)
            .copied()
            .unwrap_or(self.answer_days)
    }
}

/// All known tenants, by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenants {
    by_code: BTreeMap<String, Tenant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    commune: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    prefix: String,
    #[serde(default)]
    numbers: Vec<String>,
    /// Prefixes of direct lines, written like numbers ("04 72 49 1"), or E.164 ("+3347249").
    #[serde(default)]
    direct_lines: Vec<String>,
    #[serde(default = "default_answer_days")]
    answer_days: u32,
    #[serde(default)]
    answer_days_by_category: BTreeMap<String, u32>,
    #[serde(default)]
    answer_in_working_days: bool,
    /// The town hall's postal address (lines), printed on the letterhead.
    #[serde(default)]
    address: Vec<String>,
    /// A PNG or JPEG file, relative to the communes file: the logo of the letterhead.
    logo: Option<String>,
}

fn default_answer_days() -> u32 {
    15
}

impl Tenants {
    /// Parses a communes TOML file (see `communes.toml` for the format).
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let mut by_code = BTreeMap::new();
        let mut prefixes = BTreeMap::new();
        for e in file.commune {
            if e.code.len() != 5 || !e.code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(Error::Config(format!(
                    "commune code {:?} is not a 5-character INSEE code",
                    e.code
                )));
            }
            if e.prefix.is_empty()
                || e.prefix.len() > 8
                || !e.prefix.bytes().all(|b| b.is_ascii_uppercase())
            {
                return Err(Error::Config(format!(
                    "prefix {:?} of commune {} must be 1 to 8 upper-case letters",
                    e.prefix, e.code
                )));
            }
            if let Some(other) = prefixes.insert(e.prefix.clone(), e.code.clone()) {
                return Err(Error::Config(format!(
                    "prefix {} is used by both {} and {}",
                    e.prefix, other, e.code
                )));
            }
            let numbers = e
                .numbers
                .iter()
                .map(|n| {
                    normalize_phone(n).ok_or_else(|| {
                        Error::Config(format!("commune {}: {n:?} is not a phone number", e.code))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let direct_lines = e
                .direct_lines
                .iter()
                .map(|p| {
                    crate::identity::national_prefix_to_e164(p)
                        .filter(|x| x.len() >= 5)
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "commune {}: direct line prefix {p:?} is not a number prefix",
                                e.code
                            ))
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            for cat in e.answer_days_by_category.keys() {
                let known = crate::pb::Category::from_str_name(&format!(
                    "CATEGORY_{}",
                    cat.to_ascii_uppercase()
                ));
                if known.is_none() {
                    return Err(Error::Config(format!(
                        "commune {}: unknown category {cat:?} in answer_days_by_category",
                        e.code
                    )));
                }
            }
            let t = Tenant {
                code: e.code.clone(),
                name: e.name,
                prefix: e.prefix,
                numbers,
                direct_lines,
                answer_days: e.answer_days,
                answer_in_working_days: e.answer_in_working_days,
                address: e.address,
                answer_days_by_category: e.answer_days_by_category,
                logo_file: e.logo,
                logo: Vec::new(),
            };
            if by_code.insert(e.code.clone(), t).is_some() {
                return Err(Error::Config(format!("commune {} is listed twice", e.code)));
            }
        }
        if by_code.is_empty() {
            return Err(Error::Config("no commune is configured".into()));
        }
        Ok(Tenants { by_code })
    }

    /// The six communes of the syndicate.
    pub fn builtin() -> Self {
        Self::from_toml(DEFAULT_COMMUNES).expect("the shipped communes.toml is valid")
    }

    /// Gives commune `code` the logo `bytes` (its `logo_file`'s content): a PNG or JPEG of at
    /// most 1 MiB that the PDF writer can read.
    pub fn set_logo(&mut self, code: &str, bytes: Vec<u8>) -> Result<()> {
        let Some(t) = self.by_code.get_mut(code) else {
            return Err(Error::Config(format!("unknown commune {code}")));
        };
        if bytes.len() > 1 << 20 {
            return Err(Error::Config(format!(
                "commune {code}: the logo is {} bytes; the limit is 1 MiB",
                bytes.len()
            )));
        }
        if let Err(why) = crate::receipt::logo_image(&bytes) {
            return Err(Error::Config(format!(
                "commune {code}: the logo is not a readable PNG or JPEG image ({why})"
            )));
        }
        t.logo = bytes;
        Ok(())
    }

    pub fn get(&self, code: &str) -> Option<&Tenant> {
        self.by_code.get(code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tenant> {
        self.by_code.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_six_communes() {
        let t = Tenants::builtin();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Rive-de-Gier",
                "Givors",
                "Grigny",
                "Pierre-Bénite",
                "Vaulx-en-Velin",
                "Vénissieux"
            ]
        );
        assert_eq!(t.get("69091").unwrap().numbers, ["+33472491818"]);
    }

    #[test]
    fn rejects_duplicates_and_bad_codes() {
        let dup = "[[commune]]\ncode='69091'\nname='A'\nprefix='A'\n[[commune]]\ncode='69091'\nname='B'\nprefix='B'\n";
        assert!(Tenants::from_toml(dup)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let bad = "[[commune]]\ncode='6909'\nname='A'\nprefix='A'\n";
        assert!(Tenants::from_toml(bad)
            .unwrap_err()
            .to_string()
            .contains("INSEE"));
    }
}
