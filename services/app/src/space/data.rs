//! « Mes données »: the person downloads everything the commune holds about them (the same
//! access export as the data protection officer's), and asks for its erasure — a request to
//! the data protection officer's office, never an erasure by itself.

use super::Citizen;
use crate::commands::WriteToTownHall;
use crate::export::Export;
use crate::{App, Error, Result};
use contacthub_core::limits;
use contacthub_core::pb::Category;

/// The service that receives the requests about one's data.
const DPO_SERVICE: &str = "dpo";

impl App {
    /// Everything the commune holds about the signed-in person (the access export).
    pub async fn my_data(&self, c: &Citizen) -> Result<Export> {
        let me = self.own_record(c)?;
        self.assemble_export(c.tenant(), &me).await
    }

    /// Asks the data protection officer to erase the person's data; the request's reference.
    pub async fn ask_erasure(&self, c: &Citizen, note: &str, key: &str) -> Result<String> {
        let note = note.trim();
        if note.chars().count() > limits::NOTE_CHARS {
            return Err(Error::Invalid(format!(
                "le message dépasse {} caractères",
                limits::NOTE_CHARS
            )));
        }
        let mut text =
            "Je demande l'effacement des données me concernant (article 17 du RGPD).".to_string();
        if !note.is_empty() {
            text.push_str("\n\n");
            text.push_str(note);
        }
        self.write_from_space(
            c,
            &WriteToTownHall {
                reference: String::new(),
                category: Category::Other,
                subject: "Demande d'effacement de mes données".into(),
                text,
                attachments: Vec::new(),
                idempotency_key: if key.is_empty() {
                    String::new()
                } else {
                    format!("effacement/{key}")
                },
            },
            Some(DPO_SERVICE),
        )
        .await
    }
}
