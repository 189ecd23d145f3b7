//! Text for agents: one-line French summaries of timeline lines, worded when read from their
//! typed facts, and timelines rendered for a terminal.

use crate::pb::{self, event::Payload, Category, Channel, Direction, TimelineEntry};
use crate::tenant::Tenant;
use contacthub_proto::ts;

/// How many characters of free text a timeline entry keeps for display.
pub const EXCERPT_CHARS: usize = 160;

/// The first characters of a free text, on one line.
pub fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        flat
    } else {
        let mut s: String = flat.chars().take(EXCERPT_CHARS - 1).collect();
        s.push('…');
        s
    }
}

fn minutes(secs: u32) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        _ => format!("{} min {:02} s", secs / 60, secs % 60),
    }
}

/// What a timeline line is worded from: the typed facts of its event, stored with the line.
pub fn facts(payload: &Payload) -> pb::EntryFacts {
    let mut f = pb::EntryFacts::default();
    match payload {
        Payload::PhoneCall(c) => {
            f.disposition = c.disposition;
            f.seconds = c.billed_seconds.max(c.duration_seconds);
            f.bounced_to_accueil = c.bounced_to_accueil;
        }
        Payload::Courrier(c) => {
            f.courrier_kind = c.kind;
            f.chrono = c.chrono.clone();
            f.service = c.addressed_to_service.clone();
        }
        Payload::WebForm(w) => {
            f.form_slug = w.form_slug.clone();
            f.from_space = w.signed_in;
        }
        Payload::Sms(s) => f.sms_segments = s.segments,
        Payload::Email(m) => f.in_thread = !m.in_reply_to.is_empty(),
        Payload::DeskVisit(d) => {
            f.desk = d.desk.clone();
            f.visit_minutes = d.duration_minutes;
            f.permanence = d.permanence;
        }
        Payload::DuplicateDismissed(d) => {
            f.citizen_id = d.citizen_id.clone();
            f.other_citizen_id = d.other_citizen_id.clone();
        }
        Payload::IdentityLinked(l) => f.other_citizen_id = l.into_citizen_id.clone(),
        Payload::IdentityUnlinked(u) => f.other_citizen_id = u.from_citizen_id.clone(),
        Payload::HouseholdMembership(h) => {
            f.household_id = h.household_id.clone();
            f.household_role = h.role.clone();
            f.household_member = h.member;
        }
        Payload::RequestOpened(o) => {
            f.service = o.service.clone();
            f.on_behalf_of = o.on_behalf_of.clone();
        }
        Payload::CatalogueAnswerPublished(a) => f.catalogue_title = a.title.clone(),
        Payload::AnswerComposed(a) => {
            f.answer_channel = a.channel;
            f.answer_status = pb::AnswerStatus::Queued as i32;
        }
        Payload::AnswerOutcome(o) => f.outcome = o.kind,
        Payload::RequestGrouped(g) => {
            f.grouped_members = u32::try_from(g.members.len()).unwrap_or(u32::MAX)
        }
        Payload::RequestAssigned(a) => f.service = a.service.clone(),
        Payload::RequestStatusChanged(s) => f.status = s.status,
        Payload::RequestAnswered(a) => f.answer_channel = a.answer_channel,
        Payload::CourrierRouted(r) => {
            f.chrono = r.chrono.clone();
            f.service = r.service.clone();
        }
        Payload::CourrierStep(st) => {
            f.chrono = st.chrono.clone();
            f.step = st.step.clone();
        }
        Payload::CourrierAnswered(a) => {
            f.chrono = a.chrono.clone();
            f.answer_channel = a.answer_channel;
        }
        Payload::CourrierScanAttached(a) => f.chrono = a.chrono.clone(),
        Payload::RequestClosed(c) => f.resolution = c.resolution.clone(),
        Payload::CitizenErased(x) => f.erased_reason = x.reason.clone(),
        Payload::ReadsRecorded(_)
        | Payload::TicketIssued(_)
        | Payload::TicketCalled(_)
        | Payload::TicketStarted(_)
        | Payload::TicketClosed(_)
        | Payload::ContactNoted(_)
        | Payload::AccountProposed(_) => {}
        Payload::AccountLinked(l) => f.account_basis = l.basis,
        Payload::AppointmentBooked(b) => {
            f.appointment_kind = b.kind.clone();
            f.appointment_start = b.start;
        }
        Payload::NoticeOutcome(_) => {}
        Payload::AppointmentCancelled(c) => f.appointment_kind = c.kind.clone(),
        Payload::AppointmentAttended(a) => {
            f.came = a.came;
            f.appointment_kind = a.kind.clone();
        }
        Payload::NoticeQueued(n) => {
            f.notice_kind = n.kind;
            f.answer_channel = n.channel;
            f.appointment_kind = n.appointment_kind.clone();
        }
        Payload::CitizenRegistered(_)
        | Payload::CitizenUpdated(_)
        | Payload::ContactAttached(_)
        | Payload::RequestReopened(_)
        | Payload::RequestLinked(_) => {}
    }
    f
}

/// The one-line French summary of a timeline line, worded when read from its facts, with
/// the commune's names for its services.
pub fn summary(entry: &TimelineEntry, commune: &Tenant) -> String {
    let f = entry.facts.clone().unwrap_or_default();
    let inbound = entry.direction != Direction::Outbound as i32;
    let way = |i: &str, o: &str| if inbound { i } else { o }.to_string();
    let service = |code: &str| commune.service_name(code).to_string();
    let reference = &entry.request_id;
    use pb::phone_call::Disposition;
    match entry.kind.as_str() {
        "phone_call" => {
            let mut s = way("Appel entrant", "Appel sortant");
            match Disposition::try_from(f.disposition).unwrap_or(Disposition::Unspecified) {
                Disposition::Answered => s += &format!(", répondu ({})", minutes(f.seconds)),
                Disposition::NoAnswer => s += ", manqué (pas de réponse)",
                Disposition::Busy => s += ", manqué (occupé)",
                Disposition::Failed => s += ", échoué",
                Disposition::Unspecified => {}
            }
            if f.bounced_to_accueil {
                s += ", renvoyé vers l'accueil";
            }
            if f.outside_hours {
                s += ", hors des horaires d'ouverture";
            }
            s
        }
        "courrier" => {
            use pb::courrier::Kind;
            let kind = match Kind::try_from(f.courrier_kind).unwrap_or(Kind::Unspecified) {
                Kind::RegisteredLetter => "lettre recommandée",
                Kind::Parcel => "colis",
                Kind::InternalMemo => "note interne",
                _ => "lettre",
            };
            let mut s = format!("{} ({kind})", way("Courrier reçu", "Courrier envoyé"));
            if !f.chrono.is_empty() {
                s += &format!(" n° {}", f.chrono);
            }
            if !f.service.is_empty() {
                s += &format!(", pour {}", service(&f.service));
            }
            s
        }
        "web_form" if f.from_space => "Message écrit sur l'espace citoyen".into(),
        "web_form" => format!("Démarche en ligne « {} »", f.form_slug),
        "sms" => {
            let mut t = way("SMS reçu", "SMS envoyé");
            if f.sms_segments > 1 {
                t += &format!(" ({} segments)", f.sms_segments);
            }
            t
        }
        "email" => {
            let mut t = way("Courriel reçu", "Courriel envoyé");
            if f.in_thread {
                t += " (réponse dans un fil)";
            }
            t
        }
        "desk_visit" => {
            let mut t = if f.permanence {
                "Rencontre à la permanence d'un élu".to_string()
            } else {
                "Visite à l'accueil".to_string()
            };
            if !f.desk.is_empty() {
                t += &format!(" ({})", f.desk);
            }
            if f.visit_minutes > 0 {
                t += &format!(", {} min", f.visit_minutes);
            }
            if f.outside_hours {
                t += ", hors des horaires d'ouverture";
            }
            t
        }
        "citizen_registered" => "Fiche usager créée".into(),
        "citizen_erased" => format!(
            "Données effacées le {}, à la demande de {}, motif : {}",
            entry
                .occurred_at
                .as_ref()
                .and_then(ts::to_micros)
                .map(crate::courrier::paris_day)
                .unwrap_or_default(),
            if entry.agent_id.is_empty() {
                "la commune"
            } else {
                entry.agent_id.as_str()
            },
            f.erased_reason
        ),
        "citizen_updated" => "Fiche usager modifiée".into(),
        "contact_attached" => "Contact rattaché à la fiche".into(),
        "duplicate_dismissed" => format!(
            "Doublon écarté : {} n'est pas {}",
            f.citizen_id, f.other_citizen_id
        ),
        "identity_linked" => format!("Fiche fusionnée dans {}", f.other_citizen_id),
        "appointment_booked" | "appointment_cancelled" => {
            let what = commune
                .appointment(&f.appointment_kind)
                .map_or(f.appointment_kind.as_str(), |k| k.name.as_str());
            let when = f
                .appointment_start
                .as_ref()
                .and_then(ts::to_micros)
                .map(|us| {
                    let t = crate::courrier::paris(us);
                    format!("{} à {}", t.format("%d/%m/%Y"), t.format("%H:%M"))
                })
                .unwrap_or_default();
            if entry.kind == "appointment_booked" {
                format!("Rendez-vous pris : {what}, le {when}")
            } else if what.is_empty() {
                "Rendez-vous annulé".into()
            } else {
                format!("Rendez-vous annulé : {what}")
            }
        }
        "appointment_attended" if f.came => "Présence au rendez-vous constatée".into(),
        "appointment_attended" => "Absence au rendez-vous constatée".into(),
        "notice_queued" => {
            use pb::notice_queued::Kind;
            // (what, feminine)
            let (what, feminine) = match Kind::try_from(f.notice_kind).unwrap_or(Kind::Unspecified)
            {
                Kind::AppointmentBooked => ("Confirmation du rendez-vous", true),
                Kind::AppointmentReminder => ("Rappel du rendez-vous la veille", false),
                Kind::RequestAcknowledged => ("Accusé de réception de la demande", false),
                Kind::Unspecified => ("Avis", false),
            };
            let e = if feminine { "e" } else { "" };
            let how = channel_fr(f.answer_channel);
            match pb::AnswerStatus::try_from(f.answer_status) {
                Ok(pb::AnswerStatus::Delivered) => format!("{what} envoyé{e} par {how}"),
                Ok(pb::AnswerStatus::Failed) => format!("{what} non envoyé{e} ({how})"),
                _ => format!("{what} à envoyer par {how}"),
            }
        }
        "account_linked" => {
            use pb::account_linked::Basis;
            match Basis::try_from(f.account_basis).unwrap_or(Basis::Unspecified) {
                Basis::Agent => "Compte de l'espace citoyen rattaché à la fiche par un agent".into(),
                Basis::OneTimeCode => "Compte de l'espace citoyen ouvert avec un code reçu aux coordonnées de la fiche".into(),
                _ => "Compte de l'espace citoyen rattaché à la fiche (FranceConnect : nom, prénoms et date de naissance identiques)".into(),
            }
        }
        "identity_unlinked" => format!("Fiche séparée de {}", f.other_citizen_id),
        "household_membership" => {
            let role = if f.household_role.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.household_role)
            };
            if f.household_member {
                format!("Rattaché au foyer {}{role}", f.household_id)
            } else {
                format!("Détaché du foyer {}", f.household_id)
            }
        }
        "request_opened" => {
            let mut t = "Demande ouverte".to_string();
            if !f.service.is_empty() {
                t += &format!(" pour {}", service(&f.service));
            }
            if !f.on_behalf_of.is_empty() {
                t += &format!(" (au nom de {})", f.on_behalf_of);
            }
            if !reference.is_empty() {
                t += &format!(" n° {reference}");
            }
            if let Some(due) = f.due_at.as_ref().and_then(ts::to_micros) {
                t += &format!(", réponse due le {}", crate::courrier::paris_day(due));
            }
            t
        }
        "request_reopened" => format!("Demande {reference} rouverte"),
        "catalogue_answer_published" => {
            format!("Réponse du catalogue « {} » publiée", f.catalogue_title)
        }
        "answer_composed" => {
            let how = match Channel::try_from(f.answer_channel).unwrap_or(Channel::Unspecified) {
                Channel::Email => " par courriel",
                Channel::Sms => " par SMS",
                Channel::Courrier => " par courrier",
                Channel::WebForm => " sur le portail",
                _ => "",
            };
            format!(
                "Réponse écrite{how} à la demande {reference} : {}",
                answer_status_fr(f.answer_status)
            )
        }
        "answer_outcome" => {
            use pb::answer_outcome::Kind;
            match Kind::try_from(f.outcome).unwrap_or(Kind::Unspecified) {
                Kind::Delivered => format!("Réponse à la demande {reference} remise"),
                Kind::Failed => format!("Échec d'envoi de la réponse à la demande {reference}"),
                Kind::Bounced => format!("Réponse à la demande {reference} revenue en erreur"),
                Kind::Unspecified => format!("Réponse à la demande {reference}"),
            }
        }
        "request_linked" => format!("Contact rattaché à la demande {reference}"),
        "request_grouped" => format!(
            "{} demande(s) regroupée(s) sous la demande collective {reference}",
            f.grouped_members
        ),
        "request_assigned" => {
            format!("Demande {reference} attribuée à {}", service(&f.service))
        }
        "request_status_changed" => {
            format!("Statut de la demande : {}", status_fr(f.status))
        }
        "request_answered" => format!("Réponse apportée ({})", channel_fr(f.answer_channel)),
        "courrier_routed" => format!("Courrier {} transmis à {}", f.chrono, service(&f.service)),
        "courrier_step" => format!("Courrier {} : {}", f.chrono, f.step),
        "courrier_answered" => format!(
            "Réponse au courrier {} ({})",
            f.chrono,
            channel_fr(f.answer_channel)
        ),
        "courrier_scan_attached" => format!("Numérisation jointe au courrier {}", f.chrono),
        "request_closed" => {
            if f.resolution.is_empty() {
                "Demande clôturée".into()
            } else {
                format!("Demande clôturée : {}", f.resolution)
            }
        }
        other => other.to_string(),
    }
}

/// A `YYYY-MM-DD` date as agents write it (03/12/2026); as stored when it is not one.
pub fn date_fr(date: &str) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| date.to_string())
}

/// French name of where a written answer is, for agents.
pub fn answer_status_fr(s: i32) -> &'static str {
    use pb::AnswerStatus as S;
    match S::try_from(s).unwrap_or(S::Unspecified) {
        S::Queued => "en attente d'envoi",
        S::Retrying => "nouvel essai prévu",
        S::Delivered => "remise",
        S::Failed => "échec d'envoi",
        S::Bounced => "revenue en erreur",
        S::Unspecified => "inconnu",
    }
}

/// French name of a request's status, for agents.
pub fn status_fr(s: i32) -> &'static str {
    use pb::RequestStatus as S;
    match S::try_from(s).unwrap_or(S::Unspecified) {
        S::Open => "reçue",
        S::Assigned => "attribuée",
        S::Reopened => "rouverte",
        S::InProgress => "en cours",
        S::WaitingCitizen => "en attente de l'usager",
        S::Answered => "répondue",
        S::Closed => "clôturée",
        S::Unspecified => "inconnu",
    }
}

/// Where a letter is in the mail room's circuit, in French, for agents.
pub fn courrier_status_fr(s: i32) -> &'static str {
    match pb::CourrierStatus::try_from(s).unwrap_or(pb::CourrierStatus::Unspecified) {
        pb::CourrierStatus::Registered => "enregistré",
        pb::CourrierStatus::Routed => "orienté",
        pb::CourrierStatus::Answered => "répondu",
        pb::CourrierStatus::Unspecified => "",
    }
}

/// A step of a request's or a letter's history, in French, for agents.
pub fn step_fr(kind: &str) -> &str {
    match kind {
        "opened" => "ouverte",
        "assigned" => "attribuée",
        "service" => "orientée vers",
        "status" => "statut changé",
        "answered" => "réponse écrite",
        "answer_queued" => "réponse mise à l'envoi",
        "answer_failed" => "échec d'envoi de la réponse",
        "answer_bounced" => "réponse revenue en erreur",
        "closed" => "clôturée",
        "reopened" => "rouverte",
        "linked" => "contact rattaché",
        "grouped" => "regroupée",
        "registered" => "enregistré",
        "routed" => "orienté",
        "reassigned" => "réorienté",
        "step" => "étape",
        "scan" => "scan ajouté",
        other => other,
    }
}

/// Why a request was closed, in French, for agents: the reason and whom or which request
/// it names.
pub fn close_reason_fr(r: &pb::Request) -> String {
    use pb::CloseReason as R;
    match R::try_from(r.close_reason).unwrap_or(R::Unspecified) {
        R::Answered => "répondue par écrit".into(),
        R::Redirected => format!("réorientée vers {}", r.redirected_to),
        R::Duplicate => format!("doublon de {}", r.duplicate_of),
        R::Withdrawn => "retirée par l'usager".into(),
        R::Unspecified => String::new(),
    }
}

/// French name of a channel, for agents.
pub fn channel_fr(c: i32) -> &'static str {
    match Channel::try_from(c).unwrap_or(Channel::Unspecified) {
        Channel::Phone => "téléphone",
        Channel::Courrier => "courrier",
        Channel::WebForm => "démarche en ligne",
        Channel::Sms => "SMS",
        Channel::Email => "courriel",
        Channel::Desk => "accueil",
        Channel::BackOffice => "suivi",
        Channel::Unspecified => "?",
    }
}

/// The categories, in the order agents choose among them.
pub const CATEGORIES: [Category; 9] = [
    Category::Other,
    Category::EtatCivil,
    Category::Scolaire,
    Category::PetiteEnfance,
    Category::Ccas,
    Category::Culture,
    Category::ServicesTechniques,
    Category::Urbanisme,
    Category::PoliceMunicipale,
];

/// A category's code in forms, URLs and the CLI (`etat-civil`, `services-techniques`,
/// `other`): its protobuf name, lower case; [`category_from_name`] reads it back.
pub fn category_code(c: Category) -> String {
    c.as_str_name()
        .trim_start_matches("CATEGORY_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// French name of a category, for agents.
pub fn category_fr(c: i32) -> &'static str {
    match Category::try_from(c).unwrap_or(Category::Unspecified) {
        Category::EtatCivil => "état civil",
        Category::Scolaire => "scolaire / périscolaire",
        Category::PetiteEnfance => "petite enfance",
        Category::Ccas => "CCAS",
        Category::Culture => "culture",
        Category::ServicesTechniques => "services techniques",
        Category::Urbanisme => "urbanisme",
        Category::PoliceMunicipale => "police municipale",
        Category::Other => "autre",
        Category::Unspecified => "",
    }
}

/// The category someone names: its code (`etat-civil`, `etat_civil`, `services-techniques`)
/// or its French name as agents read it (« état civil », « Petite enfance », « autre »), in
/// any case, with or without accents.
pub fn category_from_name(s: &str) -> Option<i32> {
    let wanted = crate::identity::fold_name(s);
    if wanted.is_empty() {
        return None;
    }
    (1..=9).find(|&c| {
        let code = Category::try_from(c)
            .map(|k| k.as_str_name().trim_start_matches("CATEGORY_").to_string())
            .unwrap_or_default();
        let name = category_fr(c);
        [code.as_str(), name]
            .iter()
            .any(|n| crate::identity::fold_name(n) == wanted)
            || (c == Category::Other as i32 && wanted == "other")
            || (c == Category::Scolaire as i32 && wanted == "scolaire")
    })
}

/// Renders a citizen and timeline entries (as given, newest first) for a terminal.
pub fn render_timeline(citizen: Option<&pb::Citizen>, entries: &[TimelineEntry]) -> String {
    let mut out = citizen.map(render_citizen).unwrap_or_default();
    out += &render_entries(entries);
    out
}

/// Renders a citizen's card (names, record, identifiers, households) for a terminal.
pub fn render_citizen(c: &pb::Citizen) -> String {
    let mut out = String::new();
    let name = if c.display_name.is_empty() {
        "(sans nom)"
    } else {
        &c.display_name
    };
    out += &format!("Usager {}  {name}", c.citizen_id);
    if c.provisional {
        out += "  [fiche provisoire]";
    }
    if !c.merged_into.is_empty() {
        out += &format!("  [fusionnée dans {}]", c.merged_into);
    }
    out.push('\n');
    if let Some(i) = &c.identity {
        if !i.birth_name.is_empty() && i.birth_name != i.usage_name {
            out += &format!("  né(e)    {}\n", i.birth_name);
        }
        if !i.birth_date.is_empty() {
            out += &format!("  naissance {}\n", date_fr(&i.birth_date));
        }
        for a in &i.addresses {
            let line = [&a.number, &a.street, &a.complement, &a.postcode, &a.city]
                .iter()
                .filter(|x| !x.is_empty())
                .map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            out += &format!("  adresse  {line}\n");
        }
        let preferred = match pb::ContactChannel::try_from(i.preferred_channel) {
            Ok(pb::ContactChannel::Email) => "courriel",
            Ok(pb::ContactChannel::Sms) => "SMS",
            Ok(pb::ContactChannel::Courrier) => "courrier",
            Ok(pb::ContactChannel::Phone) => "téléphone",
            _ => "",
        };
        if !preferred.is_empty() {
            out += &format!("  préfère  {preferred}");
            if let Some(c) = &i.consent {
                let when = c
                    .given_at
                    .as_ref()
                    .and_then(ts::to_micros)
                    .map(crate::courrier::paris_display)
                    .unwrap_or_default();
                out += &format!(" (accord {} {when})", c.source);
            }
            out.push('\n');
        }
        if !i.note.is_empty() {
            out += &format!("  note     {}\n", i.note);
        }
    }
    for p in &c.phones {
        out += &format!("  tél.     {}\n", crate::identity::display_phone(p));
    }
    for m in &c.emails {
        out += &format!("  courriel {m}\n");
    }
    if !c.households.is_empty() {
        out += &format!("  foyers   {}\n", c.households.join(", "));
    }
    out += &format!("  {} contact(s)\n", c.entries);
    out
}

/// Renders timeline entries (as given, newest first) for a terminal, in Paris time.
pub fn render_entries(entries: &[TimelineEntry]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out += "  (aucun contact)\n";
    }
    for e in entries {
        let when = e
            .occurred_at
            .as_ref()
            .and_then(ts::to_micros)
            .map(crate::courrier::paris_display)
            .unwrap_or_default();
        let arrow = match Direction::try_from(e.direction).unwrap_or(Direction::Unspecified) {
            Direction::Inbound => "→",
            Direction::Outbound => "←",
            _ => "·",
        };
        out += &format!("{when} {arrow} {:<17} {}", channel_fr(e.channel), e.summary);
        let cat = category_fr(e.category);
        if !cat.is_empty() {
            out += &format!(" [{cat}]");
        }
        out.push('\n');
        if !e.subject.is_empty() {
            out += &format!("    objet : {}\n", e.subject);
        }
        if !e.excerpt.is_empty() {
            out += &format!("    « {} »\n", e.excerpt);
        }
        for l in &e.links {
            out += &format!("    {} : {}\n", l.rel, l.target);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn categories_are_understood_as_agents_write_them() {
        use crate::pb::Category as C;
        for (written, meant) in [
            ("état civil", C::EtatCivil),
            ("Etat-Civil", C::EtatCivil),
            ("etat_civil", C::EtatCivil),
            ("services-techniques", C::ServicesTechniques),
            ("Services techniques", C::ServicesTechniques),
            ("petite enfance", C::PetiteEnfance),
            ("scolaire", C::Scolaire),
            ("scolaire / périscolaire", C::Scolaire),
            ("CCAS", C::Ccas),
            ("police municipale", C::PoliceMunicipale),
            ("autre", C::Other),
            ("other", C::Other),
        ] {
            assert_eq!(
                super::category_from_name(written),
                Some(meant as i32),
                "{written}"
            );
        }
        for c in super::CATEGORIES {
            assert_eq!(
                super::category_from_name(&super::category_code(c)),
                Some(c as i32),
                "{c:?}"
            );
        }
        assert_eq!(super::category_code(C::EtatCivil), "etat-civil");
        assert_eq!(super::category_from_name("voirie"), None);
        assert_eq!(super::category_from_name(""), None);
    }
}

/// A number with one decimal and a decimal comma, as French readers and spreadsheets read it
/// (« 12,5 »).
/// `s` with its first letter in capital (« état civil » → « État civil »).
pub fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn decimal_fr(x: f64) -> String {
    format!("{x:.1}").replace('.', ",")
}

/// A share with one decimal (« 87,5 % »).
pub fn percent_fr(x: f64) -> String {
    format!("{} %", decimal_fr(x))
}

/// French months, for dates people read (`3 mars 2026`).
pub const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A month (`YYYY-MM`) as people write it: « mars 2026 »; as given when it is not one.
pub fn month_fr(month: &str) -> String {
    match month_parts(month) {
        Some((y, m)) => format!("{} {y}", MONTHS_FR[m - 1]),
        None => month.to_string(),
    }
}

/// A month's short name under a chart's bar, as French abbreviates it: « janv. », « mars ».
pub fn month_short_fr(month: &str) -> String {
    const SHORT: [&str; 12] = [
        "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
        "déc.",
    ];
    match month_parts(month) {
        Some((_, m)) => SHORT[m - 1].to_string(),
        None => month.to_string(),
    }
}

fn month_parts(month: &str) -> Option<(u32, usize)> {
    let (y, m) = month.split_once('-')?;
    let (y, m): (u32, usize) = (y.parse().ok()?, m.parse().ok()?);
    (y >= 1000 && (1..=12).contains(&m) && month.len() == 7).then_some((y, m))
}

#[cfg(test)]
mod month_tests {
    use super::*;

    #[test]
    fn months_read_in_french() {
        assert_eq!(month_fr("2026-03"), "mars 2026");
        assert_eq!(month_fr("2026-12"), "décembre 2026");
        assert_eq!(month_fr("2026-13"), "2026-13");
        let short: Vec<String> = (1..=12)
            .map(|m| month_short_fr(&format!("2026-{m:02}")))
            .collect();
        assert_eq!(
            short,
            [
                "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                "nov.", "déc."
            ]
        );
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;
    use crate::pb::event::Payload;

    fn line(kind: &str, payload: &Payload) -> TimelineEntry {
        TimelineEntry {
            kind: kind.into(),
            direction: Direction::Inbound as i32,
            facts: Some(facts(payload)),
            ..Default::default()
        }
    }

    #[test]
    fn lines_are_worded_when_read_with_the_communes_names() {
        let tenants = crate::tenant::Tenants::builtin();
        let givors = tenants.get("69091").unwrap();
        let urbanisme = givors.service_name("urbanisme").to_string();
        assert_ne!(
            urbanisme, "urbanisme",
            "the shipped directory names the service"
        );

        let mut opened = line(
            "request_opened",
            &Payload::RequestOpened(pb::RequestOpened {
                service: "urbanisme".into(),
                ..Default::default()
            }),
        );
        assert_eq!(
            summary(&opened, givors),
            format!("Demande ouverte pour {urbanisme}")
        );
        // The fold adds the reference and the committed date as facts, not words.
        opened.request_id = "GIV-D-2026-000042".into();
        opened.facts.as_mut().unwrap().due_at = Some(ts::from_micros(1_796_000_000_000_000));
        assert_eq!(
            summary(&opened, givors),
            format!(
                "Demande ouverte pour {urbanisme} n° GIV-D-2026-000042, réponse due le 30/11/2026"
            )
        );

        let call = line(
            "phone_call",
            &Payload::PhoneCall(pb::PhoneCall {
                disposition: pb::phone_call::Disposition::Answered as i32,
                duration_seconds: 125,
                bounced_to_accueil: true,
                ..Default::default()
            }),
        );
        assert_eq!(
            summary(&call, givors),
            "Appel entrant, répondu (2 min 05 s), renvoyé vers l'accueil"
        );

        let mut answer = line(
            "answer_composed",
            &Payload::AnswerComposed(pb::AnswerComposed {
                channel: Channel::Sms as i32,
                ..Default::default()
            }),
        );
        answer.request_id = "GIV-D-2026-000042".into();
        assert_eq!(
            summary(&answer, givors),
            "Réponse écrite par SMS à la demande GIV-D-2026-000042 : en attente d'envoi"
        );
        answer.facts.as_mut().unwrap().answer_status = pb::AnswerStatus::Delivered as i32;
        assert_eq!(
            summary(&answer, givors),
            "Réponse écrite par SMS à la demande GIV-D-2026-000042 : remise"
        );
    }
}
