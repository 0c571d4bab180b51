//! Charts drawn on the server as SVG: bars and a line, with axes and labels, accessible
//! (`role="img"`, a `<title>` and a description; the pages put a data table beside each).
//! No script, no inline style: colours come from classes in console.css.

use std::fmt::Write as _;

use crate::html::escape;

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

fn open(out: &mut String, id: &str, title: &str, desc: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        escape(title),
        escape(desc)
    );
}

fn y_axis(out: &mut String, top: f64, fmt: &dyn Fn(f64) -> String) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let y = H - BOTTOM - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&fmt(v))
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>",
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
}

/// A bar chart of labelled values.
pub(crate) fn bars(id: &str, title: &str, desc: &str, data: &[(String, u64)]) -> String {
    let mut out = String::new();
    open(&mut out, id, title, desc);
    let max = nice_max(data.iter().map(|d| d.1).max().unwrap_or(0) as f64);
    y_axis(&mut out, max, &|v| format!("{v:.0}"));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = data.len().max(1) as f64;
    let slot = plot_w / n;
    for (i, (label, v)) in data.iter().enumerate() {
        let h = plot_h * (*v as f64) / max;
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v}</text>\
             <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM - h,
            slot * 0.7,
            x + slot * 0.35,
            (H - BOTTOM - h - 4.0).max(TOP + 10.0),
            x + slot * 0.35,
            H - BOTTOM + 18.0,
            escape(label)
        );
    }
    out.push_str("</svg>");
    out
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
) -> String {
    let mut out = String::new();
    open(&mut out, id, title, desc);
    let top = if y_max > 0.0 {
        y_max
    } else {
        nice_max(values.iter().cloned().fold(0.0, f64::max))
    };
    y_axis(&mut out, top, y_fmt);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let last = values.len().saturating_sub(1).max(1) as f64;
    let mut points = String::new();
    for (i, v) in values.iter().enumerate() {
        let x = LEFT + plot_w * i as f64 / last;
        let y = H - BOTTOM - plot_h * (v / top).clamp(0.0, 1.0);
        let _ = write!(points, "{x:.1},{y:.1} ");
    }
    let _ = write!(
        out,
        "<polyline class=\"line\" fill=\"none\" points=\"{}\"/>",
        points.trim_end()
    );
    let ticks = 6usize.min(values.len().max(1));
    for t in 0..=ticks {
        let i = (last * t as f64 / ticks as f64).round();
        let x = LEFT + plot_w * i / last;
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{i:.0}</text>",
            H - BOTTOM + 16.0
        );
    }
    let _ = write!(
        out,
        "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></svg>",
        LEFT + plot_w / 2.0,
        H - 8.0,
        escape(x_label)
    );
    out
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
        );
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
        assert!(line("l", "t", "d", "s", &[], 100.0, &fmt).contains("<polyline"));
        let svg = line("l", "t", "d", "seconds", &[100.0, 50.0, 25.0], 100.0, &fmt);
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
