//! Shared set-up of the fuzz targets: the four channel adapters built once over the shipped
//! communes, and a helper that feeds one input to a parser as every kind of source would.

use contacthub_adapters::config::AdaptersConfig;
use contacthub_adapters::{Adapter, Channels, Input};
use contacthub_core::tenant::Tenants;
use std::sync::{Arc, OnceLock};

/// The adapters, configured like a real commune (accueil extension, mailboxes, forms).
pub fn channels() -> &'static Channels {
    static CHANNELS: OnceLock<Channels> = OnceLock::new();
    CHANNELS.get_or_init(|| {
        let tenants = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml(
            "[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"9\"]\n\
             addresses = [\"mairie@ville-givors.fr\", \"@givors.fr\"]\n\
             [commune.forms]\n\"permis-de-louer\" = \"urbanisme\"\n\
             [[commune.demarches_simplifiees]]\ndemarche = 4321\ntoken = \"t\"\ncategory = \"urbanisme\"\n",
            &tenants,
        )
        .expect("the fuzzing configuration is valid");
        Channels::new(Arc::new(cfg), tenants)
    })
}

/// Parses `data` as sent for a commune and as sent without one.
pub fn parse_all(adapter: &dyn Adapter, data: &[u8]) {
    for tenant in [None, Some("69091")] {
        let _ = adapter.parse(&Input {
            bytes: data,
            origin: "fuzz",
            tenant,
            received_us: 1_800_000_000_000_000,
        });
    }
}
