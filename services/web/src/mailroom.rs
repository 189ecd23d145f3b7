//! The mail room's pages: the letters of a commune, registering one with its scans (upload),
//! a letter's page (its circuit, routing, its request), the acknowledgement of receipt, and
//! the documents of letters and contacts, viewable in the browser and downloadable.

use crate::contacts::{categories, category_of};
use crate::pages::{chrome, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode};
use crate::{render, Failure, State};
use axum::extract::{Multipart, Path, Query, State as Axum};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Form;
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_core::render::{category_fr, channel_fr};
use serde::Deserialize;

fn letter_url(tenant: &str, chrono: &str) -> String {
    format!("/courrier/{}/{}", url_encode(tenant), url_encode(chrono))
}

fn row(
    s: &pb::CourrierState,
    commune: &contacthub_core::tenant::Tenant,
    due_us: i64,
    now_us: i64,
) -> view::LetterRow {
    let answered = s.status == pb::CourrierStatus::Answered as i32;
    view::LetterRow {
        chrono: s.chrono.clone(),
        url: letter_url(&s.tenant, &s.chrono),
        received: view::micros(&s.received_at)
            .map(view::day)
            .unwrap_or_default(),
        sender: s.sender_display.clone(),
        subject: s.subject.clone(),
        service: match (s.service.as_str(), s.addressed_to_service.as_str()) {
            ("", "") => "à orienter".into(),
            ("", to) => format!("adressé à : {}", commune.service_name(to)),
            (service, _) => commune.service_name(service).to_string(),
        },
        status: contacthub_core::render::courrier_status_fr(s.status),
        due: view::day(due_us),
        overdue: !answered && now_us > due_us,
    }
}

#[derive(Deserialize)]
pub struct LettersQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    retard: bool,
    /// Only letters without a written answer yet.
    #[serde(default)]
    non_repondu: bool,
    /// A chrono number or part of it.
    #[serde(default)]
    chrono: String,
    /// The sender's name or part of it (accents and case ignored).
    #[serde(default)]
    expediteur: String,
    /// 1 for the newest letters.
    #[serde(default)]
    page: usize,
}

/// Letters per page of the mail room's list.
const PAGE: usize = 50;

pub async fn letters(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<LettersQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let commune = desk.app.tenant(&tenant)?.clone();
    let now = desk.app.now();
    let list = desk.app.list_courrier(
        &scope,
        &commands::CourrierQuery {
            service: q.service.trim().into(),
            overdue_only: q.retard,
            limit: 10_000,
            ..Default::default()
        },
    )?;
    let chrono = q.chrono.trim().to_uppercase();
    let sender = contacthub_core::identity::fold_name(q.expediteur.trim());
    let mut chosen: Vec<&pb::CourrierState> = list
        .iter()
        .filter(|s| !q.non_repondu || s.status != pb::CourrierStatus::Answered as i32)
        .filter(|s| chrono.is_empty() || s.chrono.contains(&chrono))
        .filter(|s| {
            sender.is_empty()
                || contacthub_core::identity::fold_name(&s.sender_display).contains(&sender)
        })
        .collect();
    // Newest first.
    let at = |s: &pb::CourrierState| {
        view::micros(&s.received_at)
            .or(view::micros(&s.registered_at))
            .unwrap_or(0)
    };
    chosen.sort_by(|a, b| at(b).cmp(&at(a)).then(b.chrono.cmp(&a.chrono)));
    let total = chosen.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = q.page.clamp(1, pages);
    let rows = chosen
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|s| {
            row(
                s,
                &commune,
                contacthub_core::courrier::due_us(s, &commune),
                now,
            )
        })
        .collect();
    let link = |n: usize| {
        format!(
            "/courrier?commune={}&service={}&retard={}&non_repondu={}&chrono={}&expediteur={}&page={n}",
            url_encode(&tenant),
            url_encode(&q.service),
            q.retard,
            q.non_repondu,
            url_encode(&q.chrono),
            url_encode(&q.expediteur)
        )
    };
    let pager = view::Pager {
        page,
        pages,
        total,
        previous: if page > 1 {
            link(page - 1)
        } else {
            String::new()
        },
        next: if page < pages {
            link(page + 1)
        } else {
            String::new()
        },
    };
    Ok(render(&view::Letters {
        services: crate::pages::services(&desk, &tenant),
        chrome: chrome(&caller, &desk, "courrier"),
        communes,
        tenant,
        service: q.service,
        overdue_only: q.retard,
        unanswered_only: q.non_repondu,
        chrono: q.chrono,
        sender: q.expediteur,
        pager,
        rows,
        categories: categories(),
        today: chrono::DateTime::from_timestamp_micros(now)
            .map(|_| {
                contacthub_core::courrier::paris(now)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_default(),
    }))
}

fn bad(message: impl Into<String>) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

/// Registers a letter from the form (multipart: the fields, then the scans).
pub async fn register(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    mut form: Multipart,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let mut fields = std::collections::HashMap::new();
    let mut uploads = Vec::new();
    let mut scan_parts = 0usize;
    // The form sends its CSRF token first: nothing is read into the content store before it
    // is checked, at most MAX_SCANS scans, and text fields are read in bounded chunks.
    let mut checked = false;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("Formulaire illisible : {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "scans" {
            if !checked {
                return Err(bad(
                    "Formulaire incomplet : rechargez la page et recommencez.",
                ));
            }
            scan_parts += 1;
            if scan_parts > contacthub_app::courrier::MAX_SCANS {
                return Err(bad(format!(
                    "Au plus {} scans par courrier.",
                    contacthub_app::courrier::MAX_SCANS
                )));
            }
            let file_name = field.file_name().unwrap_or_default().to_string();
            let mut upload = desk.app.begin_scan()?;
            let mut size = 0usize;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| bad(format!("Envoi interrompu : {e}")))?
            {
                size += chunk.len();
                upload
                    .write(&chunk)
                    .map_err(|e| bad(format!("Scan refusé : {e}")))?;
            }
            // An empty file input sends an empty part: no scan.
            if size > 0 {
                uploads.push((file_name, upload));
            }
        } else {
            if fields.len() >= 32 {
                return Err(bad("Formulaire trop long."));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| bad(format!("Formulaire illisible : {e}")))?
            {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > 20_000 {
                    return Err(bad(format!("Le champ {name} est trop long.")));
                }
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| bad(format!("Le champ {name} n'est pas du texte.")))?;
            if name == "csrf" {
                caller.check_csrf(text.trim())?;
                checked = true;
            }
            fields.insert(name, text);
        }
    }
    let get = |k: &str| {
        fields
            .get(k)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    caller.check_csrf(&get("csrf"))?;
    // A sender picked among the commune's citizens: their record, and their name when none
    // was typed.
    let citizen = get("citizen");
    let picked_name = if citizen.is_empty() {
        String::new()
    } else {
        desk.app
            .citizen(&scope, &citizen)
            .map_err(|_| bad(format!("Aucun usager {citizen} dans cette commune.")))?
            .display_name
    };
    let category = category_of(&get("category"));
    let received_at = match get("received").as_str() {
        "" => None,
        d => {
            let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| bad("La date de réception doit être une date (AAAA-MM-JJ)."))?;
            // Noon of that day in Paris, or now for a letter that came this morning.
            let noon = day.and_hms_opt(12, 0, 0).unwrap_or_default();
            let now = desk.app.now();
            let at = contacthub_core::courrier::paris_local_to_utc_us(noon).min(now);
            if day > contacthub_core::courrier::paris(now).date() {
                return Err(bad("La date de réception est dans le futur."));
            }
            Some(contacthub_proto::ts::from_micros(at))
        }
    };
    let kind = match get("kind").as_str() {
        "recommandee" => pb::courrier::Kind::RegisteredLetter,
        "colis" => pb::courrier::Kind::Parcel,
        "interne" => pb::courrier::Kind::InternalMemo,
        _ => pb::courrier::Kind::Letter,
    };
    let state = desk
        .app
        .register_courrier(
            &scope,
            &pb::CourrierHeader {
                tenant: tenant.clone(),
                sender: Some(pb::Party {
                    citizen_id: citizen.clone(),
                    name: match get("sender") {
                        typed if typed.is_empty() => picked_name.clone(),
                        typed => typed,
                    },
                    phone: get("phone"),
                    email: get("email"),
                    address: {
                        let (line, postcode, city) = (get("address"), get("postcode"), get("city"));
                        (!line.trim().is_empty() || !city.trim().is_empty()).then(|| {
                            pb::PostalAddress {
                                lines: vec![line.trim().to_string()]
                                    .into_iter()
                                    .filter(|l| !l.is_empty())
                                    .collect(),
                                postal_code: postcode.trim().to_string(),
                                city: city.trim().to_string(),
                                country: "FR".into(),
                            }
                        })
                    },
                }),
                received_at,
                kind: kind as i32,
                tracking_number: get("tracking"),
                subject: get("subject"),
                category: category as i32,
                addressed_to_service: get("service"),
                idempotency_key: get("key"),
                ..Default::default()
            },
            uploads,
        )
        .await?;
    Ok(see_other(&format!(
        "{}?avis=enregistre",
        letter_url(&tenant, &state.chrono)
    )))
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    avis: String,
}

pub async fn letter(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, chrono)): Path<(String, String)>,
    Query(n): Query<Notice>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let s = desk.app.letter_for(&scope, &chrono)?;
    let commune = desk.app.tenant(&tenant)?.clone();
    let now = desk.app.now();
    let url = letter_url(&tenant, &s.chrono);
    Ok(render(&view::LetterPage {
        services: crate::pages::services(&desk, &tenant),
        chrome: chrome(&caller, &desk, "courrier"),
        r: row(
            &s,
            &commune,
            contacthub_core::courrier::due_us(&s, &commune),
            now,
        ),
        url: url.clone(),
        category: category_fr(s.category),
        addressed_to: commune.service_name(&s.addressed_to_service).to_string(),
        registered: view::micros(&s.registered_at)
            .map(view::when)
            .unwrap_or_default(),
        answer: if s.answered_at.is_some() {
            format!(
                "le {} par {} ({})",
                view::micros(&s.answered_at)
                    .map(view::when)
                    .unwrap_or_default(),
                channel_fr(s.answer_channel),
                s.answer_ref
            )
        } else {
            String::new()
        },
        citizen_url: if s.citizen_id.is_empty() {
            String::new()
        } else {
            format!(
                "/citoyens/{}/{}",
                url_encode(&tenant),
                url_encode(&s.citizen_id)
            )
        },
        request: s.request_reference.clone(),
        request_url: if s.request_reference.is_empty() {
            String::new()
        } else {
            format!(
                "/demandes/{}/{}",
                url_encode(&tenant),
                url_encode(&s.request_reference)
            )
        },
        scans: s
            .scans
            .iter()
            .enumerate()
            .map(|(i, a)| view::Document {
                url: format!("{url}/scans/{i}"),
                label: format!(
                    "Scan {} ({}, {})",
                    i + 1,
                    view::kind_fr(&a.media_type),
                    view::size_fr(a.size_bytes)
                ),
            })
            .collect(),
        history: s
            .history
            .iter()
            .map(|h| view::Step {
                when: view::micros(&h.at).map(view::when).unwrap_or_default(),
                kind: contacthub_core::render::step_fr(&h.kind).to_string(),
                agent: h.agent_id.clone(),
                note: if h.service.is_empty() {
                    h.note.clone()
                } else {
                    format!("{} {}", h.service, h.note).trim().to_string()
                },
            })
            .collect(),
        notice: match n.avis.as_str() {
            "enregistre" => format!("Courrier enregistré sous le numéro {}.", s.chrono),
            "oriente" => "Courrier orienté.".into(),
            _ => String::new(),
        },
    }))
}

#[derive(Deserialize)]
pub struct RouteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    note: String,
}

pub async fn route(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, chrono)): Path<(String, String)>,
    Form(f): Form<RouteForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .route_courrier(
            &scope,
            &commands::RouteCourrier {
                chrono: chrono.clone(),
                service: f.service.trim().into(),
                note: f.note.trim().into(),
                agent_id: String::new(),
            },
        )
        .await?;
    Ok(see_other(&format!(
        "{}?avis=oriente",
        letter_url(&tenant, &chrono)
    )))
}

pub async fn receipt(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, chrono)): Path<(String, String)>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let r = desk.app.receipt(&scope, &chrono)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"accuse-{}.pdf\"", r.chrono),
            ),
        ],
        r.pdf,
    )
        .into_response())
}

/// A stored document, with a type the browser shows itself (PDF, images) or downloads.
fn document(a: &pb::Attachment, bytes: Vec<u8>, name: &str) -> Page {
    let shown = matches!(
        a.media_type.as_str(),
        "application/pdf" | "image/png" | "image/jpeg" | "image/tiff"
    );
    let media = if shown {
        a.media_type.as_str()
    } else {
        "application/octet-stream"
    };
    Ok((
        [
            (header::CONTENT_TYPE, media.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "{}; filename=\"{name}\"",
                    if shown { "inline" } else { "attachment" }
                ),
            ),
            // A document is not a page: nothing in it runs.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; img-src 'self'; object-src 'self'; frame-ancestors 'self'"
                    .to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn extension(media: &str) -> &'static str {
    match media {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/tiff" => "tif",
        _ => "bin",
    }
}

pub async fn scan(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, chrono, n)): Path<(String, String, usize)>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let (a, bytes) = desk.app.letter_scan(&scope, &chrono, n).await?;
    let name = format!("{chrono}-scan-{}.{}", n + 1, extension(&a.media_type));
    document(&a, bytes, &name)
}

pub async fn attachment(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event, n)): Path<(String, String, usize)>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let (a, bytes) = desk.app.contact_document(&scope, &event, n).await?;
    let name = format!("piece-{}.{}", n + 1, extension(&a.media_type));
    document(&a, bytes, &name)
}
