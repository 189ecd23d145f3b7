//! The organisation of the accueil: when each commune opens its counter and answers the
//! phone, and the days it is closed (what agents tell people, what marks a call or a
//! walk-in « hors des horaires d'ouverture »).

use crate::auth::Scope;
use crate::{App, Result};

/// A commune's opening hours as agents read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    /// A day per line: « lundi : 08:30–12:00, 13:30–17:30 », « dimanche : fermé ».
    pub counter: Vec<String>,
    pub phone: Vec<String>,
    /// The days closed in the coming weeks: (« 25/12/2026 », « jour férié (Noël) »).
    pub closed: Vec<(String, String)>,
}

/// How far ahead closed days are listed.
const AHEAD_DAYS: u32 = 62;

impl App {
    /// The opening hours of the scope's commune and its closed days from today on (`None`
    /// when the communes file says none). For every agent and élu of the commune.
    pub fn opening_hours(&self, scope: &Scope) -> Result<Option<OpeningHours>> {
        let tenant = self.enter_figures(scope, scope.commune())?;
        let Some(schedule) = &tenant.schedule else {
            return Ok(None);
        };
        let today = contacthub_core::courrier::paris((self.clock)()).date();
        Ok(Some(OpeningHours {
            counter: schedule.describe(contacthub_core::hours::Opening::Counter),
            phone: schedule.describe(contacthub_core::hours::Opening::Phone),
            closed: schedule
                .closed_days(today, AHEAD_DAYS)
                .into_iter()
                .map(|(d, why)| (d.format("%d/%m/%Y").to_string(), why))
                .collect(),
        }))
    }
}
