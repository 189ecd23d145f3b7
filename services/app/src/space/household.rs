//! « Mon foyer »: whose data a signed-in person sees — their own, and that of the minors of
//! their household of whom they are a parent or tutor ([`Circle`]) —, their household as the
//! town hall's records say, and asking to add someone to it: a request for the accueil with
//! the documents asked for, never applied by the person alone.

use super::Citizen;
use crate::commands::{AskHouseholdChange, WriteToTownHall};
use crate::{App, Error, Result};
use contacthub_core::identity::fold_name;
use contacthub_core::limits;
use contacthub_core::pb::Category;
use std::collections::BTreeMap;

/// Roles in a household that make a person see a minor's requests.
const GUARDIANS: [&str; 2] = ["parent", "tuteur"];
/// The role of a child in a household.
const CHILD: &str = "enfant";
/// What a person may ask to add to their household.
pub const ADDABLE: [&str; 2] = ["enfant", "conjoint"];

/// The records whose requests a person sees: theirs (and those merged into it), and each
/// minor child of a household where they are a parent or tutor, with the child's first name.
#[derive(Debug, Clone, Default)]
pub struct Circle {
    /// The person's own record.
    pub me: String,
    /// Every record id of the circle, merged ones included, and whose it is: empty for the
    /// person, the child's first names otherwise.
    pub ids: BTreeMap<String, String>,
}

impl Circle {
    /// Whether one of `requesters` is in the circle; for whom (empty: the person).
    pub fn whose<'a>(&'a self, requesters: &[String]) -> Option<&'a str> {
        let mut found = None;
        for r in requesters {
            match self.ids.get(r) {
                Some(name) if name.is_empty() => return Some(""),
                Some(name) => found = found.or(Some(name.as_str())),
                None => {}
            }
        }
        found
    }
}

/// A member of the person's household, as their space shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Their role in the household, as the town hall recorded it.
    pub relation: String,
    /// The signed-in person.
    pub is_me: bool,
    /// A minor whose requests the person sees.
    pub in_care: bool,
}

/// Whether a record born on `birth_date` (`YYYY-MM-DD`) is under 18 at `now_us`.
fn minor(birth_date: &str, now_us: i64) -> bool {
    let (Ok(born), Some(now)) = (
        chrono::NaiveDate::parse_from_str(birth_date, "%Y-%m-%d"),
        chrono::DateTime::from_timestamp_micros(now_us),
    ) else {
        return false;
    };
    born.checked_add_months(chrono::Months::new(18 * 12))
        .is_some_and(|adult| adult > now.date_naive())
}

impl App {
    /// The records whose requests `c` sees ([`Circle`]); refused until their account is linked.
    pub(crate) fn circle(&self, c: &Citizen) -> Result<Circle> {
        let me = self.own_record(c)?;
        let tenant = c.tenant();
        let mut ids: BTreeMap<String, String> = self
            .store
            .members(tenant, &me)?
            .into_iter()
            .map(|id| (id, String::new()))
            .collect();
        let record = self.store.citizen(tenant, &me)?.unwrap_or_default();
        let now = self.now();
        for h in &record.households {
            let members = self.store.household(tenant, h)?;
            let guardian = members
                .iter()
                .any(|(id, role)| ids.contains_key(id) && GUARDIANS.contains(&role.as_str()));
            if !guardian {
                continue;
            }
            for (id, role) in members {
                if role != CHILD {
                    continue;
                }
                let child = self.store.canonical(tenant, &id)?;
                let Some(r) = self.store.citizen(tenant, &child)? else {
                    continue;
                };
                let identity = r.identity.unwrap_or_default();
                if r.erased.is_some() || !minor(&identity.birth_date, now) {
                    continue;
                }
                let name = match identity.first_names.split_whitespace().next() {
                    Some(first) => first.to_string(),
                    None => r.display_name.clone(),
                };
                for m in self.store.members(tenant, &child)? {
                    ids.entry(m).or_insert_with(|| name.clone());
                }
            }
        }
        Ok(Circle { me, ids })
    }

    /// The person's household(s) as the town hall's records say: each member's name and role.
    pub fn my_household(&self, c: &Citizen) -> Result<Vec<Member>> {
        let circle = self.circle(c)?;
        let tenant = c.tenant();
        let record = self.store.citizen(tenant, &circle.me)?.unwrap_or_default();
        let mut out = Vec::new();
        for h in &record.households {
            for (id, relation) in self.store.household(tenant, h)? {
                let id = self.store.canonical(tenant, &id)?;
                let Some(r) = self.store.citizen(tenant, &id)? else {
                    continue;
                };
                if r.erased.is_some() || out.iter().any(|m: &(String, Member)| m.0 == id) {
                    continue;
                }
                let identity = r.identity.clone().unwrap_or_default();
                let name = format!("{} {}", identity.first_names, identity.usage_name);
                let name = match name.trim() {
                    "" => r.display_name.clone(),
                    n => n.to_string(),
                };
                out.push((
                    id.clone(),
                    Member {
                        name,
                        relation,
                        is_me: id == circle.me,
                        in_care: circle.ids.get(&id).is_some_and(|n| !n.is_empty()),
                    },
                ));
            }
        }
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    /// Asks the town hall to add someone to the person's household: a request for the accueil
    /// with what they said and the documents (livret de famille…); its reference.
    pub async fn ask_household_change(
        &self,
        c: &Citizen,
        a: &AskHouseholdChange,
    ) -> Result<String> {
        let first = a.first_names.trim();
        let name = a.name.trim();
        if first.is_empty() || name.is_empty() {
            return Err(Error::Invalid(
                "indiquez les prénoms et le nom de la personne".into(),
            ));
        }
        if first.chars().count() + name.chars().count() > limits::NAME_CHARS {
            return Err(Error::Invalid(format!(
                "les prénoms et le nom dépassent {} caractères",
                limits::NAME_CHARS
            )));
        }
        let relation = a.relation.trim();
        if !ADDABLE.contains(&relation) {
            return Err(Error::Invalid(
                "choisissez le lien avec vous : enfant ou conjoint".into(),
            ));
        }
        let born = chrono::NaiveDate::parse_from_str(a.birth_date.trim(), "%Y-%m-%d")
            .map_err(|_| Error::Invalid("indiquez la date de naissance".into()))?;
        if a.attachments.is_empty() {
            return Err(Error::Invalid(
                "joignez le livret de famille ou l'acte qui établit le lien".into(),
            ));
        }
        let mut text = format!(
            "Demande d'ajout au foyer.\nLien : {relation}\nPrénoms : {first}\nNom : {name}\nDate de naissance : {}",
            born.format("%d/%m/%Y")
        );
        if !a.note.trim().is_empty() {
            text.push_str("\n\n");
            text.push_str(a.note.trim());
        }
        let folded = fold_name(&format!("{first} {name}"));
        self.write_to_town_hall(
            c,
            &WriteToTownHall {
                reference: String::new(),
                category: Category::Other,
                subject: format!("Ajout au foyer : {first} {name} ({relation})")
                    .chars()
                    .take(limits::LABEL_CHARS)
                    .collect(),
                text,
                attachments: a.attachments.clone(),
                idempotency_key: if a.idempotency_key.is_empty() {
                    String::new()
                } else {
                    format!("foyer/{}/{folded}", a.idempotency_key)
                },
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_is_under_eighteen_on_the_day() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        assert!(minor("2008-12-05", now));
        assert!(!minor("2008-12-04", now));
        assert!(!minor("", now));
        assert!(!minor("04/12/2010", now));
    }
}
