//! The acknowledgement of receipt (accusé de réception) of a letter: an A4 PDF with the
//! commune's letterhead, the sender's name and postal address where a window envelope (DL or
//! C5, French layout) shows it, the chrono number, French dates and the committed answer date.
//! Text is set in DejaVu Sans, embedded (subset) in every file, so any name in any Latin,
//! Vietnamese, Polish, Turkish… writing prints as written. Pure: bytes in, bytes out.

use crate::courrier::{due_us, paris};
use crate::pb::CourrierState;
use crate::tenant::Tenant;
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

/// French months, for dates people read (`3 mars 2026`).
const MONTHS: [&str; 12] = [
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

/// A date in French, Paris time: `3 mars 2026`.
pub fn date_fr(us: i64) -> String {
    use chrono::Datelike;
    let d = paris(us).date();
    format!("{} {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

/// A line to print: where (millimetres from the left and from the top), bold or not, size.
struct Line {
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
/// lines, as known).
pub fn receipt_pdf(state: &CourrierState, tenant: &Tenant, recipient: &[String]) -> Vec<u8> {
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
                "accueil"
            } else {
                service
            }
        ),
    );
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
    body(
        false,
        "Merci de rappeler le numéro d'enregistrement dans toute correspondance.".into(),
    );
    render(&lines)
}

fn render(lines: &[Line]) -> Vec<u8> {
    let (regular, bold) = fonts();
    let mut document = Document::new();
    let settings = PageSettings::from_wh(WIDTH, HEIGHT).expect("A4 is a valid page size");
    let mut page = document.start_page_with(settings);
    let mut surface = page.surface();
    for l in lines {
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
    // Nothing here can fail for these inputs (one page, text in an embedded font): an error
    // would be a bug, reported as an empty document rather than a panic.
    document.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Tenants;

    #[test]
    fn receipt_is_a_small_pdf_with_its_font_subset() {
        let t = Tenants::builtin();
        let state = CourrierState {
            chrono: "GIV-2026-000123".into(),
            subject: "Permis (modificatif) — cœur de ville".into(),
            category: crate::pb::Category::Urbanisme as i32,
            received_at: Some(ts::from_micros(1_790_000_000_000_000)),
            addressed_to_service: "urbanisme".into(),
            ..Default::default()
        };
        let pdf = receipt_pdf(
            &state,
            t.get("69091").unwrap(),
            &["Nguyễn Thị Minh Khai".into(), "3 rue Pasteur".into()],
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
    fn dates_and_lines_are_french() {
        // 1_790_000_000 s is 21 September 2026.
        assert_eq!(date_fr(1_790_000_000_000_000), "21 septembre 2026");
        assert_eq!(wrap("un deux trois", 7), ["un deux", "trois"]);
    }
}
