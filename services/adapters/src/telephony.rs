//! The switch's live events at the edge: a connection per commune to its Asterisk Manager
//! Interface (`[commune.ami]`), logged in, read into [`crate::ami`]'s calls; each ring is
//! announced to the agent's desk, each call that ends is recorded — the same contact as its
//! CDR line. A dropped connection is opened again with backoff (1 s doubling to a minute);
//! calls in progress are followed across it.

use crate::ami::{self, Calls, Extensions, Frames, Notice};
use crate::config::{AdaptersConfig, AmiSettings, CommuneSettings};
use contacthub_app::auth::System;
use contacthub_app::telephony::{CallState, Ring};
use contacthub_app::App;
use contacthub_core::event::contact;
use contacthub_core::identity::normalize_phone;
use contacthub_core::pb::{self, event::Payload};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The longest wait between two attempts to reach a switch.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long connecting and logging in may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Follows every commune's switch until `stop` turns true.
pub async fn run(app: App, cfg: Arc<AdaptersConfig>, stop: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for c in cfg.communes.iter().filter(|c| c.ami.is_some()) {
        tasks.push(tokio::spawn(follow(app.clone(), c.clone(), stop.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Why a session with the switch ended.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the switch refused the login: {0}")]
    Refused(String),
    #[error("no answer to the login within {0:?}")]
    Timeout(Duration),
    #[error("the switch closed the connection")]
    Closed,
}

async fn follow(app: App, commune: CommuneSettings, mut stop: watch::Receiver<bool>) {
    let Some(settings) = commune.ami.clone() else {
        return;
    };
    let ext = Extensions {
        agents: settings.agents.clone(),
        services: settings.services.clone(),
        accueil: commune.accueil_extensions.clone(),
    };
    // Calls in progress live across reconnections: a hangup read after one still ends its call.
    let mut calls = Calls::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = session(&app, &commune.code, &settings, &ext, &mut calls) => r,
        };
        if let Err(lost) = outcome {
            tracing::warn!(tenant = %commune.code, error = %lost, retry_in = ?backoff, "AMI: connection to the switch lost");
            metrics::counter!("contacthub_ami_reconnects_total", "tenant" => commune.code.clone())
                .increment(1);
        }
        // A session that lasted resets the backoff.
        if started.elapsed() > MAX_BACKOFF {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: log in, then read events until it drops.
async fn session(
    app: &App,
    tenant: &str,
    settings: &AmiSettings,
    ext: &Extensions,
    calls: &mut Calls,
) -> Result<(), Lost> {
    let mut stream = tokio::time::timeout(
        LOGIN_TIMEOUT,
        TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await
    .map_err(|_| Lost::Timeout(LOGIN_TIMEOUT))??;
    stream.set_nodelay(true)?;
    let action = format!("contacthub-login-{}", app.now());
    stream
        .write_all(&ami::login(&settings.username, &settings.secret, &action))
        .await?;
    let mut frames = Frames::default();
    let mut buf = vec![0u8; 16 * 1024];
    // The login's answer (the banner and early events may come first).
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let mut early = Vec::new();
    'login: loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .map_err(|_| Lost::Timeout(LOGIN_TIMEOUT))??;
        if n == 0 {
            return Err(Lost::Closed);
        }
        for m in frames.push(&buf[..n]) {
            if m.get("ActionID") == action && !m.get("Response").is_empty() {
                if m.get("Response") != "Success" {
                    return Err(Lost::Refused(m.get("Message").to_string()));
                }
                tracing::info!(tenant, "AMI: logged in to the switch");
                break 'login;
            }
            early.push(m);
        }
    }
    for m in early {
        handle(app, tenant, ext, calls, &m).await;
    }
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(Lost::Closed);
        }
        for m in frames.push(&buf[..n]) {
            handle(app, tenant, ext, calls, &m).await;
        }
    }
}

/// Folds one message and acts on what it tells.
async fn handle(app: &App, tenant: &str, ext: &Extensions, calls: &mut Calls, m: &ami::Message) {
    let now = app.now();
    for notice in calls.apply(m, ext, now) {
        let ring = |call: &str, agent: &str, caller: Option<String>, state| Ring {
            tenant: tenant.to_string(),
            agent: agent.to_string(),
            call: call.to_string(),
            caller,
            state,
            at_us: now,
            contact_event_id: contacthub_core::event::event_id(tenant, crate::phone::SOURCE, call),
        };
        let announced = match &notice {
            Notice::Ring {
                call,
                agent,
                caller,
            } => app.announce_ring(
                System::Adapters,
                ring(call, agent, caller.clone(), CallState::Ringing),
            ),
            Notice::Answered { call, agent } => app.announce_ring(
                System::Adapters,
                ring(call, agent, None, CallState::Answered),
            ),
            Notice::Ended(call) => {
                for agent in call.answered_by.iter().filter_map(|e| ext.agents.get(e)) {
                    let _ = app.announce_ring(
                        System::Adapters,
                        ring(&call.id, agent, call.caller.clone(), CallState::Ended),
                    );
                }
                for event in events_of(app, tenant, call) {
                    if let Err(e) = app.record_live_call(System::Adapters, event).await {
                        tracing::warn!(tenant, call = %call.id, error = %e, "AMI: a call could not be recorded (its CDR line will be)");
                    }
                }
                Ok(())
            }
        };
        if let Err(e) = announced {
            tracing::warn!(tenant, error = %e, "AMI: a ring could not be announced");
        }
    }
}

/// The contacts a call that ended makes: the call itself (the CDR line's id: source
/// [`crate::phone::SOURCE`], the call's first `uniqueid`), and when it came back to the
/// accueil after a transfer, that bounce-back. None for a withheld number or a call between
/// the commune's own lines, as for CDR lines.
fn events_of(app: &App, tenant: &str, call: &ami::Call) -> Vec<pb::Event> {
    let Some(commune) = app.tenants().get(tenant) else {
        return Vec::new();
    };
    let Some(phone) = call.caller.as_deref().and_then(normalize_phone) else {
        return Vec::new();
    };
    if commune.owns_number(&phone) {
        return Vec::new();
    }
    let called = normalize_phone(&call.called).filter(|n| commune.owns_number(n));
    let seconds = |from: i64, to: i64| u32::try_from(((to - from) / 1_000_000).max(0)).unwrap_or(0);
    let disposition = if call.answered {
        pb::phone_call::Disposition::Answered
    } else {
        pb::phone_call::Disposition::NoAnswer
    };
    let leg = |source_id: &str, bounced: bool| {
        let payload = Payload::PhoneCall(pb::PhoneCall {
            disposition: disposition as i32,
            duration_seconds: seconds(call.started_us, call.ended_us),
            billed_seconds: if call.answered {
                seconds(call.answered_us, call.ended_us)
            } else {
                0
            },
            commune_number: called.clone().unwrap_or_default(),
            bounced_to_accueil: bounced,
            transferred_to: call.transferred_to.clone().unwrap_or_default(),
            ..Default::default()
        });
        let mut e = contact(
            tenant,
            crate::phone::SOURCE,
            source_id,
            call.started_us,
            call.ended_us.max(call.started_us),
            payload,
            pb::Party {
                phone: phone.clone(),
                ..Default::default()
            },
        );
        e.direction = pb::Direction::Inbound as i32;
        e
    };
    let mut out = vec![leg(&call.id, false)];
    if call.bounced {
        out.push(leg(&format!("{}/retour-accueil", call.id), true));
    }
    out
}
