//! Charts for the reports, drawn with plotters and written as SVG and PNG.
//!
//! Three shapes cover every chart of DESIGN 6: [`Bars`] (categories, optionally several series
//! side by side, interval whiskers and a note such as `n=42` on each bar), [`WeekLines`] (one
//! line per series over ISO weeks, optional bars on a second axis and marked events such as a
//! self-service launch) and [`Sparkline`]. Text is drawn with DejaVu Sans, embedded in the
//! binary, so charts look the same on a machine without any font package. A chart without data
//! says so in the image instead of coming out blank.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::lake::write_atomic;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const SANS: &str = "sans-serif";

/// Registers the embedded font (once) under plotters' `sans-serif` family.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_err() {
            panic!("the embedded DejaVu Sans font does not parse");
        }
    });
}

/// Colours for series, distinguishable and print-friendly (Tableau 10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Something that can be drawn on any plotters backend.
pub trait Plot {
    fn title(&self) -> &str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32) {
        (760, 380)
    }
    /// Nothing to draw: the chart says "no data" instead.
    fn is_empty(&self) -> bool;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB>;
}

/// How values on a y axis read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A share from 0 to 1, shown as a percentage.
    Percent,
    /// A plain number.
    Number,
}

impl Scale {
    fn format(self, v: f64) -> String {
        match self {
            Scale::Percent => format!("{:.0}%", v * 100.0),
            Scale::Number if v.abs() >= 10_000.0 => format!("{:.0}k", v / 1000.0),
            Scale::Number if v.fract() == 0.0 || v.abs() >= 100.0 => format!("{v:.0}"),
            Scale::Number => format!("{v:.1}"),
        }
    }
}

/// One series of a [`Bars`] chart: a value per category, optionally an interval and a note.
#[derive(Debug, Clone, Default)]
pub struct BarSeries {
    pub name: String,
    pub values: Vec<Option<f64>>,
    /// Interval bounds per category (drawn as whiskers when both are there).
    pub low: Vec<Option<f64>>,
    pub high: Vec<Option<f64>>,
    /// Text over each bar, e.g. the sample size.
    pub notes: Vec<String>,
}

/// Bars per category; several series stand side by side.
#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub scale: Scale,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Fixed top of the y axis (else from the data).
    pub y_max: Option<f64>,
}

/// Lines over ISO weeks, optionally with bars on a second y axis and marked events.
#[derive(Debug, Clone)]
pub struct WeekLines {
    pub title: String,
    pub y_label: String,
    pub scale: Scale,
    /// Week labels, oldest first (`2026-W47`).
    pub weeks: Vec<String>,
    pub lines: Vec<Line>,
    /// Bars on the right-hand axis: its name and a value per week.
    pub bars: Option<(String, Vec<f64>)>,
    /// Events at a (fractional) week position, e.g. a launch in the middle of week 3 is 3.4.
    pub marks: Vec<(f64, String)>,
    pub y_max: Option<f64>,
}

/// One line of a [`WeekLines`] chart.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub name: String,
    /// A value per week; `None` breaks the line.
    pub values: Vec<Option<f64>>,
    /// Weeks whose value rests on a small sample: drawn as a hollow point.
    pub small: Vec<bool>,
}

/// A small trend line without axes, for KPI tiles (SVG only).
#[derive(Debug, Clone)]
pub struct Sparkline {
    pub title: String,
    pub values: Vec<Option<f64>>,
}

/// A chart written to disk: its file stem and its SVG text (to inline in a page).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: String,
    pub svg: String,
}

fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// Draws `plot`, or a "no data" panel when it has nothing to show.
fn draw_any<P: Plot, DB: DrawingBackend>(plot: &P, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
    root.fill(&WHITE)?;
    if !plot.is_empty() {
        return plot.draw(root);
    }
    let (w, h) = root.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    root.draw(&Rectangle::new(
        [(1, 1), (w - 2, h - 2)],
        RGBColor(200, 200, 200).stroke_width(1),
    ))?;
    let centred = |size: f64| {
        TextStyle::from((SANS, size).into_font()).pos(Pos::new(HPos::Center, VPos::Center))
    };
    let grey = RGBColor(120, 120, 120);
    if h < 100 {
        // A sparkline: no room for the title.
        return root.draw(&Text::new(
            "no data",
            (w / 2, h / 2),
            centred(11.0).color(&grey),
        ));
    }
    root.draw(&Text::new(
        plot.title().to_string(),
        (w / 2, h / 2 - 14),
        centred(16.0),
    ))?;
    root.draw(&Text::new(
        "no data for this period",
        (w / 2, h / 2 + 14),
        centred(14.0).color(&grey),
    ))
}

/// The chart as SVG text.
pub fn svg<P: Plot>(plot: &P) -> Result<String> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, plot.size()).into_drawing_area();
        draw_any(plot, &root).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Writes `dir/<name>.svg` and `dir/<name>.png`, each atomically, and returns the SVG.
pub fn render<P: Plot>(plot: &P, dir: &Path, name: &str) -> Result<Rendered> {
    let text = svg(plot)?;
    write_atomic(&dir.join(format!("{name}.svg")), text.as_bytes())?;
    // plotters picks the image format from the extension: the temporary name ends in .png too.
    let tmp = dir.join(format!(".{name}.tmp.png"));
    {
        let root = BitMapBackend::new(&tmp, plot.size()).into_drawing_area();
        draw_any(plot, &root).map_err(err)?;
        root.present().map_err(err)?;
    }
    let path = dir.join(format!("{name}.png"));
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Rendered {
        name: name.to_string(),
        svg: text,
    })
}

/// The series legend, on a light box.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Drawn<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((SANS, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
}

/// The label of the category at integer position `x`, none between categories.
fn label_at(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

fn top_of(values: impl Iterator<Item = f64>, fixed: Option<f64>) -> f64 {
    fixed.unwrap_or_else(|| {
        let m = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
        if m > 0.0 { m * 1.18 } else { 1.0 }
    })
}

impl Plot for Bars {
    fn title(&self) -> &str {
        &self.title
    }

    fn is_empty(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.values.iter().all(Option::is_none))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let n = self.categories.len();
        let top = top_of(
            self.series
                .iter()
                .flat_map(|s| s.values.iter().chain(&s.high).flatten().copied()),
            self.y_max,
        );
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (SANS, 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(62)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)?;
        let scale = self.scale;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| label_at(&self.categories, *x))
            .y_desc(&self.y_label)
            .y_label_formatter(&|y| scale.format(*y))
            .label_style((SANS, 12))
            .axis_desc_style((SANS, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let k = self.series.len() as f64;
        let width = 0.8 / k;
        let note_style =
            TextStyle::from((SANS, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (si, s) in self.series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let left = |i: usize| i as f64 - 0.4 + width * si as f64;
            let centre = |i: usize| left(i) + width / 2.0;
            chart
                .draw_series(s.values.iter().enumerate().filter_map(|(i, v)| {
                    v.map(|v| {
                        Rectangle::new(
                            [(left(i) + 0.01, 0.0), (left(i) + width - 0.01, v)],
                            color.mix(0.85).filled(),
                        )
                    })
                }))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
            let whisker = BLACK.stroke_width(1);
            // Where each note goes: over the bar, or over its whisker.
            let mut over = Vec::with_capacity(n);
            for i in 0..n {
                let mut top_of_bar = s.values.get(i).copied().flatten().unwrap_or(0.0);
                if let (Some(Some(lo)), Some(Some(hi))) = (s.low.get(i), s.high.get(i)) {
                    let (c, cap) = (centre(i), width / 6.0);
                    chart.draw_series([
                        PathElement::new(vec![(c, *lo), (c, *hi)], whisker),
                        PathElement::new(vec![(c - cap, *lo), (c + cap, *lo)], whisker),
                        PathElement::new(vec![(c - cap, *hi), (c + cap, *hi)], whisker),
                    ])?;
                    top_of_bar = top_of_bar.max(*hi);
                }
                over.push(top_of_bar);
            }
            chart.draw_series(
                s.notes
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| !t.is_empty())
                    .map(|(i, t)| {
                        Text::new(
                            t.clone(),
                            (centre(i), over[i] + top * 0.01),
                            note_style.clone(),
                        )
                    }),
            )?;
        }
        if self.series.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

impl Plot for WeekLines {
    fn title(&self) -> &str {
        &self.title
    }

    fn is_empty(&self) -> bool {
        self.weeks.is_empty()
            || (self
                .lines
                .iter()
                .all(|l| l.values.iter().all(Option::is_none))
                && self
                    .bars
                    .as_ref()
                    .is_none_or(|(_, b)| b.iter().all(|v| *v == 0.0)))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let n = self.weeks.len();
        let x = -0.5f64..(n as f64 - 0.5);
        let top = top_of(
            self.lines
                .iter()
                .flat_map(|l| l.values.iter().flatten().copied()),
            self.y_max,
        );
        let bar_top = top_of(self.bars.iter().flat_map(|(_, v)| v.iter().copied()), None);
        // Short week labels ("W47"), at most about 13 on the axis.
        let short: Vec<String> = self
            .weeks
            .iter()
            .map(|w| w.split_once('-').map_or(w.clone(), |(_, s)| s.to_string()))
            .collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (SANS, 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(62)
            .right_y_label_area_size(if self.bars.is_some() { 62 } else { 0 })
            .build_cartesian_2d(x.clone(), 0f64..top)?
            .set_secondary_coord(x, 0f64..bar_top);
        let scale = self.scale;
        chart
            .configure_mesh()
            .x_labels(n.min(13))
            .x_label_formatter(&|x| label_at(&short, *x))
            .y_desc(&self.y_label)
            .y_label_formatter(&|y| scale.format(*y))
            .label_style((SANS, 12))
            .axis_desc_style((SANS, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        if let Some((name, values)) = &self.bars {
            chart
                .configure_secondary_axes()
                .y_desc(name)
                .label_style((SANS, 12))
                .axis_desc_style((SANS, 13))
                .y_label_formatter(&|y| Scale::Number.format(*y))
                .draw()?;
            let grey = RGBColor(190, 200, 215);
            chart
                .draw_secondary_series(values.iter().enumerate().map(|(i, v)| {
                    let i = i as f64;
                    Rectangle::new([(i - 0.35, 0.0), (i + 0.35, *v)], grey.filled())
                }))?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], grey.filled()));
        }
        for (si, line) in self.lines.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            // A missing week breaks the line rather than bridging it.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for (i, v) in line.values.iter().enumerate() {
                match v {
                    Some(v) => runs.last_mut().expect("one run").push((i as f64, *v)),
                    None => runs.push(Vec::new()),
                }
            }
            chart
                .draw_series(
                    runs.iter()
                        .filter(|r| !r.is_empty())
                        .map(|r| PathElement::new(r.clone(), color.stroke_width(2))),
                )?
                .label(line.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart.draw_series(runs.iter().flatten().map(|p| {
                let small = line.small.get(p.0 as usize).copied().unwrap_or(false);
                let style = if small {
                    color.stroke_width(1)
                } else {
                    color.filled()
                };
                Circle::new(*p, if small { 4 } else { 3 }, style)
            }))?;
        }
        let mark_style =
            TextStyle::from((SANS, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Top));
        for (at, label) in &self.marks {
            chart.draw_series([PathElement::new(
                vec![(*at, 0.0), (*at, top)],
                RGBColor(60, 60, 60).stroke_width(2),
            )])?;
            chart.draw_series([Text::new(
                format!(" {label}"),
                (*at, top * 0.99),
                mark_style.clone(),
            )])?;
        }
        // The dual-axis context's own legend, which also lists the bars of the second axis.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .label_font((SANS, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
        Ok(())
    }
}

impl Plot for Sparkline {
    fn title(&self) -> &str {
        &self.title
    }

    fn size(&self) -> (u32, u32) {
        (180, 40)
    }

    fn is_empty(&self) -> bool {
        self.values.iter().flatten().count() < 2
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let points: Vec<(f64, f64)> = self
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
            .collect();
        let (lo, hi) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let pad = ((hi - lo) * 0.1).max(1e-9);
        let mut chart = ChartBuilder::on(root).margin(4).build_cartesian_2d(
            0f64..(self.values.len() as f64 - 1.0).max(1.0),
            (lo - pad)..(hi + pad),
        )?;
        let color = PALETTE[0];
        chart.draw_series([PathElement::new(points.clone(), color.stroke_width(2))])?;
        let last = *points.last().expect("two points at least");
        chart.draw_series([Circle::new(last, 3, color.filled())])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_only_at_categories() {
        let l = vec!["email".to_string(), "chat".to_string()];
        assert_eq!(label_at(&l, 1.0), "chat");
        assert_eq!(label_at(&l, 0.5), "");
        assert_eq!(label_at(&l, 2.0), "");
        assert_eq!(label_at(&l, -1.0), "");
    }

    #[test]
    fn scales_format_values() {
        assert_eq!(Scale::Percent.format(0.826), "83%");
        assert_eq!(Scale::Number.format(12.0), "12");
        assert_eq!(Scale::Number.format(2.5), "2.5");
        assert_eq!(Scale::Number.format(25_000.0), "25k");
    }

    #[test]
    fn empty_chart_says_no_data_and_text_is_escaped() {
        let bars = Bars {
            title: "CSAT <script>alert(1)</script>".into(),
            y_label: "CSAT".into(),
            scale: Scale::Percent,
            categories: vec!["chat".into()],
            series: vec![BarSeries {
                name: "csat".into(),
                values: vec![None],
                ..Default::default()
            }],
            y_max: Some(1.0),
        };
        let s = svg(&bars).unwrap();
        assert!(s.contains("no data for this period"), "{s}");
        assert!(!s.contains("<script>"), "{s}");
        assert!(s.contains("&lt;script&gt;"), "{s}");
    }
}
