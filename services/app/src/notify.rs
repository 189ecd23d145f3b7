//! Short notices to a person, outside any request: the citizens' space's one-time codes. Sent
//! at once through the commune's outbound providers (its SMTP relay, its SMS gateway) by
//! whatever the process that sends the written answers installs ([`App::set_notifier`]); a
//! hub without it says so instead of pretending.

use crate::App;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Where a notice goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An e-mail address, normalised.
    Email(String),
    /// A phone number, E.164.
    Sms(String),
}

/// Sends a notice now, or says why not (French, for the logs and the person).
pub trait Notify: Send + Sync {
    fn send<'a>(
        &'a self,
        tenant: &'a str,
        to: &'a Destination,
        subject: &'a str,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

impl App {
    /// Installs what sends notices (the sender of written answers does, at its start).
    pub fn set_notifier(&self, notifier: Arc<dyn Notify>) {
        *self.notifier.write().unwrap_or_else(|p| p.into_inner()) = Some(notifier);
    }

    /// What sends notices, when this hub has one.
    pub(crate) fn notifier(&self) -> Option<Arc<dyn Notify>> {
        self.notifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
