//! démarches-simplifiées, the IO: a dossier fetched from the platform's GraphQL API when its
//! webhook names it, and the dossiers changed since a cursor fetched page by page for the
//! démarches that poll — each through [`Ingest`], so what was read once is one event however
//! often it is read again (a webhook posted twice, a poll overlapping a webhook, a restart).
//! The cursor (the last change seen) is a file of its own under DATA/connectors, replaced
//! whole after each page: a restart goes on from it.

use crate::config::{AdaptersConfig, DemarcheSettings};
use crate::demarches::{self, ApiError, Demarches, SOURCE};
use crate::ingest::{Ingest, Summary};
use crate::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The time a démarche never polled before is asked for changes since: all of them.
const FROM_THE_START: &str = "2000-01-01T00:00:00Z";

/// Tries of one query when the platform fails, and the pause before each new one.
const BACKOFF: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(1500)];

/// The HTTP client of the API (one per hub).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Sends `query` with the démarche's token and reads the answer with `read`, trying again
/// twice when the platform fails (never when it refuses the token).
async fn ask<T>(
    http: &reqwest::Client,
    settings: &DemarcheSettings,
    query: &serde_json::Value,
    read: fn(u16, &[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut pauses = BACKOFF.iter();
    loop {
        let answer = match http
            .post(&settings.api_url)
            .bearer_auth(settings.token.trim())
            .json(query)
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(body) => read(status, &body),
                    Err(e) => Err(ApiError::Unavailable(format!("reading the answer: {e}"))),
                }
            }
            Err(e) => Err(ApiError::Unavailable(format!("no answer: {e}"))),
        };
        match (answer, pauses.next()) {
            (Err(ApiError::Unavailable(why)), Some(pause)) => {
                tracing::debug!(%why, "démarches-simplifiées failed: trying again");
                tokio::time::sleep(*pause).await;
            }
            (answer, _) => return answer,
        }
    }
}

/// Tells the hub's connector health that démarche `settings` of `tenant` failed: the error.
fn failed(ingest: &Ingest, tenant: &str, e: ApiError) -> Error {
    let (why, error) = match e {
        ApiError::Token(detail) => (
            "jeton d'API refusé par démarches-simplifiées (expiré ?)",
            Error::Refused {
                system: "démarches-simplifiées",
                detail,
            },
        ),
        ApiError::Unavailable(detail) => (
            "démarches-simplifiées injoignable ou en erreur",
            Error::Unavailable {
                system: "démarches-simplifiées",
                detail,
            },
        ),
    };
    tracing::warn!(tenant, error = %error, "démarches-simplifiées");
    ingest.connector(SOURCE, tenant, Some(why));
    error
}

/// Fetches dossier `number` of démarche `settings` and takes it in: its champs, states and
/// messages become contacts on its request. A dossier the platform no longer has (deleted
/// since the webhook) is counted as ignored.
pub async fn follow(
    ingest: &Ingest,
    adapter: &Demarches,
    http: &reqwest::Client,
    tenant: &str,
    settings: &DemarcheSettings,
    number: u64,
) -> Result<Summary, Error> {
    let query = demarches::dossier_query(number);
    let dossier = match ask(http, settings, &query, demarches::dossier_answer).await {
        Ok(d) => d,
        Err(e) => return Err(failed(ingest, tenant, e)),
    };
    // The token may see other démarches: a dossier of another one is not this démarche's.
    let dossier = dossier.filter(|d| {
        d.pointer("/demarche/number").and_then(|n| n.as_u64()) == Some(u64::from(settings.demarche))
    });
    let Some(dossier) = dossier else {
        tracing::info!(
            tenant,
            demarche = settings.demarche,
            "a dossier no longer on démarches-simplifiées"
        );
        ingest.connector(SOURCE, tenant, None);
        return Ok(Summary {
            ignored: 1,
            ..Default::default()
        });
    };
    take(ingest, adapter, tenant, settings, &dossier).await
}

async fn take(
    ingest: &Ingest,
    adapter: &Demarches,
    tenant: &str,
    settings: &DemarcheSettings,
    dossier: &serde_json::Value,
) -> Result<Summary, Error> {
    let bytes = serde_json::to_vec(dossier).unwrap_or_default();
    let number = dossier.get("number").and_then(|n| n.as_u64()).unwrap_or(0);
    let origin = format!("démarche {} dossier {number}", settings.demarche);
    ingest.run_read(adapter, &bytes, &origin, tenant).await
}

/// Where démarche `demarche` of `tenant` keeps its cursor.
pub fn cursor_path(dir: &Path, tenant: &str, demarche: u32) -> PathBuf {
    dir.join(format!("{SOURCE}-{tenant}-{demarche}.cursor"))
}

fn read_cursor(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    (!t.is_empty() && t.len() < 64).then(|| t.to_string())
}

/// Takes every dossier of the démarche changed since its cursor, page by page, the cursor
/// moved after each page. How many dossiers were read.
pub async fn sync(
    ingest: &Ingest,
    adapter: &Demarches,
    http: &reqwest::Client,
    tenant: &str,
    settings: &DemarcheSettings,
    cursor: &Path,
) -> Result<usize, Error> {
    // A page's cursor goes with the query it came from: every page is asked since the same
    // time, the file moving ahead as pages are taken. Always with a time: without one the
    // platform orders by creation, and a cursor moved after the first page would skip the
    // later pages' older changes.
    let since = read_cursor(cursor).unwrap_or_else(|| FROM_THE_START.to_string());
    let mut after: Option<String> = None;
    let mut read = 0;
    loop {
        let query = demarches::dossiers_query(settings.demarche, Some(&since), after.as_deref());
        let page = match ask(http, settings, &query, demarches::page_answer).await {
            Ok(p) => p,
            Err(e) => return Err(failed(ingest, tenant, e)),
        };
        let mut latest = read_cursor(cursor).unwrap_or_else(|| since.clone());
        for d in &page.dossiers {
            take(ingest, adapter, tenant, settings, d).await?;
            read += 1;
            if let Some(t) = demarches::last_change(d) {
                let newer = crate::publik::time_us(t)
                    .is_some_and(|t_us| crate::publik::time_us(&latest).is_none_or(|l| t_us > l));
                if newer {
                    latest = t.to_string();
                }
            }
        }
        if latest != since && read_cursor(cursor).as_deref() != Some(latest.as_str()) {
            crate::write_state(cursor, &latest)?;
        }
        match page.next {
            // A platform repeating its page cursor would have the hub ask for ever.
            Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
            _ => break,
        }
    }
    if read == 0 {
        ingest.connector(SOURCE, tenant, None);
    }
    Ok(read)
}

/// Polls every démarche that asks for it (`poll_seconds`) until `stop`.
pub async fn run(
    ingest: Ingest,
    adapter: Demarches,
    cfg: Arc<AdaptersConfig>,
    dir: PathBuf,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = client();
    let mut tasks = Vec::new();
    for c in &cfg.communes {
        for d in &c.demarches_simplifiees {
            let Some(every) = d.poll_seconds else {
                continue;
            };
            let (ingest, adapter, http, tenant, settings) = (
                ingest.clone(),
                adapter.clone(),
                http.clone(),
                c.code.clone(),
                d.clone(),
            );
            let cursor = cursor_path(&dir, &tenant, d.demarche);
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = sync(&ingest, &adapter, &http, &tenant, &settings, &cursor).await {
                        tracing::warn!(tenant, demarche = settings.demarche, error = %e, "polling démarches-simplifiées");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(u64::from(every))) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}
