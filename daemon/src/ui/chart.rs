//! Bar charts drawn as SVG on the server: no script, no external library,
//! and the CSP allows them (inline SVG markup, styled by class from the
//! embedded stylesheet).

use maud::{Markup, html};

/// One bar: a label (a day) and its stacked parts (e.g. successes, failures).
pub struct Bar {
    pub label: String,
    pub parts: [u64; 2],
}

const W: u32 = 720;
const H: u32 = 160;
const PAD_LEFT: u32 = 36;
const PAD_BOTTOM: u32 = 22;

/// A bar per entry, stacked two parts (`names` say what each part is);
/// every bar has a tooltip with its numbers.
pub fn bars(title: &str, names: [&str; 2], data: &[Bar]) -> Markup {
    let max = data
        .iter()
        .map(|b| b.parts[0] + b.parts[1])
        .max()
        .unwrap_or(0)
        .max(1);
    let n = data.len().max(1) as u32;
    let plot_w = W - PAD_LEFT;
    let plot_h = H - PAD_BOTTOM;
    let slot = plot_w as f64 / f64::from(n);
    let bar_w = (slot * 0.8).max(1.0);
    let y = |v: u64| plot_h as f64 * (1.0 - v as f64 / max as f64);
    // Label every k-th bar so they do not overlap.
    let every = (data.len() / 10).max(1);
    html! {
        figure.chart {
            svg viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(title) {
                title { (title) }
                line.axis x1=(PAD_LEFT) y1=(plot_h) x2=(W) y2=(plot_h) {}
                text.tick x=(PAD_LEFT - 4) y="10" text-anchor="end" { (max) }
                text.tick x=(PAD_LEFT - 4) y=(plot_h) text-anchor="end" { "0" }
                @for (i, b) in data.iter().enumerate() {
                    @let x = f64::from(PAD_LEFT) + slot * i as f64 + (slot - bar_w) / 2.0;
                    @let total = b.parts[0] + b.parts[1];
                    g {
                        title { (b.label) ": " (b.parts[0]) " " (names[0]) ", " (b.parts[1]) " " (names[1]) }
                        rect.bar0 x=(fmt(x)) y=(fmt(y(b.parts[0]))) width=(fmt(bar_w)) height=(fmt(plot_h as f64 - y(b.parts[0]))) {}
                        @if b.parts[1] > 0 {
                            rect.bar1 x=(fmt(x)) y=(fmt(y(total))) width=(fmt(bar_w)) height=(fmt(y(b.parts[0]) - y(total))) {}
                        }
                    }
                    @if i % every == 0 {
                        text.tick x=(fmt(x + bar_w / 2.0)) y=(H - 6) text-anchor="middle" { (short(&b.label)) }
                    }
                }
            }
            figcaption {
                span.key0 { "■" } " " (names[0]) "  "
                span.key1 { "■" } " " (names[1])
            }
        }
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// `2024-05-17` as `05-17`.
fn short(label: &str) -> &str {
    label.get(5..).unwrap_or(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_group_per_bar_with_its_numbers() {
        let data = vec![
            Bar {
                label: "2024-05-01".into(),
                parts: [3, 1],
            },
            Bar {
                label: "2024-05-02".into(),
                parts: [0, 0],
            },
        ];
        let svg = bars("Actions per day", ["ok", "failed"], &data).into_string();
        assert_eq!(svg.matches("<g>").count(), 2);
        assert!(svg.contains("2024-05-01: 3 ok, 1 failed"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(!svg.contains("style="), "the CSP forbids inline styles");
        let empty = bars("none", ["a", "b"], &[]).into_string();
        assert!(empty.contains("<svg"));
    }
}
