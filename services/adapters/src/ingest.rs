//! Publishing what adapters parse: documents to the content store (fetching those given by
//! URL, never from the hub's own network unless a commune allows it), contacts already
//! projected skipped as duplicates (or refused as conflicts when the same source id comes
//! with other content), the rest appended to the log in one batch and awaited until visible;
//! refused records to the quarantine, one entry per input. Every source (HTTP endpoints,
//! drop folders, Maildirs) goes through [`Ingest::run`].

use crate::config::AdaptersConfig;
use crate::metrics::{Metrics, Outcome};
use crate::quarantine::Quarantine;
use crate::{Adapter, BlobSource, Contact, Error, Input, Item, Rejected};
use contacthub_app::auth::System;
use contacthub_app::write::Prior;
use contacthub_app::App;
use contacthub_core::event;
use contacthub_core::limits::quote;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Refused records listed in one summary, at most (all are in the quarantine entry).
const SUMMARY_REFUSALS: usize = 100;

/// What became of an input, as answered to HTTP callers and the CLI.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub accepted: usize,
    pub duplicates: usize,
    pub ignored: usize,
    /// Records whose source id was already received with other content (also quarantined).
    #[serde(default)]
    pub conflicts: usize,
    /// Refused records (the first 100 are listed in `quarantined`).
    #[serde(default)]
    pub refused: usize,
    /// Delivery reports that sent a written answer back to its request's worklist.
    #[serde(default)]
    pub bounces: usize,
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
    pub app: App,
    pub quarantine: Quarantine,
    pub metrics: Arc<Metrics>,
    pub cfg: Arc<AdaptersConfig>,
    /// Largest document (attachment) kept, in bytes.
    pub max_document_bytes: u64,
    /// The HTTP clients documents given by URL are fetched with (made once: a client loads
    /// the system's certificate authorities, tens of milliseconds).
    fetchers: Arc<Fetchers>,
}

/// The fetcher's two clients: one whose resolver refuses internal addresses, one for the
/// communes that allow their own network.
struct Fetchers {
    public: reqwest::Client,
    anywhere: reqwest::Client,
}

impl Fetchers {
    /// Direct connections only: through a proxy, the resolver would see the proxy's name and
    /// the proxy would reach whatever the URL names.
    fn new() -> Result<Fetchers, Error> {
        let client = |internal_ok: bool| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(20))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(Resolver { internal_ok }))
                .build()
                .map_err(|e| Error::Config(format!("the documents' HTTP client: {e}")))
        };
        Ok(Fetchers {
            public: client(false)?,
            anywhere: client(true)?,
        })
    }
}

/// Resolves a name (3 s at most) and, unless `internal_ok`, refuses it when any of its
/// addresses is internal: the addresses it gives are the ones connected to.
struct Resolver {
    internal_ok: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let internal_ok = self.internal_ok;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::lookup_host((host.as_str(), 0)),
            )
            .await
            .map_err(|_| format!("resolving {:?} timed out", quote(&host)))?
            .map_err(|e| format!("cannot resolve {:?}: {e}", quote(&host)))?
            .collect();
            if addrs.is_empty() {
                return Err(format!("{:?} has no address", quote(&host)).into());
            }
            if !internal_ok {
                if let Some(bad) = addrs.iter().find(|a| internal_address(a.ip())) {
                    return Err(format!(
                        "{:?} is an internal address ({}): not fetched",
                        quote(&host),
                        bad.ip()
                    )
                    .into());
                }
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// An error and its causes, one after the other (the resolver's refusal is a cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl Ingest {
    pub fn new(
        app: App,
        quarantine: Quarantine,
        cfg: Arc<AdaptersConfig>,
        max_document_bytes: u64,
    ) -> Result<Self, Error> {
        Ok(Ingest {
            app,
            quarantine,
            metrics: Arc::new(Metrics::default()),
            cfg,
            max_document_bytes,
            fetchers: Arc::new(Fetchers::new()?),
        })
    }

    /// Parses `input` with `adapter` and publishes the result. Fails only when the log or
    /// the quarantine cannot be written: then nothing of the input is acknowledged, and the
    /// source keeps it to try again (re-reading is harmless: ids are deterministic).
    pub async fn run(&self, adapter: &dyn Adapter, input: Input<'_>) -> Result<Summary, Error> {
        let mut all = self.run_batch(adapter, &[input]).await?;
        Ok(all.remove(0))
    }

    /// [`Ingest::run`] for what a connector read itself from `tenant`'s system, received now.
    pub(crate) async fn run_read(
        &self,
        adapter: &dyn Adapter,
        bytes: &[u8],
        origin: &str,
        tenant: &str,
    ) -> Result<Summary, Error> {
        let input = Input {
            bytes,
            origin,
            tenant: Some(tenant),
            received_us: self.app.now(),
        };
        self.run(adapter, input).await
    }

    /// Tells the hub how connector `name` fared with `input`.
    fn report(&self, name: &str, input: &Input<'_>, counts: (u64, u64), why: Option<&str>) {
        let tenant = input.tenant.unwrap_or_default();
        if let Err(e) = self
            .app
            .connector_result(System::Adapters, (name, tenant), counts, why)
        {
            tracing::warn!(error = %e, "connector health not recorded");
        }
    }

    /// Tells the hub's connector health how connector `name` of `tenant` fared when nothing
    /// was read (`why`: what failed, in words for ops).
    pub(crate) fn connector(&self, name: &str, tenant: &str, why: Option<&str>) {
        if let Err(e) = self
            .app
            .connector_result(System::Adapters, (name, tenant), (0, 0), why)
        {
            tracing::warn!(error = %e, "connector health not recorded");
        }
    }

    /// [`Ingest::run`] for several inputs at once (files of a folder): one append and one
    /// wait for visibility for all of them. One summary per input, in order.
    pub async fn run_batch(
        &self,
        adapter: &dyn Adapter,
        inputs: &[Input<'_>],
    ) -> Result<Vec<Summary>, Error> {
        let name = adapter.name();
        let mut events = Vec::new();
        let mut seen = HashMap::new();
        let mut summaries = Vec::with_capacity(inputs.len());
        for input in inputs {
            let summary = self
                .parse_one(adapter, input, &mut seen, &mut events)
                .await?;
            summaries.push(summary);
        }
        if let Err(e) = self.append(name, &events).await {
            for input in inputs {
                self.report(
                    name,
                    input,
                    (0, 0),
                    Some("not recorded: the log did not take it"),
                );
            }
            return Err(e);
        }
        for (input, summary) in inputs.iter().zip(&summaries) {
            let taken = (summary.accepted + summary.duplicates) as u64;
            let refused = summary.quarantined.len() as u64;
            // The caller is told the reason; the connector's health keeps its first words
            // (the rest may quote the input).
            let why = (taken == 0 && refused > 0).then(|| {
                summary.quarantined[0]
                    .reason
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
            self.report(name, input, (taken, refused), why.as_deref());
            // Origins are file names, which may carry a name: only at debug level.
            tracing::debug!(adapter = name, origin = input.origin, "input read");
            tracing::info!(
                adapter = name,
                tenant = input.tenant.unwrap_or(""),
                accepted = summary.accepted,
                duplicates = summary.duplicates,
                ignored = summary.ignored,
                conflicts = summary.conflicts,
                refused = summary.refused,
                "input ingested"
            );
        }
        Ok(summaries)
    }

    /// Parses one input: documents stored, refused records quarantined (one entry for the
    /// input), records to append added to `records`. `seen` maps the event ids of this batch
    /// to their fingerprints.
    async fn parse_one(
        &self,
        adapter: &dyn Adapter,
        input: &Input<'_>,
        seen: &mut HashMap<String, Vec<u8>>,
        events: &mut Vec<contacthub_core::pb::Event>,
    ) -> Result<Summary, Error> {
        let name = adapter.name();
        let items = adapter.parse(input);
        let mut summary = Summary::default();
        let mut refused: Vec<Rejected> = Vec::new();
        for item in items {
            match item {
                Item::Ignored { locator, why } => {
                    tracing::debug!(adapter = name, %locator, %why, "not a contact");
                    summary.ignored += 1;
                    self.metrics.add(name, input.tenant, Outcome::Ignored, 1);
                }
                Item::Rejected(r) => refused.push(r),
                Item::Bounce {
                    tenant,
                    message_id,
                    reason,
                } => match self
                    .app
                    .answer_bounced(System::Adapters, &tenant, &message_id, &reason)
                    .await
                {
                    Ok(Some(_)) => summary.bounces += 1,
                    Ok(None) => {
                        tracing::debug!(
                            adapter = name,
                            "delivery report of a message the hub did not send"
                        );
                        summary.ignored += 1;
                        self.metrics.add(name, input.tenant, Outcome::Ignored, 1);
                    }
                    Err(e) => return Err(Error::Log(e.to_string())),
                },
                Item::Contact(c) => {
                    let Contact {
                        mut event,
                        blobs,
                        locator,
                        raw,
                    } = *c;
                    // The write path's rule, for a batch: ids seen earlier in it, then the log.
                    let prior = match seen.get(&event.event_id) {
                        Some(fp) if fp.is_empty() || *fp == event.fingerprint => Some(true),
                        Some(_) => Some(false),
                        None => match self
                            .app
                            .prior(&event)
                            .map_err(|e| Error::Store(e.to_string()))?
                        {
                            Prior::New => None,
                            Prior::Same(_) => Some(true),
                            Prior::Other => Some(false),
                        },
                    };
                    if let Some(same) = prior {
                        if same {
                            summary.duplicates += 1;
                            summary.event_ids.push(event.event_id.clone());
                            self.metrics
                                .add(name, Some(&event.tenant), Outcome::Duplicate, 1);
                        } else {
                            summary.conflicts += 1;
                            self.metrics
                                .add(name, Some(&event.tenant), Outcome::Conflict, 1);
                            refused.push(Rejected {
                                reason: format!(
                                    "source id {:?} was already received with other content (event {}): not recorded",
                                    quote(&event.source_id),
                                    event.event_id
                                ),
                                detail: None,
                                tenant: Some(event.tenant.clone()),
                                locator,
                                raw,
                            });
                        }
                        continue;
                    }
                    let mut failed = None;
                    for (i, blob) in blobs.iter().enumerate() {
                        let what =
                            format!("document {} ({:?})", i + 1, crate::clip(&blob.name, 60));
                        let bytes = match &blob.source {
                            BlobSource::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b.as_slice())),
                            BlobSource::Url(url) | BlobSource::Signed { url, .. } => self
                                .fetch(&event.tenant, url, name)
                                .await
                                .map(std::borrow::Cow::Owned)
                                .map_err(|detail| (format!("{what} could not be fetched"), detail)),
                        };
                        let stored = match bytes {
                            Ok(b) => self
                                .app
                                .store_document(
                                    System::Adapters,
                                    &b,
                                    &blob.media_type,
                                    self.max_document_bytes,
                                )
                                .await
                                .map_err(|e| (format!("{what} {e}"), String::new())),
                            Err(e) => Err(e),
                        };
                        match stored {
                            Ok(a) => {
                                event.attachments.push(a);
                                if let Some(p) = event.personal.as_mut() {
                                    p.attachment_names.push(blob.name.clone());
                                }
                            }
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    // With its documents, the event must still fit its limits.
                    if failed.is_none() {
                        if let Err(invalid) = event::check_limits(&event) {
                            failed = Some((format!("invalid event: {}", invalid.0), String::new()));
                        }
                    }
                    if let Some((reason, detail)) = failed {
                        refused.push(Rejected {
                            locator,
                            reason,
                            detail: (!detail.is_empty()).then_some(detail),
                            tenant: Some(event.tenant.clone()),
                            raw,
                        });
                        continue;
                    }
                    seen.insert(event.event_id.clone(), event.fingerprint.clone());
                    summary.accepted += 1;
                    summary.event_ids.push(event.event_id.clone());
                    events.push(event);
                }
            }
        }
        if !refused.is_empty() {
            self.quarantine_input(name, input, &refused, &mut summary)?;
        }
        Ok(summary)
    }

    /// Appends `events` in one batch and waits until the projector made them visible. Once
    /// the log took them they count as accepted, visible yet or not.
    async fn append(
        &self,
        name: &'static str,
        events: &[contacthub_core::pb::Event],
    ) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        match self.app.append_contacts(System::Adapters, events).await {
            Ok(_) => {}
            Err(e) if e.recorded() => {
                tracing::warn!(adapter = name, error = %e, "accepted but not yet visible");
            }
            Err(e) => return Err(Error::Log(e.to_string())),
        }
        // Counted once the log took them, not before.
        for e in events {
            self.metrics
                .add(name, Some(&e.tenant), Outcome::Accepted, 1);
        }
        Ok(())
    }

    /// Keeps `input` in the quarantine (one entry, listing every refused record).
    fn quarantine_input(
        &self,
        adapter: &'static str,
        input: &Input<'_>,
        refused: &[Rejected],
        summary: &mut Summary,
    ) -> Result<(), Error> {
        let (entry, _) = self.quarantine.put(
            adapter,
            input.origin,
            input.bytes,
            refused,
            input.received_us,
        )?;
        // Reasons may quote personal data: they are in the quarantine, not in the log.
        tracing::warn!(adapter, records = refused.len(), quarantine_id = %entry.id, "input quarantined");
        for r in refused {
            self.metrics
                .add(adapter, r.tenant.as_deref(), Outcome::Quarantined, 1);
        }
        summary.refused += refused.len();
        for r in refused.iter().take(SUMMARY_REFUSALS) {
            summary.quarantined.push(Quarantined {
                locator: r.locator.clone(),
                reason: r.reason.clone(),
                quarantine_id: entry.id.clone(),
            });
        }
        Ok(())
    }

    /// Fetches a document given by URL (web-form and MMS attachments), within the size limit,
    /// only from the commune's allowed hosts when it lists some, and never from a loopback,
    /// private, link-local or otherwise internal address unless the commune allows it
    /// (`attachment_private_networks`). Redirects are followed by hand (3 at most), each
    /// target checked again; a name is resolved by the fetcher's own resolver, which refuses
    /// internal addresses, so the address checked is the one connected to. What the public
    /// posts (an Open311 report's photo, `adapter`) is never fetched from those addresses nor
    /// limited to the portal's hosts: it may be anywhere public. `Err` is the detail for the
    /// quarantine, not for the caller.
    async fn fetch(&self, tenant: &str, url: &str, adapter: &str) -> Result<Vec<u8>, String> {
        let public = adapter == crate::open311::SOURCE;
        let settings = self.cfg.commune(tenant).filter(|_| !public);
        let allowed = settings
            .map(|c| c.attachment_hosts.as_slice())
            .unwrap_or_default();
        let private_ok = settings.is_some_and(|c| c.attachment_private_networks);
        let client = if private_ok {
            &self.fetchers.anywhere
        } else {
            &self.fetchers.public
        };
        let mut url = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        for _ in 0..=3 {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("{:?} is not an http(s) URL", quote(url.as_str())));
            }
            let host = url.host_str().unwrap_or("").to_string();
            if !allowed.is_empty() && !allowed.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
                return Err(format!(
                    "host {:?} is not one of the commune's attachment_hosts",
                    quote(&host)
                ));
            }
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                Some(url::Host::Domain(_)) => None,
                None => return Err("URL without a host".into()),
            };
            if let Some(ip) = literal.filter(|ip| !private_ok && internal_address(*ip)) {
                return Err(format!(
                    "{:?} is an internal address ({ip}): not fetched",
                    quote(&host)
                ));
            }
            let mut resp = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| error_chain(&e))?;
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {} without a Location", resp.status()))?;
                url = url
                    .join(next)
                    .map_err(|e| format!("bad redirect target: {e}"))?;
                continue;
            }
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > self.max_document_bytes {
                    return Err(format!(
                        "larger than the limit of {} bytes",
                        self.max_document_bytes
                    ));
                }
            }
            return Ok(body);
        }
        Err("more than 3 redirects".into())
    }
}

/// Whether an address belongs to the hub's own machine or network rather than the Internet:
/// loopback, private (RFC 1918, unique-local), link-local (cloud metadata), unspecified,
/// shared (CGNAT), multicast, broadcast, reserved, and IPv4 mapped into IPv6.
pub fn internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            let o = v6.octets();
            let embedded = |a: u8, b: u8, c: u8, d: u8| {
                internal_address(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)))
            };
            // An IPv4 address inside: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
            // NAT64 (64:ff9b::/96) or 6to4 (2002:aabb:ccdd::/48).
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_address(IpAddr::V4(v4));
            }
            if seg[..6].iter().all(|s| *s == 0) && !v6.is_loopback() && !v6.is_unspecified() {
                return embedded(o[12], o[13], o[14], o[15]);
            }
            if seg[0] == 0x64 && seg[1] == 0xff9b {
                // The well-known prefix carries the address in its last 32 bits; the local-use
                // one (64:ff9b:1::/48, RFC 8215) is the network's own.
                return seg[2] == 1 || embedded(o[12], o[13], o[14], o[15]);
            }
            if seg[0] == 0x2002 {
                return embedded(o[2], o[3], o[4], o[5]);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_told_apart() {
        for internal in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a00:1::1",
            "fec0::1",
            "2001:db8::1",
            "198.18.0.1",
        ] {
            assert!(internal_address(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "2a00:1450:4007:80e::200e",
            "8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!internal_address(public.parse().unwrap()), "{public}");
        }
        // The URL parser reads decimal IPv4 hosts as the address they are.
        let u = reqwest::Url::parse("http://2130706433:8080/x").unwrap();
        assert_eq!(
            u.host(),
            Some(url::Host::Ipv4("127.0.0.1".parse().unwrap()))
        );
    }
}
