//! The commune's documents: the acknowledgement of receipt (accusé de réception) of a letter
//! and the answer letter (réponse écrite), A4 PDFs with the commune's letterhead, the
//! citizen's name and postal address where a window envelope (DL or C5, French layout) shows
//! it, the reference, French dates (and, for a receipt, the committed answer date).
//! Text is set in DejaVu Sans, embedded (subset) in every file, so any name in any Latin,
//! Vietnamese, Polish, Turkish… writing prints as written. Pure: bytes in, bytes out.

use contacthub_core::courrier::{due_us, paris};
use contacthub_core::pb::{Answer, CourrierState};
use contacthub_core::tenant::Tenant;
use contacthub_proto::ts;
use krilla::geom::Point;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use std::sync::{Arc, OnceLock};

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The embedded fonts (regular, bold), parsed once.
fn fonts() -> &'static (Font, Font) {
    static FONTS: OnceLock<(Font, Font)> = OnceLock::new();
    FONTS.get_or_init(|| {
        let load = |bytes: &'static [u8]| {
            Font::new(Arc::new(bytes.to_vec()).into(), 0).expect("the embedded font parses")
        };
        (load(REGULAR), load(BOLD))
    })
}

/// Points per millimetre.
const MM: f32 = 72.0 / 25.4;
/// A4 in points.
const WIDTH: f32 = 210.0 * MM;
const HEIGHT: f32 = 297.0 * MM;

/// A date in French, Paris time: `3 mars 2026`.
pub fn date_fr(us: i64) -> String {
    use chrono::Datelike;
    let d = paris(us).date();
    format!(
        "{} {} {}",
        d.day(),
        contacthub_core::render::MONTHS_FR[d.month0() as usize],
        d.year()
    )
}

/// What is wrong with a document's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A commune's logo the PDF writer cannot read.
    #[error("the logo is not a readable PNG or JPEG image ({0})")]
    Logo(String),
}

/// Checks that `bytes` are a logo the letterhead can print (a PNG or JPEG krilla reads): what
/// the binary asks before giving a commune its logo.
pub fn check_logo(bytes: &[u8]) -> Result<(), Error> {
    logo_image(bytes).map(|_| ()).map_err(Error::Logo)
}

/// The logo of a letterhead, if `bytes` are a PNG or JPEG krilla reads.
fn logo_image(bytes: &[u8]) -> Result<krilla::image::Image, String> {
    let data: krilla::Data = Arc::new(bytes.to_vec()).into();
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        krilla::image::Image::from_png(data, true)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        krilla::image::Image::from_jpeg(data, true)
    } else {
        Err("neither PNG nor JPEG".into())
    }
}

/// A line to print: on which page, where (millimetres from the left and from the top), bold
/// or not, size.
struct Line {
    page: usize,
    x_mm: f32,
    y_mm: f32,
    bold: bool,
    size: f32,
    text: String,
}

/// Cuts a text into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// The receipt of `state` from `tenant`, addressed to `recipient` (name, then postal address
/// lines, as known), with the follow-up code of its request when given.
pub fn receipt_pdf(
    state: &CourrierState,
    tenant: &Tenant,
    recipient: &[String],
    follow_up_code: &str,
) -> Vec<u8> {
    let received = state
        .received_at
        .as_ref()
        .or(state.registered_at.as_ref())
        .and_then(ts::to_micros)
        .unwrap_or(0);
    let service = if state.service.is_empty() {
        &state.addressed_to_service
    } else {
        &state.service
    };
    let days = tenant.answer_days_for(state.category);
    let unit = if tenant.answer_in_working_days {
        "jours ouvrés"
    } else {
        "jours"
    };
    let mut lines = Vec::new();
    let mut put = |x_mm: f32, y_mm: f32, bold: bool, size: f32, text: String| {
        lines.push(Line {
            page: 0,
            x_mm,
            y_mm,
            bold,
            size,
            text,
        })
    };
    // Letterhead, top left.
    put(20.0, 20.0, true, 14.0, format!("Mairie de {}", tenant.name));
    for (i, l) in tenant.address.iter().enumerate() {
        put(20.0, 27.0 + 5.0 * i as f32, false, 10.0, l.clone());
    }
    // The recipient, where a DL / C5 window envelope shows it (110 mm from the left, 50 mm
    // from the top).
    for (i, l) in recipient
        .iter()
        .filter(|l| !l.trim().is_empty())
        .take(6)
        .enumerate()
    {
        put(110.0, 50.0 + 5.5 * i as f32, false, 11.0, l.clone());
    }
    put(
        110.0,
        90.0,
        false,
        10.0,
        format!("{}, le {}", tenant.name, date_fr(received)),
    );
    put(20.0, 105.0, true, 14.0, "Accusé de réception".into());
    let mut y = 117.0;
    let mut body = |bold: bool, text: String| {
        for l in wrap(&text, 88) {
            put(20.0, y, bold, 11.0, l);
            y += 6.0;
        }
    };
    body(true, format!("Numéro d'enregistrement : {}", state.chrono));
    body(false, format!("Reçu le : {}", date_fr(received)));
    body(
        false,
        format!(
            "Service chargé du dossier : {}",
            if service.is_empty() {
                "Accueil"
            } else {
                tenant.service_name(service)
            }
        ),
    );
    // Where to reach it (R112-5): its postal address, phone and e-mail from the directory.
    if let Some(s) = tenant.service(service) {
        if !s.address.is_empty() {
            body(false, format!("Adresse : {}", s.address.join(", ")));
        }
        let phone = contacthub_core::identity::normalize_phone(&s.phone)
            .map(|p| contacthub_core::identity::display_phone(&p))
            .unwrap_or_default();
        match (phone.as_str(), s.email.as_str()) {
            ("", "") => {}
            (p, "") => body(false, format!("Téléphone : {p}")),
            ("", m) => body(false, format!("Courriel : {m}")),
            (p, m) => body(false, format!("Téléphone : {p} — courriel : {m}")),
        }
    }
    if !state.subject.is_empty() {
        body(false, format!("Objet : {}", state.subject));
    }
    body(false, String::new());
    body(
        false,
        format!(
            "Votre courrier a bien été enregistré. La commune s'engage à y répondre par écrit \
             dans un délai de {days} {unit}, soit au plus tard le {}.",
            date_fr(due_us(state, tenant))
        ),
    );
    if !state.request_reference.is_empty() && !follow_up_code.is_empty() {
        body(
            false,
            format!(
                "Pour savoir où en est votre demande, saisissez sa référence {} et le code de \
                 suivi {follow_up_code} sur la page « Suivre une demande » de l'espace citoyen{}.",
                state.request_reference,
                if tenant.portal_url.is_empty() {
                    String::new()
                } else {
                    format!(" ({}/suivi)", tenant.portal_url)
                }
            ),
        );
    }
    // When silence is a decision (L112-3): from which date, and the routes of appeal.
    if let Some(silence) = tenant.receipt.silence_for(state.category) {
        let months = tenant.receipt.silence_months;
        let decided = contacthub_core::courrier::paris(received)
            .date()
            .checked_add_months(chrono::Months::new(months))
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_default();
        body(
            false,
            format!(
                "Si votre courrier est une demande à laquelle la commune doit répondre par une \
                 décision, son silence pendant {months} mois vaudra décision {} : à défaut de \
                 réponse, votre demande sera réputée {} le {decided}.",
                match silence {
                    contacthub_core::tenant::Silence::Acceptation => "d'acceptation",
                    contacthub_core::tenant::Silence::Rejet => "de rejet",
                },
                match silence {
                    contacthub_core::tenant::Silence::Acceptation => "acceptée",
                    contacthub_core::tenant::Silence::Rejet => "rejetée",
                }
            ),
        );
        if !tenant.receipt.appeal.is_empty() {
            body(
                false,
                format!("Voies et délais de recours : {}", tenant.receipt.appeal),
            );
        }
    }
    body(
        false,
        "Merci de rappeler le numéro d'enregistrement dans toute correspondance.".into(),
    );
    render(&lines, &tenant.logo, &[0])
}

/// Whether a paragraph is a salutation (« Madame, Monsieur, », « Bonjour ») or a closing
/// formula (« Cordialement », « Veuillez agréer… »): the letter writes its own.
fn formula(paragraph: &str) -> Option<bool> {
    let p = contacthub_core::identity::fold_name(paragraph);
    let p = p.trim();
    let salutation = [
        "madame monsieur",
        "madame",
        "monsieur",
        "bonjour",
        "madame monsieur bonjour",
        "chere madame",
        "cher monsieur",
    ];
    if salutation.contains(&p) {
        return Some(true);
    }
    let closing = [
        "cordialement",
        "bien cordialement",
        "veuillez agreer",
        "nous vous prions d agreer",
        "je vous prie d agreer",
        "recevez madame monsieur",
    ];
    closing
        .iter()
        .any(|c| p == *c || (p.starts_with(c) && p.len() < 200))
        .then_some(false)
}

/// The paragraphs of an answer letter under its subject: the salutation, the agent's text
/// (without a salutation or closing typed into it: the template owns them), the closing
/// formula and the signature — the service's signatory by name and title when the communes
/// file names one, else the service by name. The same words the preview shows.
pub fn letter_body(answer: &Answer, tenant: &Tenant, service: &str) -> Vec<String> {
    let mut paragraphs: Vec<String> = answer
        .text
        .split('\n')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    while paragraphs.first().is_some_and(|p| formula(p) == Some(true)) {
        paragraphs.remove(0);
    }
    while paragraphs.last().is_some_and(|p| formula(p) == Some(false)) {
        paragraphs.pop();
    }
    let mut out = vec!["Madame, Monsieur,".to_string()];
    out.extend(paragraphs);
    out.push(
        "Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations \
         distinguées."
            .into(),
    );
    let directory = tenant.service(service);
    match directory.filter(|s| !s.signatory.is_empty()) {
        Some(s) => {
            out.push(s.signatory.clone());
            out.push(format!("{}, mairie de {}", s.name, tenant.name));
        }
        None if service.is_empty() => out.push(format!("La mairie de {}", tenant.name)),
        None => out.push(format!(
            "{}, mairie de {}",
            tenant.service_name(service),
            tenant.name
        )),
    }
    out
}

/// The answer letter of `answer` from `tenant`, for the request's `service`: letterhead, the
/// recipient in the envelope's window, the date it was written, its reference and subject,
/// the text in paragraphs, on as many pages as it takes.
pub fn answer_letter_pdf(answer: &Answer, tenant: &Tenant, service: &str) -> Vec<u8> {
    render(&letter_lines(answer, tenant, service), &tenant.logo, &[0])
}

/// Several answer letters of `tenant` in one document to print at once, each on its own
/// pages with the letterhead and logo: (answer, the request's service).
pub fn answer_letters_pdf(letters: &[(&Answer, &str)], tenant: &Tenant) -> Vec<u8> {
    let mut all = Vec::new();
    let mut firsts = Vec::new();
    for (answer, service) in letters {
        let offset = all.iter().map(|l: &Line| l.page + 1).max().unwrap_or(0);
        firsts.push(offset);
        all.extend(
            letter_lines(answer, tenant, service)
                .into_iter()
                .map(|l| Line {
                    page: l.page + offset,
                    ..l
                }),
        );
    }
    render(&all, &tenant.logo, &firsts)
}

/// Where each line of an answer letter goes.
fn letter_lines(answer: &Answer, tenant: &Tenant, service: &str) -> Vec<Line> {
    let written = answer
        .composed_at
        .as_ref()
        .and_then(ts::to_micros)
        .unwrap_or(0);
    let mut lines = Vec::new();
    let mut put = |page: usize, x_mm: f32, y_mm: f32, bold: bool, size: f32, text: String| {
        lines.push(Line {
            page,
            x_mm,
            y_mm,
            bold,
            size,
            text,
        })
    };
    put(
        0,
        20.0,
        20.0,
        true,
        14.0,
        format!("Mairie de {}", tenant.name),
    );
    for (i, l) in tenant.address.iter().enumerate() {
        put(0, 20.0, 27.0 + 5.0 * i as f32, false, 10.0, l.clone());
    }
    for (i, l) in answer.postal_lines.iter().take(6).enumerate() {
        put(0, 110.0, 50.0 + 5.5 * i as f32, false, 11.0, l.clone());
    }
    put(
        0,
        110.0,
        90.0,
        false,
        10.0,
        format!("{}, le {}", tenant.name, date_fr(written)),
    );
    put(
        0,
        20.0,
        100.0,
        false,
        10.0,
        if answer.follow_up_code.is_empty() {
            format!("Référence : {}", answer.request_reference)
        } else {
            format!(
                "Référence : {} — code de suivi : {}",
                answer.request_reference, answer.follow_up_code
            )
        },
    );
    let (mut page, mut y) = (0, 108.0);
    let mut body = |bold: bool, text: &str| {
        for l in wrap(text, 88) {
            if y > 275.0 {
                page += 1;
                y = 20.0;
            }
            put(page, 20.0, y, bold, 11.0, l);
            y += 6.0;
        }
        y += 3.0;
    };
    if !answer.subject.is_empty() {
        body(true, &format!("Objet : {}", answer.subject));
    }
    for paragraph in letter_body(answer, tenant, service) {
        body(false, &paragraph);
    }
    lines
}

/// Prints `lines`, and on the first page the commune's `logo` (if any) in the top right
/// corner, at most 40 × 25 mm, clear of the envelope's window.
fn render(lines: &[Line], logo: &[u8], logo_pages: &[usize]) -> Vec<u8> {
    render_on((WIDTH, HEIGHT), lines, logo, logo_pages)
}

/// A waiting-line ticket for an 80 mm receipt printer (80 × 90 mm): the commune and site,
/// the number in large type, the motive, the arrival (Paris time) and the wait expected then.
pub fn ticket_pdf(
    tenant: &Tenant,
    site_name: &str,
    number: &str,
    motive: &str,
    arrived_us: i64,
    ahead: u32,
    estimated_minutes: u32,
) -> Vec<u8> {
    let line = |y_mm: f32, bold: bool, size: f32, text: String| Line {
        page: 0,
        x_mm: 6.0,
        y_mm,
        bold,
        size,
        text,
    };
    let lines = vec![
        line(10.0, true, 11.0, format!("Mairie de {}", tenant.name)),
        line(16.0, false, 10.0, site_name.to_string()),
        line(42.0, true, 44.0, number.to_string()),
        line(52.0, false, 11.0, motive.to_string()),
        line(
            60.0,
            false,
            9.0,
            format!(
                "Arrivée le {}",
                contacthub_core::courrier::paris_display(arrived_us)
            ),
        ),
        line(
            67.0,
            false,
            9.0,
            match ahead {
                0 => "Vous êtes le prochain.".to_string(),
                1 => "1 personne avant vous.".to_string(),
                n => format!("{n} personnes avant vous."),
            },
        ),
        line(
            73.0,
            false,
            9.0,
            format!("Attente estimée : {estimated_minutes} min"),
        ),
        line(81.0, false, 8.0, "Votre numéro s'affichera".into()),
        line(85.0, false, 8.0, "sur l'écran de la salle.".into()),
    ];
    render_on((80.0 * MM, 90.0 * MM), &lines, &[], &[])
}

/// [`render`] on pages of `size` (points).
fn render_on(size: (f32, f32), lines: &[Line], logo: &[u8], logo_pages: &[usize]) -> Vec<u8> {
    let (regular, bold) = fonts();
    let mut document = Document::new();
    let pages = lines.iter().map(|l| l.page + 1).max().unwrap_or(1);
    for n in 0..pages {
        let Some(settings) = PageSettings::from_wh(size.0, size.1) else {
            return Vec::new();
        };
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        if let (true, Ok(image)) = (logo_pages.contains(&n), logo_image(logo)) {
            let (w, h) = image.size();
            let scale = (40.0 * MM / w.max(1) as f32).min(25.0 * MM / h.max(1) as f32);
            let (w, h) = (w as f32 * scale, h as f32 * scale);
            if let Some(size) = krilla::geom::Size::from_wh(w, h) {
                surface.push_transform(&krilla::geom::Transform::from_translate(
                    190.0 * MM - w,
                    12.0 * MM,
                ));
                surface.draw_image(image, size);
                surface.pop();
            }
        }
        for l in lines.iter().filter(|l| l.page == n) {
            if l.text.is_empty() {
                continue;
            }
            surface.draw_text(
                Point::from_xy(l.x_mm * MM, l.y_mm * MM),
                if l.bold {
                    bold.clone()
                } else {
                    regular.clone()
                },
                l.size,
                &l.text,
                false,
                TextDirection::Auto,
            );
        }
        surface.finish();
        page.finish();
    }
    // Nothing here can fail for these inputs (one page, text in an embedded font): an error
    // would be a bug, reported as an empty document rather than a panic.
    document.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use contacthub_core::tenant::Tenants;

    #[test]
    fn receipt_is_a_small_pdf_with_its_font_subset() {
        let t = Tenants::builtin();
        let state = CourrierState {
            chrono: "GIV-2026-000123".into(),
            subject: "Permis (modificatif) — cœur de ville".into(),
            category: contacthub_core::pb::Category::Urbanisme as i32,
            received_at: Some(ts::from_micros(1_790_000_000_000_000)),
            addressed_to_service: "urbanisme".into(),
            ..Default::default()
        };
        let pdf = receipt_pdf(
            &state,
            t.get("69091").unwrap(),
            &["Nguyễn Thị Minh Khai".into(), "3 rue Pasteur".into()],
            "ABCD-EFGH",
        );
        assert!(pdf.starts_with(b"%PDF-"));
        // The font is embedded as a subset: a few kilobytes, not the whole 750 KB file.
        assert!(
            pdf.windows(9).any(|w| w == b"FontFile2"),
            "an embedded TrueType font"
        );
        assert!(pdf.len() < 120_000, "{} bytes", pdf.len());
    }

    #[test]
    fn the_letter_owns_its_salutation_closing_and_signature() {
        let t = Tenants::builtin();
        let givors = t.get("69091").unwrap();
        let answer = Answer {
            text: "Madame, Monsieur,\nVotre acte est prêt.\nCordialement,".into(),
            ..Default::default()
        };
        let body = letter_body(&answer, givors, "etat-civil");
        assert_eq!(
            body,
            [
                "Madame, Monsieur,",
                "Votre acte est prêt.",
                "Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées.",
                "Claire Martin, responsable de l'état civil",
                "État civil, mairie de Givors",
            ]
        );
        let voirie = letter_body(&answer, givors, "voirie");
        assert_eq!(voirie.last().unwrap(), "Voirie, mairie de Givors");
        // A sentence that merely starts like a formula stays.
        let kept = Answer {
            text: "Bonjour à vous aussi : voici la réponse.".into(),
            ..Default::default()
        };
        assert_eq!(
            letter_body(&kept, givors, "")[1],
            "Bonjour à vous aussi : voici la réponse."
        );
    }

    #[test]
    fn a_long_answer_letter_runs_over_pages_and_is_the_same_twice() {
        let t = Tenants::builtin();
        let answer = Answer {
            request_reference: "GIV-D-2026-000042".into(),
            subject: "Votre demande de logement".into(),
            text: "Łukasz Żółć, votre dossier avance. ".repeat(400),
            postal_lines: vec!["Nguyễn Thị Minh Khai".into(), "69700 Givors".into()],
            composed_at: Some(ts::from_micros(1_790_000_000_000_000)),
            ..Default::default()
        };
        let pdf = answer_letter_pdf(&answer, t.get("69091").unwrap(), "logement");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        let count = text.find("/Count ").map(|i| &text[i + 7..i + 9]);
        assert!(
            count.is_some_and(|c| c.trim().parse::<u32>().is_ok_and(|n| n >= 2)),
            "pages: {count:?}"
        );
        assert_eq!(
            pdf,
            answer_letter_pdf(&answer, t.get("69091").unwrap(), "logement"),
            "the same letter gives the same bytes (its hash is its proof)"
        );
    }

    #[test]
    fn a_logo_is_printed_and_a_bad_one_refused() {
        // A 1×1 PNG.
        const PNG: &[u8] = &[
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
            0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
            0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
            0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x56, 0xc7,
            0x2f, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        ];
        let mut t = Tenants::builtin();
        let without = answer_letter_pdf(&Answer::default(), t.get("69091").unwrap(), "");
        t.set_logo("69091", PNG.to_vec(), check_logo).unwrap();
        let with = answer_letter_pdf(&Answer::default(), t.get("69091").unwrap(), "");
        // The only difference is the logo: an image object and its stream.
        assert!(
            with.len() > without.len() + 100,
            "the logo adds an image ({} → {} bytes)",
            without.len(),
            with.len()
        );
        let bad = t
            .set_logo("69091", b"GIF89a".to_vec(), check_logo)
            .unwrap_err();
        assert!(bad.to_string().contains("PNG or JPEG"), "{bad}");
    }

    #[test]
    fn dates_and_lines_are_french() {
        // 1_790_000_000 s is 21 September 2026.
        assert_eq!(date_fr(1_790_000_000_000_000), "21 septembre 2026");
        assert_eq!(wrap("un deux trois", 7), ["un deux", "trois"]);
    }
}
