//! Hand-written SVG charts: a line chart over the years and a funnel bar. Each chart has a
//! `<title>` and a `<desc>` for screen readers, labelled axes and a legend, and tells its series
//! apart by dash pattern and marker shape as well as by colour, so it reads in greyscale.

use std::fmt::Write as _;

/// How a series is drawn: (stroke colour, dash pattern, marker).
const STYLES: [(&str, &str, Marker); 5] = [
    ("#1f3b73", "", Marker::Circle),
    ("#b5451b", "8 4", Marker::Square),
    ("#2e7d32", "2 3", Marker::Triangle),
    ("#6a1b9a", "10 3 2 3", Marker::Diamond),
    ("#555555", "4 4", Marker::Cross),
];

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

/// One line of a chart: its legend text and a value (or none) per x position.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
    /// How it is drawn; `None`: by its place among the chart's series.
    pub look: Option<Look>,
    /// Written as the series' `data-series`, with its values unrounded in `data-points`
    /// (`2019=14.5;2020=` for a missing value), so a reader program can check what is drawn.
    pub key: String,
}

/// A series' colour and marker (a place in the chart's styles) and whether its line is dashed,
/// so that related series (a region and the median of the regions for one victim gender) share
/// a colour and marker and differ by the dash.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub style: usize,
    pub dashed: bool,
}

/// The dash of a series drawn with [`Look::dashed`].
const DASHED: &str = "7 4";

/// A line chart: x positions (years) with their labels, any number of series (the region's
/// rate and the median of the regions are two series like any others).
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// `Figur 1. Personuppklaringsprocent …`.
    pub title: String,
    pub desc: String,
    pub x_label: String,
    pub y_label: String,
    pub x: Vec<String>,
    pub series: Vec<Series>,
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn marker(out: &mut String, m: Marker, x: f64, y: f64, colour: &str) {
    let _ = match m {
        Marker::Circle => write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}"/>"#
        ),
        Marker::Square => write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{colour}"/>"#,
            x - 4.0,
            y - 4.0
        ),
        Marker::Triangle => write!(
            out,
            r#"<path d="M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" fill="{colour}"/>"#,
            y - 5.0,
            x + 5.0,
            y + 4.0,
            x - 5.0,
            y + 4.0
        ),
        Marker::Diamond => write!(
            out,
            r#"<path d="M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z" fill="white" stroke="{colour}" stroke-width="2"/>"#,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0
        ),
        Marker::Cross => write!(
            out,
            r#"<path d="M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}" stroke="{colour}" stroke-width="2"/>"#,
            x - 4.0,
            y - 4.0,
            x + 4.0,
            y + 4.0,
            x - 4.0,
            y + 4.0,
            x + 4.0,
            y - 4.0
        ),
    };
}

/// A round step for the y axis that gives about five ticks up to `max`.
fn step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

impl LineChart {
    /// The chart as an inline `<svg>` element.
    pub fn render(&self, id: &str) -> String {
        let (width, height) = (640.0, 300.0);
        let (left, right, top, bottom) = (60.0, 170.0, 40.0, 50.0);
        let plot_w = width - left - right;
        let plot_h = height - top - bottom;
        let max = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .fold(0.0f64, |a, &b| a.max(b));
        let step = step(if max > 0.0 { max } else { 10.0 });
        let top_value = (max / step).ceil().max(1.0) * step;
        let n = self.x.len().max(1);
        let x_of = |i: usize| {
            if n == 1 {
                left + plot_w / 2.0
            } else {
                left + plot_w * i as f64 / (n - 1) as f64
            }
        };
        let y_of = |v: f64| top + plot_h * (1.0 - v / top_value);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" class="chart"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
            escape(&self.title),
            escape(&self.desc)
        );
        let _ = write!(
            out,
            r#"<text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#,
            escape(&self.title)
        );
        // Grid and y ticks.
        let mut v = 0.0;
        while v <= top_value + step / 2.0 {
            let y = y_of(v);
            let _ = write!(
                out,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#cccccc" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                left + plot_w,
                left - 6.0,
                y + 4.0,
                format_tick(v)
            );
            v += step;
        }
        // Axes.
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="#000"/><line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000"/>"##,
            top + plot_h,
            top + plot_h,
            left + plot_w,
            top + plot_h
        );
        for (i, label) in self.x.iter().enumerate() {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
                x_of(i),
                top + plot_h + 16.0,
                escape(label)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            left + plot_w / 2.0,
            height - 10.0,
            escape(&self.x_label)
        );
        let _ = write!(
            out,
            r#"<text x="14" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
            top + plot_h / 2.0,
            top + plot_h / 2.0,
            escape(&self.y_label)
        );
        for (k, series) in self.series.iter().enumerate() {
            let (colour, dash, m) = match series.look {
                None => STYLES[k % STYLES.len()],
                Some(look) => {
                    let (colour, _, m) = STYLES[look.style % STYLES.len()];
                    (colour, if look.dashed { DASHED } else { "" }, m)
                }
            };
            let points: Vec<String> = self
                .x
                .iter()
                .zip(&series.values)
                .map(|(x, v)| match v {
                    Some(v) => format!("{x}={v}"),
                    None => format!("{x}="),
                })
                .collect();
            let _ = write!(
                out,
                r#"<g class="series" data-series="{}" data-points="{}">"#,
                escape(&series.key),
                escape(&points.join(";"))
            );
            let dash_attr = if dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{dash}""#)
            };
            // A line through consecutive known values; a gap where a value is missing.
            let mut path = String::new();
            let mut pen_down = false;
            for (i, v) in series.values.iter().enumerate() {
                match v {
                    Some(v) => {
                        let _ = write!(
                            path,
                            "{}{:.1},{:.1} ",
                            if pen_down { "L" } else { "M" },
                            x_of(i),
                            y_of(*v)
                        );
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            if !path.is_empty() {
                let _ = write!(
                    out,
                    r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2.5"{dash_attr}/>"#,
                    path.trim_end()
                );
            }
            for (i, v) in series.values.iter().enumerate() {
                if let Some(v) = v {
                    marker(&mut out, m, x_of(i), y_of(*v), colour);
                }
            }
            // Legend entry: a line sample with the marker, and the label.
            let ly = top + 10.0 + 22.0 * k as f64;
            let lx = left + plot_w + 16.0;
            let _ = write!(
                out,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2.5"{dash_attr}/>"#,
                lx + 36.0
            );
            marker(&mut out, m, lx + 18.0, ly, colour);
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                lx + 42.0,
                ly + 4.0,
                escape(&series.label)
            );
            out.push_str("</g>");
        }
        out.push_str("</svg>");
        out
    }
}

fn format_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}").replace('.', ",")
    }
}

/// A horizontal bar of `value` out of `max` (the funnel's steps), `label` read by screen readers.
pub fn bar(value: f64, max: f64, label: &str) -> String {
    let width = if max > 0.0 {
        (value / max).clamp(0.0, 1.0) * 100.0
    } else {
        0.0
    };
    format!(
        r##"<svg viewBox="0 0 100 8" width="100%" height="8" preserveAspectRatio="none" role="img" aria-label="{}"><rect x="0" y="0" width="100" height="8" fill="#eeeeee"/><rect x="0" y="0" width="{width:.1}" height="8" fill="#1f3b73"/></svg>"##,
        escape(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_title_desc_axes_and_a_legend_per_series() {
        let chart = LineChart {
            title: "Figur 1. Test <1>".into(),
            desc: "Beskrivning".into(),
            x_label: "År".into(),
            y_label: "Procent".into(),
            x: vec!["2019".into(), "2020".into()],
            series: vec![
                Series {
                    label: "Kvinnor".into(),
                    values: vec![Some(14.0), Some(12.5)],
                    look: None,
                    key: "k".into(),
                },
                Series {
                    label: "Män".into(),
                    values: vec![None, Some(7.0)],
                    look: None,
                    key: "m".into(),
                },
                Series {
                    label: "Medianen".into(),
                    values: vec![Some(10.25), None],
                    look: Some(Look {
                        style: 0,
                        dashed: true,
                    }),
                    key: "median".into(),
                },
            ],
        };
        let svg = chart.render("f1");
        assert!(svg.contains("<title id=\"f1-title\">Figur 1. Test &lt;1&gt;</title>"));
        assert!(svg.contains("<desc id=\"f1-desc\">Beskrivning</desc>"));
        assert!(svg.contains(">År</text>") && svg.contains(">Procent</text>"));
        assert!(svg.contains(">Kvinnor</text>") && svg.contains(">Män</text>"));
        assert!(
            svg.contains("stroke-dasharray=\"8 4\""),
            "the second series is dashed"
        );
        assert!(
            svg.contains("stroke=\"#1f3b73\" stroke-width=\"2.5\" stroke-dasharray=\"7 4\""),
            "a series with a look takes its style's colour and the dash"
        );
        assert!(svg.contains(r#"data-series="median" data-points="2019=10.25;2020=""#));
        assert!(svg.contains(r#"data-series="k" data-points="2019=14;2020=12.5""#));
        assert_eq!(step(14.0), 5.0);
        assert_eq!(step(64.0), 20.0);
    }
}
