//! The citizens' space's accounts, pure: the « identité pivot » an identity provider
//! (FranceConnect) gives, and whether it is exactly a citizen record's. Only an exact match
//! with one record links an account by itself; anything less is a proposal for an agent.

use crate::identity::fold_name;
use crate::pb;

/// The identity provider of the citizens' space.
pub const FRANCECONNECT: &str = "franceconnect";

/// The longest value taken from a claim.
pub const CLAIM_CHARS: usize = 128;

/// A person as FranceConnect's « identité pivot » says (its claims `given_name`,
/// `family_name`, `birthdate`, `birthplace`, `birthcountry`, `gender`), with their usage
/// name (`preferred_username`) and e-mail address when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pivot {
    /// Every given name, space-separated, as the état civil writes them.
    pub given_names: String,
    /// The birth name (nom de naissance).
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The INSEE code of the birth commune (empty when born abroad).
    pub birth_place: String,
    /// The INSEE code of the birth country (`99100`: France).
    pub birth_country: String,
    /// `male` or `female`.
    pub gender: String,
    pub usage_name: String,
    pub email: String,
}

impl Pivot {
    /// What is wrong with it, in French: the names and the birth date are needed.
    pub fn check(&self) -> Result<(), String> {
        for (what, v) in [
            ("les prénoms", &self.given_names),
            ("le nom de naissance", &self.family_name),
            ("la date de naissance", &self.birth_date),
        ] {
            if v.trim().is_empty() {
                return Err(format!("le fournisseur d'identité n'a pas donné {what}"));
            }
        }
        if chrono::NaiveDate::parse_from_str(&self.birth_date, "%Y-%m-%d").is_err() {
            return Err("la date de naissance donnée n'est pas une date (AAAA-MM-JJ)".into());
        }
        let all = [
            &self.given_names,
            &self.family_name,
            &self.birth_place,
            &self.birth_country,
            &self.gender,
            &self.usage_name,
            &self.email,
        ];
        if all
            .iter()
            .any(|v| v.chars().count() > CLAIM_CHARS || v.chars().any(char::is_control))
        {
            return Err(format!(
                "une donnée d'identité dépasse {CLAIM_CHARS} caractères ou est illisible"
            ));
        }
        Ok(())
    }

    /// The identity as an event carries it (`personal.identity`, `personal.fields`).
    pub fn personal(&self) -> pb::Personal {
        let field = |name: &str, value: &str| pb::Field {
            name: name.into(),
            value: value.into(),
        };
        let mut fields = Vec::new();
        if !self.birth_place.is_empty() {
            fields.push(field("Lieu de naissance (code INSEE)", &self.birth_place));
        }
        if !self.birth_country.is_empty() {
            fields.push(field("Pays de naissance (code INSEE)", &self.birth_country));
        }
        match self.gender.as_str() {
            "female" => fields.push(field("Sexe", "Femme")),
            "male" => fields.push(field("Sexe", "Homme")),
            _ => {}
        }
        pb::Personal {
            identity: Some(pb::Identity {
                usage_name: self.usage_name.clone(),
                birth_name: self.family_name.clone(),
                first_names: self.given_names.clone(),
                birth_date: self.birth_date.clone(),
                emails: (!self.email.is_empty())
                    .then(|| self.email.clone())
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            fields,
            ..Default::default()
        }
    }

    /// The words to look records up by: the names.
    pub fn search_text(&self) -> String {
        format!("{} {}", self.family_name, self.given_names)
    }
}

/// Whether `record` is exactly the person: the same birth date, the same given names (all
/// of them, accents, case and hyphens aside), and the same birth name — or, on a record that
/// holds no birth name, the same usage name. The record's fields found equal, or `None`.
pub fn exact(pivot: &Pivot, record: &pb::Identity) -> Option<Vec<&'static str>> {
    if record.birth_date.is_empty() || record.birth_date != pivot.birth_date {
        return None;
    }
    let given = fold_name(&pivot.given_names);
    if given.is_empty() || fold_name(&record.first_names) != given {
        return None;
    }
    let family = fold_name(&pivot.family_name);
    let (field, name) = if record.birth_name.trim().is_empty() {
        ("usage_name", &record.usage_name)
    } else {
        ("birth_name", &record.birth_name)
    };
    (!family.is_empty() && fold_name(name) == family)
        .then(|| vec![field, "first_names", "birth_date"])
}

/// Whether `record` looks like the person without being exactly them: the same birth date
/// and one name in common, or both names and no birth date on the record. A hint for the
/// agent, never a link.
pub fn resembles(pivot: &Pivot, record: &pb::Identity) -> bool {
    let family = fold_name(&pivot.family_name);
    let first = fold_name(&pivot.given_names);
    let first = first.split(' ').next().unwrap_or_default();
    let names = [&record.birth_name, &record.usage_name];
    let same_family = names
        .iter()
        .any(|n| !n.is_empty() && fold_name(n) == family);
    let same_first = fold_name(&record.first_names)
        .split(' ')
        .any(|w| !w.is_empty() && w == first);
    if record.birth_date == pivot.birth_date {
        same_family || same_first
    } else {
        record.birth_date.is_empty() && same_family && same_first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pivot() -> Pivot {
        Pivot {
            given_names: "Marie Louise".into(),
            family_name: "Martin".into(),
            birth_date: "1980-06-15".into(),
            birth_place: "69091".into(),
            birth_country: "99100".into(),
            gender: "female".into(),
            ..Default::default()
        }
    }

    fn record(usage: &str, birth: &str, first: &str, date: &str) -> pb::Identity {
        pb::Identity {
            usage_name: usage.into(),
            birth_name: birth.into(),
            first_names: first.into(),
            birth_date: date.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_same_names_and_birth_date_match_exactly() {
        let p = pivot();
        assert_eq!(
            exact(
                &p,
                &record("Dupont", "MARTIN", "marie-louise", "1980-06-15")
            ),
            Some(vec!["birth_name", "first_names", "birth_date"])
        );
        // No birth name on the record: its usage name stands for it.
        assert_eq!(
            exact(&p, &record("Martin", "", "Marie Louise", "1980-06-15")),
            Some(vec!["usage_name", "first_names", "birth_date"])
        );
        // One given name of two, another birth date, another birth name, no birth date:
        // not exact.
        assert_eq!(
            exact(&p, &record("Martin", "", "Marie", "1980-06-15")),
            None
        );
        assert_eq!(
            exact(&p, &record("Martin", "", "Marie Louise", "1980-06-16")),
            None
        );
        assert_eq!(
            exact(
                &p,
                &record("Martin", "Durand", "Marie Louise", "1980-06-15")
            ),
            None
        );
        assert_eq!(exact(&p, &record("Martin", "", "Marie Louise", "")), None);
        // …but they resemble.
        assert!(resembles(&p, &record("Martin", "", "Marie", "1980-06-15")));
        assert!(resembles(&p, &record("Martin", "", "Marie Louise", "")));
        assert!(!resembles(&p, &record("Durand", "", "Paul", "1980-06-15")));
        assert!(!resembles(&p, &record("Martin", "", "Marie", "1981-01-01")));
    }

    #[test]
    fn an_identity_without_names_or_date_is_refused() {
        let mut p = pivot();
        assert!(p.check().is_ok());
        p.birth_date = "15/06/1980".into();
        assert!(p.check().unwrap_err().contains("AAAA-MM-JJ"));
        p = pivot();
        p.family_name = " ".into();
        assert!(p.check().unwrap_err().contains("nom de naissance"));
        p = pivot();
        p.given_names = "x".repeat(CLAIM_CHARS + 1);
        assert!(p.check().unwrap_err().contains("dépasse"));
        let personal = pivot().personal();
        assert_eq!(personal.fields.len(), 3);
        assert_eq!(personal.fields[2].value, "Femme");
    }
}
