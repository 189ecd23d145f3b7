//! Publishing what adapters parse: documents to the content store (fetching those given by
//! URL), contacts already projected skipped as duplicates, the rest appended to the log in
//! one batch and awaited until visible; rejected input to the quarantine. Every source
//! (HTTP endpoints, drop folders, Maildirs) goes through [`Ingest::run`].

use crate::config::AdaptersConfig;
use crate::metrics::{Metrics, Outcome};
use crate::quarantine::Quarantine;
use crate::{Adapter, BlobSource, Contact, Error, Input, Item, Rejected};
use contacthub_api::Hub;
use contacthub_core::event;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// What became of an input, as answered to HTTP callers and the CLI.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub accepted: usize,
    pub duplicates: usize,
    pub ignored: usize,
    pub quarantined: Vec<Quarantined>,
    /// Ids of the accepted and duplicate events, in input order.
    pub event_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Quarantined {
    pub locator: String,
    pub reason: String,
    pub quarantine_id: String,
}

/// The publishing edge shared by every source.
#[derive(Clone)]
pub struct Ingest {
    pub hub: Hub,
    pub quarantine: Quarantine,
    pub metrics: Arc<Metrics>,
    pub cfg: Arc<AdaptersConfig>,
    /// Largest document (attachment) kept, in bytes.
    pub max_document_bytes: u64,
    http: reqwest::Client,
}

impl Ingest {
    pub fn new(
        hub: Hub,
        quarantine: Quarantine,
        cfg: Arc<AdaptersConfig>,
        max_document_bytes: u64,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .expect("an HTTP client without custom TLS roots builds");
        Ingest {
            hub,
            quarantine,
            metrics: Arc::new(Metrics::default()),
            cfg,
            max_document_bytes,
            http,
        }
    }

    /// Parses `input` with `adapter` and publishes the result. Fails only when the log or
    /// the quarantine cannot be written: then nothing of the input is acknowledged, and the
    /// source keeps it to try again (re-reading is harmless: ids are deterministic).
    pub async fn run(&self, adapter: &dyn Adapter, input: Input<'_>) -> Result<Summary, Error> {
        let mut all = self.run_batch(adapter, &[input]).await?;
        Ok(all.remove(0))
    }

    /// [`Ingest::run`] for several inputs at once (files of a folder): one append and one
    /// wait for visibility for all of them. One summary per input, in order.
    pub async fn run_batch(
        &self,
        adapter: &dyn Adapter,
        inputs: &[Input<'_>],
    ) -> Result<Vec<Summary>, Error> {
        let name = adapter.name();
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        let mut summaries = Vec::with_capacity(inputs.len());
        for input in inputs {
            let summary = self
                .parse_one(adapter, input, &mut seen, &mut records)
                .await?;
            summaries.push(summary);
        }
        self.append(name, records).await?;
        for (input, summary) in inputs.iter().zip(&summaries) {
            tracing::info!(
                adapter = name,
                origin = input.origin,
                accepted = summary.accepted,
                duplicates = summary.duplicates,
                ignored = summary.ignored,
                quarantined = summary.quarantined.len(),
                "input ingested"
            );
        }
        Ok(summaries)
    }

    /// Parses one input: documents stored, rejections quarantined, records to append added to
    /// `records`.
    async fn parse_one(
        &self,
        adapter: &dyn Adapter,
        input: &Input<'_>,
        seen: &mut HashSet<String>,
        records: &mut Vec<contacthub_log::Record>,
    ) -> Result<Summary, Error> {
        let name = adapter.name();
        let items = adapter.parse(input);
        let mut summary = Summary::default();
        for item in items {
            match item {
                Item::Ignored { locator, why } => {
                    tracing::debug!(adapter = name, origin = input.origin, %locator, %why, "not a contact");
                    summary.ignored += 1;
                    self.metrics.add(name, input.tenant, Outcome::Ignored, 1);
                }
                Item::Rejected(r) => self.reject(name, input, r, &mut summary)?,
                Item::Contact(c) => {
                    let Contact {
                        mut event,
                        blobs,
                        locator,
                        raw,
                    } = *c;
                    let known = seen.contains(&event.event_id)
                        || self
                            .hub
                            .store
                            .applied_entry(&event.tenant, &event.event_id)
                            .map_err(|e| Error::Store(e.to_string()))?
                            .is_some();
                    if known {
                        summary.duplicates += 1;
                        summary.event_ids.push(event.event_id.clone());
                        self.metrics
                            .add(name, Some(&event.tenant), Outcome::Duplicate, 1);
                        continue;
                    }
                    let mut failed = None;
                    for (i, blob) in blobs.iter().enumerate() {
                        let bytes = match &blob.source {
                            BlobSource::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b.as_slice())),
                            BlobSource::Url(url) => self
                                .fetch(&event.tenant, url)
                                .await
                                .map(std::borrow::Cow::Owned),
                        };
                        let stored = bytes.and_then(|b| {
                            self.hub
                                .content
                                .put_document(&b, &blob.media_type, self.max_document_bytes)
                                .map_err(|e| e.to_string())
                        });
                        match stored {
                            Ok(a) => {
                                event.attachments.push(a);
                                if let Some(p) = event.personal.as_mut() {
                                    p.attachment_names.push(blob.name.clone());
                                }
                            }
                            Err(e) => {
                                failed = Some(format!(
                                    "document {} ({:?}) {e}",
                                    i + 1,
                                    crate::clip(&blob.name, 60)
                                ));
                                break;
                            }
                        }
                    }
                    if let Some(reason) = failed {
                        let tenant = Some(event.tenant.clone());
                        self.reject(
                            name,
                            input,
                            Rejected {
                                locator,
                                reason,
                                tenant,
                                raw,
                            },
                            &mut summary,
                        )?;
                        continue;
                    }
                    seen.insert(event.event_id.clone());
                    summary.accepted += 1;
                    summary.event_ids.push(event.event_id.clone());
                    records.push(contacthub_log::Record {
                        key: event.tenant.as_bytes().to_vec(),
                        value: event::encode(&event),
                        headers: event::headers(&event),
                        timestamp_ms: input.received_us / 1000,
                    });
                }
            }
        }
        Ok(summary)
    }

    /// Appends `records` in one batch and waits until the projector made them visible.
    async fn append(
        &self,
        name: &'static str,
        records: Vec<contacthub_log::Record>,
    ) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        // Counted once the log took them, not before.
        let tenants: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.key).into_owned())
            .collect();
        let placed = self
            .hub
            .log
            .append(records)
            .await
            .map_err(|e| Error::Log(e.to_string()))?;
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for p in placed {
            let o = last.entry(p.partition).or_default();
            *o = (*o).max(p.offset);
        }
        for tenant in &tenants {
            self.metrics.add(name, Some(tenant), Outcome::Accepted, 1);
        }
        for (partition, offset) in last {
            if !self
                .hub
                .projector
                .wait_applied(partition, offset, self.hub.visibility_timeout)
                .await
            {
                tracing::warn!(
                    adapter = name,
                    partition,
                    offset,
                    "accepted but not yet visible"
                );
            }
        }
        Ok(())
    }

    fn reject(
        &self,
        adapter: &'static str,
        input: &Input<'_>,
        r: Rejected,
        summary: &mut Summary,
    ) -> Result<(), Error> {
        let (entry, _) = self
            .quarantine
            .put(adapter, input.origin, &r, input.received_us)?;
        // The reason may quote personal data: it is in the quarantine, not in the log.
        tracing::warn!(adapter, origin = input.origin, locator = %r.locator, quarantine_id = %entry.id, "input quarantined");
        self.metrics
            .add(adapter, r.tenant.as_deref(), Outcome::Quarantined, 1);
        summary.quarantined.push(Quarantined {
            locator: r.locator,
            reason: r.reason,
            quarantine_id: entry.id,
        });
        Ok(())
    }

    /// Fetches a document given by URL (web-form and MMS attachments), within the size
    /// limit and, when the commune lists them, only from its allowed hosts.
    async fn fetch(&self, tenant: &str, url: &str) -> Result<Vec<u8>, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("has a bad URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("is not at an http(s) URL".into());
        }
        let allowed = self
            .cfg
            .commune(tenant)
            .map(|c| c.attachment_hosts.as_slice())
            .unwrap_or_default();
        let host = parsed.host_str().unwrap_or("");
        if !allowed.is_empty() && !allowed.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(format!(
                "is on host {host:?}, not one of the commune's attachment_hosts"
            ));
        }
        let mut resp = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| format!("could not be fetched: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("could not be fetched: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("could not be fetched: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > self.max_document_bytes {
                return Err(format!(
                    "is larger than the limit of {} bytes",
                    self.max_document_bytes
                ));
            }
        }
        Ok(body)
    }
}
