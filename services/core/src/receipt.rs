//! The acknowledgement of receipt (accusé de réception) of a letter, as a one-page PDF written
//! by hand: standard Helvetica fonts with WinAnsiEncoding, so French text needs no embedded
//! font and any PDF reader prints it.

use crate::courrier::{due_us, paris};
use crate::pb::CourrierState;
use crate::tenant::Tenant;
use contacthub_proto::ts;

/// The receipt of `state` from `tenant`, addressed to `recipient` lines (name, address).
pub fn receipt_pdf(state: &CourrierState, tenant: &Tenant, recipient: &[String]) -> Vec<u8> {
    let date = |us: i64| paris(us).format("%d/%m/%Y").to_string();
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
    let mut lines: Vec<(bool, f32, String)> = vec![
        (true, 16.0, format!("Mairie de {}", tenant.name)),
        (false, 10.0, String::new()),
    ];
    for r in recipient {
        lines.push((false, 11.0, r.clone()));
    }
    lines.extend([
        (false, 11.0, String::new()),
        (true, 14.0, "Accusé de réception".to_string()),
        (false, 11.0, String::new()),
        (
            false,
            11.0,
            format!("N° d'enregistrement : {}", state.chrono),
        ),
        (false, 11.0, format!("Reçu le : {}", date(received))),
        (
            false,
            11.0,
            format!(
                "Service chargé du dossier : {}",
                if service.is_empty() {
                    "accueil"
                } else {
                    service
                }
            ),
        ),
    ]);
    if !state.subject.is_empty() {
        lines.push((false, 11.0, format!("Objet : {}", state.subject)));
    }
    lines.extend([
        (false, 11.0, String::new()),
        (
            false,
            11.0,
            format!("Votre courrier a bien été enregistré. La commune s'engage à y répondre dans un délai de {days} jours,"),
        ),
        (
            false,
            11.0,
            format!("soit au plus tard le {}.", date(due_us(state, tenant))),
        ),
        (
            false,
            11.0,
            "Merci de rappeler le numéro d'enregistrement dans toute correspondance.".to_string(),
        ),
    ]);
    let mut content = String::from("BT\n56 790 Td\n");
    for (bold, size, text) in &lines {
        let font = if *bold { "F2" } else { "F1" };
        content += &format!(
            "/{font} {size} Tf\n0 -{:.0} Td\n({}) Tj\n",
            size * 1.5,
            escape(text)
        );
    }
    content += "ET\n";
    let content = win_ansi(&content);

    let mut pdf: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".to_vec(),
        [
            format!("<< /Length {} >>\nstream\n", content.len()).into_bytes(),
            content,
            b"\nendstream".to_vec(),
        ]
        .concat(),
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('(', "\\(")
        .replace(')', "\\)")
}

/// Windows-1252 bytes of a text; characters it lacks become `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{0}'..='\u{7f}' | '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            'œ' => 0x9c,
            'Œ' => 0x8c,
            'Ÿ' => 0x9f,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Tenants;

    #[test]
    fn receipt_is_a_well_formed_pdf() {
        let t = Tenants::builtin();
        let state = CourrierState {
            chrono: "GIV-2026-000123".into(),
            subject: "Permis (modificatif) — cœur de ville".into(),
            category: crate::pb::Category::Urbanisme as i32,
            received_at: Some(ts::from_micros(1_790_000_000_000_000)),
            addressed_to_service: "urbanisme".into(),
            ..Default::default()
        };
        let pdf = receipt_pdf(&state, t.get("69091").unwrap(), &["Marie Durand".into()]);
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("(N\u{fffd} d'enregistrement : GIV-2026-000123) Tj"));
        assert!(text.contains("Permis \\(modificatif\\)"));
        assert!(
            pdf.windows(b"c\x9cur".len()).any(|w| w == b"c\x9cur"),
            "œ in WinAnsi"
        );
        // Every xref offset points at its object.
        let sx = pdf.windows(10).rposition(|w| w == b"startxref\n").unwrap() + 10;
        let tail = std::str::from_utf8(&pdf[sx..]).unwrap();
        let xref_at: usize = tail.lines().next().unwrap().parse().unwrap();
        let table = std::str::from_utf8(&pdf[xref_at..]).unwrap();
        for (i, line) in table.lines().skip(3).take(6).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
        // Due date: 30 days for urbanisme.
        assert!(text.contains("30 jours"));
    }
}
