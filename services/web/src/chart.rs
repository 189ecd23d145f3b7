//! The dashboard's chart: requests opened and answered per month as SVG bars, computed here as
//! numbers (positions, heights) so the template only draws them. Pure.

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    /// `opened` or `answered` (its CSS class).
    pub kind: &'static str,
    /// What a screen reader and a tooltip say.
    pub title: String,
}

/// A month under the bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub x: u32,
    pub text: String,
}

/// A bar chart of two series per month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bars {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
    pub max: u64,
    /// The scale on the left: (y, value) at 0, half and the top.
    pub ticks: Vec<(u32, u64)>,
}

const PLOT: u32 = 160;
const TOP: u32 = 10;
const SLOT: u32 = 44;
const BAR: u32 = 16;

/// Bars for `(month, opened, answered)`, the tallest `PLOT` pixels high.
pub fn bars(months: &[(String, u64, u64)]) -> Bars {
    let max = months
        .iter()
        .map(|(_, o, a)| (*o).max(*a))
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: u64| (n.saturating_mul(u64::from(PLOT)) / max) as u32;
    let mut out = Bars {
        width: 40 + SLOT * months.len() as u32,
        height: TOP + PLOT + 30,
        max,
        ticks: [0, max / 2, max]
            .into_iter()
            .map(|v| (TOP + PLOT - scale(v), v))
            .collect(),
        ..Default::default()
    };
    out.ticks.dedup_by_key(|t| t.1);
    for (i, (month, opened, answered)) in months.iter().enumerate() {
        let x = 40 + SLOT * i as u32;
        for (k, (kind, n, what)) in [
            ("opened", *opened, "ouvertes"),
            ("answered", *answered, "répondues"),
        ]
        .into_iter()
        .enumerate()
        {
            let h = scale(n);
            out.bars.push(Bar {
                x: x + 4 + BAR * k as u32,
                y: TOP + PLOT - h,
                height: h,
                kind,
                title: format!(
                    "{} : {n} demandes {what}",
                    contacthub_core::render::month_fr(month)
                ),
            });
        }
        out.labels.push(Label {
            x: x + 4 + BAR,
            text: contacthub_core::render::month_short_fr(month),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tallest_bar_fills_the_plot() {
        let b = bars(&[("2026-03".into(), 10, 5), ("2026-04".into(), 0, 20)]);
        let heights: Vec<u32> = b.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, [80, 40, 0, 160]);
        assert_eq!(b.bars[3].y, TOP);
        assert_eq!(b.labels[1].text, "avr.");
        assert!(b.bars[0].title.contains("10 demandes ouvertes"));
        assert_eq!(bars(&[]).bars.len(), 0);
    }
}
