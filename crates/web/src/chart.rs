//! A line chart drawn on the server as SVG: no script and nothing loaded from elsewhere.
//!
//! The chart is an image to screen readers (`role="img"` named by its `<title>` and
//! `<desc>`); the page gives the same figures as a table beside it. Colours come from
//! attributes and classes (the Content-Security-Policy forbids inline style).

use maud::{html, Markup};

/// Drawing size in SVG units; CSS scales it to the column's width (narrow, so that the
/// labels stay readable when a phone shrinks it).
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 230.0;
/// Room for the axis labels.
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;
/// Horizontal grid lines (and y labels) at most, besides zero.
const Y_TICKS: u64 = 4;
/// Time labels on the x axis.
const X_TICKS: usize = 4;

/// What to draw: points `(x, y)` with x ascending (seconds) and y the running total.
pub(crate) struct LineChart<'a> {
    pub points: &'a [(u64, u64)],
    /// Short name of the chart (its `<title>`); plain text, escaped here.
    pub title: &'a str,
    /// One or two sentences saying what it shows (its `<desc>`); plain text, escaped here.
    pub description: &'a str,
    /// Text for a time on the x axis; plain text, escaped here.
    pub x_label: &'a dyn Fn(u64) -> String,
    /// Prefix of the element ids, unique on the page.
    pub id: &'a str,
}

/// A "nice" step (1, 2 or 5 times a power of ten) so that `max` needs at most `ticks` steps.
pub(crate) fn nice_step(max: u64, ticks: u64) -> u64 {
    let raw = max.div_ceil(ticks.max(1)).max(1);
    let mut power = 1u64;
    while power.saturating_mul(10) <= raw {
        power *= 10;
    }
    [1u64, 2, 5, 10]
        .into_iter()
        .map(|m| m.saturating_mul(power))
        .find(|step| *step >= raw)
        .unwrap_or(raw)
}

/// The number with thin spaces between thousands, as the page writes counts.
pub(crate) fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    // The leading group holds 1 to 3 digits, every later one 3 (written without
    // `is_multiple_of`, which is newer than the workspace's rust-version).
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        r => r,
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    let (first, rest) = digits.as_bytes().split_at(head.min(digits.len()));
    out.extend(first.iter().map(|b| char::from(*b)));
    for group in rest.chunks(3) {
        out.push('\u{202f}');
        out.extend(group.iter().map(|b| char::from(*b)));
    }
    out
}

/// A coordinate as the SVG writes it: one decimal (written straight into the page). The
/// console's charts write theirs the same way.
#[derive(Clone, Copy)]
pub(crate) struct At(f64);

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

pub(crate) fn at(v: f64) -> At {
    At(v)
}

impl LineChart<'_> {
    /// The `<svg>` element. SVG elements are written with their end tags: in HTML, a
    /// self-closing slash is what closes an element inside `<svg>`, and maud writes none.
    pub fn render(&self) -> Markup {
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let (x0, x1) = match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (a.0, b.0),
            (Some(a), _) => (a.0, a.0 + 1),
            _ => (0, 1),
        };
        let y_max_data = self.points.iter().map(|p| p.1).max().unwrap_or(0);
        let step = nice_step(y_max_data, Y_TICKS);
        let y_max = y_max_data.div_ceil(step).max(1).saturating_mul(step);
        let sx = |x: u64| LEFT + (x.saturating_sub(x0)) as f64 / (x1 - x0) as f64 * plot_w;
        let sy = |y: u64| TOP + plot_h - y as f64 / y_max as f64 * plot_h;

        // Grid lines and y labels: 0, step, 2 step, ... up to y_max.
        let y_ticks =
            std::iter::successors(Some(0u64), |y| y.checked_add(step)).take_while(|y| *y <= y_max);
        // X labels: evenly spaced times, the last at the right edge; a label equal to the one
        // before (a span of a few minutes) is left out.
        let mut previous: Option<String> = None;
        let mut x_ticks = Vec::with_capacity(X_TICKS);
        for i in 0..X_TICKS {
            let t = x0 + (x1 - x0) * i as u64 / (X_TICKS as u64 - 1);
            let label = (self.x_label)(t);
            if previous.as_deref() == Some(label.as_str()) {
                continue;
            }
            previous = Some(label.clone());
            let anchor = match i {
                0 => "start",
                i if i == X_TICKS - 1 => "end",
                _ => "middle",
            };
            x_ticks.push((at(sx(t)), anchor, label));
        }
        let line = self
            .points
            .iter()
            .map(|(x, y)| format!("{},{}", at(sx(*x)), at(sy(*y))))
            .collect::<Vec<_>>()
            .join(" ");
        let id = self.id;
        html! {
            svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-labelledby={ (id) "-title " (id) "-desc" } xmlns="http://www.w3.org/2000/svg" {
                title id={ (id) "-title" } { (self.title) }
                desc id={ (id) "-desc" } { (self.description) }
                g class="grid" aria-hidden="true" {
                    @for y in y_ticks {
                        @let py = sy(y);
                        line x1=(LEFT) x2=(at(WIDTH - RIGHT)) y1=(at(py)) y2=(at(py)) {}
                        text x=(at(LEFT - 8.0)) y=(at(py + 5.0)) text-anchor="end" {
                            (group_digits(y))
                        }
                    }
                    @for (px, anchor, label) in &x_ticks {
                        line class="tick" x1=(px) x2=(px) y1=(at(TOP + plot_h))
                            y2=(at(TOP + plot_h + 5.0)) {}
                        text x=(px) y=(at(HEIGHT - 10.0)) text-anchor=(anchor) { (label) }
                    }
                }
                // The area under the line, then the line.
                @if let Some((x, y)) = self.points.last() {
                    polygon class="area" aria-hidden="true"
                        points={ (at(sx(x0))) "," (at(sy(0))) " " (line) " " (at(sx(x1))) "," (at(sy(0))) } {}
                    polyline class="line" aria-hidden="true" points=(line) {}
                    circle class="dot" aria-hidden="true" cx=(at(sx(*x))) cy=(at(sy(*y))) r="4" {}
                }
                line class="axis" aria-hidden="true" x1=(LEFT) x2=(at(WIDTH - RIGHT))
                    y1=(at(TOP + plot_h)) y2=(at(TOP + plot_h)) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0, 4), 1);
        assert_eq!(nice_step(3, 4), 1);
        assert_eq!(nice_step(10, 4), 5);
        assert_eq!(nice_step(100, 4), 50);
        assert_eq!(nice_step(1234, 4), 500);
        assert_eq!(nice_step(100_000, 4), 50_000);
        assert!(nice_step(u64::MAX, 4) >= u64::MAX / 4);
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1\u{202f}000");
        assert_eq!(group_digits(1_234_567), "1\u{202f}234\u{202f}567");
    }

    /// A chart titled "t", described "d", with ids from "c".
    fn plain(points: &[(u64, u64)], x_label: &dyn Fn(u64) -> String) -> String {
        LineChart {
            points,
            title: "t",
            description: "d",
            x_label,
            id: "c",
        }
        .render()
        .into_string()
    }

    #[test]
    fn chart_is_labelled_escaped_and_scaled() {
        let points = [(0, 0), (600, 10), (1200, 40)];
        let label = |t: u64| format!("<{t}>");
        let svg = LineChart {
            points: &points,
            title: "Signatures <over> time",
            description: "From 0 to 40 & more.",
            x_label: &label,
            id: "c1",
        }
        .render()
        .into_string();
        assert!(svg.starts_with("<svg class=\"chart\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("role=\"img\" aria-labelledby=\"c1-title c1-desc\""));
        assert!(svg.contains("<title id=\"c1-title\">Signatures &lt;over&gt; time</title>"));
        assert!(svg.contains("<desc id=\"c1-desc\">From 0 to 40 &amp; more.</desc>"));
        assert!(svg.contains("&lt;1200&gt;"), "x labels are escaped: {svg}");
        assert!(!svg.contains("style="), "no inline style under the CSP");
        // The last point sits at the right edge and at the top of a 0..40 axis (step 10).
        assert!(svg.contains("cx=\"460.0\" cy=\"16.0\""), "{svg}");
        assert!(svg.contains(">40</text>"));
    }

    #[test]
    fn repeated_time_labels_are_left_out() {
        let points = [(0, 0), (90, 3)];
        let label = |t: u64| format!("m{}", t / 60);
        let svg = plain(&points, &label);
        // Ticks at 0, 30, 60 and 90 s: m0, m0, m1, m1.
        assert_eq!(svg.matches(">m0</text>").count(), 1, "{svg}");
        assert_eq!(svg.matches(">m1</text>").count(), 1, "{svg}");
    }

    #[test]
    fn a_single_point_or_none_does_not_divide_by_zero() {
        let label = |t: u64| t.to_string();
        for points in [&[][..], &[(5, 0)][..]] {
            let svg = plain(points, &label);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            // Inside `<svg>` an element without an end tag would hold the ones after it.
            for element in ["line", "text", "polygon", "polyline", "circle"] {
                assert_eq!(
                    svg.matches(&format!("<{element} ")).count(),
                    svg.matches(&format!("</{element}>")).count(),
                    "{element}: {svg}"
                );
            }
        }
    }
}
