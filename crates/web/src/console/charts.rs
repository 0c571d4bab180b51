//! Charts drawn on the server as SVG: bars and a line, with axes and labels, accessible
//! (`role="img"`, a `<title>` and a description; the pages put a data table beside each).
//! No script, no inline style: colours come from classes in console.css.

use maud::{html, Markup};

use crate::chart::at;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 48.0;

/// A round top for the y axis, at or above `max`, so that its four grid steps are whole
/// numbers (counts never get a tick at 1.25).
fn nice_max(max: f64) -> f64 {
    if max <= 4.0 {
        return 4.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 4.0, 8.0, 10.0] {
        if step * mag >= max {
            return step * mag;
        }
    }
    10.0 * mag
}

/// The `<svg>` element around `content`, named by its title and description. SVG elements
/// are written with their end tags: in HTML, a self-closing slash is what closes an element
/// inside `<svg>`, and maud writes none.
fn chart(id: &str, title: &str, desc: &str, content: Markup) -> Markup {
    html! {
        svg class="chart" viewBox={ "0 0 " (W) " " (H) } role="img"
            aria-labelledby={ (id) "-t " (id) "-d" } xmlns="http://www.w3.org/2000/svg" {
            title id={ (id) "-t" } { (title) }
            desc id={ (id) "-d" } { (desc) }
            (content)
        }
    }
}

fn y_axis(top: f64, fmt: &dyn Fn(f64) -> String) -> Markup {
    let plot_h = H - TOP - BOTTOM;
    html! {
        @for i in 0..=4 {
            @let y = H - BOTTOM - plot_h * f64::from(i) / 4.0;
            line class="grid" x1=(LEFT) x2=(W - RIGHT) y1=(at(y)) y2=(at(y)) {}
            text class="tick" x=(LEFT - 6.0) y=(at(y + 4.0)) text-anchor="end" {
                (fmt(top * f64::from(i) / 4.0))
            }
        }
        line class="axis" x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(H - BOTTOM) {}
        line class="axis" x1=(LEFT) x2=(W - RIGHT) y1=(H - BOTTOM) y2=(H - BOTTOM) {}
    }
}

/// A bar chart of labelled values.
pub(crate) fn bars(id: &str, title: &str, desc: &str, data: &[(String, u64)]) -> Markup {
    let max = nice_max(data.iter().map(|d| d.1).max().unwrap_or(0) as f64);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = data.len().max(1) as f64;
    let slot = plot_w / n;
    let content = html! {
        (y_axis(max, &|v| format!("{v:.0}")))
        @for (i, (label, v)) in data.iter().enumerate() {
            @let h = plot_h * (*v as f64) / max;
            @let x = LEFT + slot * i as f64 + slot * 0.15;
            rect class="bar" x=(at(x)) y=(at(H - BOTTOM - h)) width=(at(slot * 0.7))
                height=(at(h)) {}
            text class="value" x=(at(x + slot * 0.35)) y=(at((H - BOTTOM - h - 4.0).max(TOP + 10.0)))
                text-anchor="middle" { (v) }
            text class="label" x=(at(x + slot * 0.35)) y=(at(H - BOTTOM + 18.0))
                text-anchor="middle" { (label) }
        }
    };
    chart(id, title, desc, content)
}

/// A line over x = 0, 1, 2, ... with y in [0, y_max]; `y_fmt` labels the y axis.
pub(crate) fn line(
    id: &str,
    title: &str,
    desc: &str,
    x_label: &str,
    values: &[f64],
    y_max: f64,
    y_fmt: &dyn Fn(f64) -> String,
) -> Markup {
    let top = if y_max > 0.0 {
        y_max
    } else {
        nice_max(values.iter().cloned().fold(0.0, f64::max))
    };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let last = values.len().saturating_sub(1).max(1) as f64;
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = LEFT + plot_w * i as f64 / last;
            let y = H - BOTTOM - plot_h * (v / top).clamp(0.0, 1.0);
            format!("{},{}", at(x), at(y))
        })
        .collect::<Vec<_>>()
        .join(" ");
    let ticks = 6usize.min(values.len().max(1));
    let content = html! {
        (y_axis(top, y_fmt))
        polyline class="line" fill="none" points=(points) {}
        @for t in 0..=ticks {
            @let i = (last * t as f64 / ticks as f64).round();
            text class="tick" x=(at(LEFT + plot_w * i / last)) y=(at(H - BOTTOM + 16.0))
                text-anchor="middle" { (format_args!("{i:.0}")) }
        }
        text class="label" x=(at(LEFT + plot_w / 2.0)) y=(at(H - 8.0)) text-anchor="middle" {
            (x_label)
        }
    };
    chart(id, title, desc, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_accessible_and_escaped() {
        let svg = bars(
            "f",
            "Funnel <x>",
            "desc",
            &[("calls".into(), 10), ("<b>".into(), 3)],
        )
        .into_string();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"f-t\">Funnel &lt;x&gt;</title>"));
        assert!(svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        assert!(!svg.contains("style="));
    }

    #[test]
    fn line_handles_empty_and_single_values() {
        let fmt = |v: f64| format!("{v:.0}%");
        assert!(line("l", "t", "d", "s", &[], 100.0, &fmt)
            .into_string()
            .contains("<polyline"));
        let svg = line("l", "t", "d", "seconds", &[100.0, 50.0, 25.0], 100.0, &fmt).into_string();
        assert!(svg.contains("100%"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn count_axes_have_whole_ticks() {
        for (max, top) in [
            (0.0, 4.0),
            (3.0, 4.0),
            (5.0, 8.0),
            (12.0, 20.0),
            (250.0, 400.0),
        ] {
            assert_eq!(nice_max(max), top, "{max}");
            assert_eq!((top / 4.0).fract(), 0.0);
        }
    }
}
