//! Plots, drawn with plotters as standalone SVG: an opaque white background, a title, axis
//! titles with units, log axes said to be log and labelled with their ticks, and every
//! median drawn with its 95% interval.
//!
//! Two shapes: [`Chart::dots`] (one row per measurement, the median as a dot with its
//! interval as a bar, the value printed in the row's label so it is never clipped) and
//! [`Chart::lines`] (series over a numeric x, such as payload size, busy share or
//! percentile, with a legend beside the plot, not over it).

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::results::Experiment;
use crate::stats::Sample;

/// How many markers `marker!` draws, picked by a series' index modulo this.
const MARKERS: usize = 4;

/// Draws a marker distinct per series (`$i`), so that series drawn over each other stay
/// visible: `$draw` is `draw_series` on a chart or a closure drawing one element.
macro_rules! marker {
    ($i:expr, $at:expr, $color:expr, |$el:ident| $draw:expr) => {{
        let (at, color) = ($at, $color);
        match $i % MARKERS {
            0 => {
                let $el = Circle::new(at, 4, color.filled());
                $draw
            }
            1 => {
                let $el = TriangleMarker::new(at, 6, color.filled());
                $draw
            }
            2 => {
                let $el = Circle::new(at, 5, color.stroke_width(2));
                $draw
            }
            _ => {
                let $el = Cross::new(at, 5, color.stroke_width(2));
                $draw
            }
        }
    }};
}

/// How an axis's tick values are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticks {
    /// Plain numbers.
    Plain,
    /// Byte sizes: 64 B, 4 KiB, 1 MiB.
    Bytes,
    /// Durations given in ns: 40 ns, 1 µs, 2 ms.
    Nanos,
    /// Shares from 0 to 1, printed as percentages.
    Percent,
    /// Custom labels at integer positions 0, 1, 2...
    Labels(&'static [&'static str]),
}

/// One axis.
#[derive(Clone, Debug)]
pub struct Axis {
    /// Its title, with the unit (and "log scale" when it is).
    pub title: String,
    /// Logarithmic.
    pub log: bool,
    /// How ticks are printed.
    pub ticks: Ticks,
}

impl Axis {
    /// The label of tick `v`. On a logarithmic axis only the ticks at 1, 2 and 5 times a
    /// power of ten are labelled, so the crowded ticks near each decade's end stay unlabelled
    /// instead of overlapping.
    fn label(&self, v: f64) -> String {
        if self.log && v > 0.0 && matches!(self.ticks, Ticks::Plain | Ticks::Nanos) {
            let mantissa = v / 10f64.powf(v.log10().floor());
            if ![1.0, 2.0, 5.0, 10.0]
                .iter()
                .any(|m| (mantissa - m).abs() < 0.05 * m)
            {
                return String::new();
            }
        }
        tick(self.ticks, v, false)
    }

    /// A linear axis.
    pub fn linear(title: &str, ticks: Ticks) -> Self {
        Axis {
            title: title.into(),
            log: false,
            ticks,
        }
    }

    /// A logarithmic axis; "(log scale)" is added to its title.
    pub fn log(title: &str, ticks: Ticks) -> Self {
        Axis {
            title: format!("{title} (log scale)"),
            log: true,
            ticks,
        }
    }
}

/// A point with its interval.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Position on the x axis.
    pub x: f64,
    /// Median.
    pub y: f64,
    /// Lower end of its interval.
    pub low: f64,
    /// Upper end of its interval.
    pub high: f64,
}

impl Point {
    /// A point at `x` for the median and interval of `s`.
    pub fn of(x: f64, s: &Sample) -> Self {
        Point {
            x,
            y: s.median,
            low: s.ci_low,
            high: s.ci_high,
        }
    }
}

/// A named line of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points, by x.
    pub points: Vec<Point>,
}

/// One row of a dot chart.
#[derive(Clone, Debug)]
pub struct Dot {
    /// The row's label (its value is appended when drawn).
    pub label: String,
    /// Median and interval.
    pub sample: Sample,
}

/// What a chart draws.
#[derive(Clone, Debug)]
pub enum Body {
    /// One dot with its interval per row; the value axis is x.
    Dots(Vec<Dot>),
    /// Lines over a numeric x.
    Lines(Vec<Series>),
}

/// A chart, written as `plots/<id>.svg`.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File stem and HTML id.
    pub id: String,
    /// The title drawn above it.
    pub title: String,
    /// The x axis.
    pub x: Axis,
    /// The y axis (for dots: unused).
    pub y: Axis,
    /// What it draws.
    pub body: Body,
}

impl Chart {
    /// A dot chart of `dots` against a value axis titled `value_title` with `ticks`; the axis
    /// is logarithmic when the values span more than 20x, else linear from 0.
    pub fn dots(id: &str, title: &str, value_title: &str, ticks: Ticks, dots: Vec<Dot>) -> Self {
        let lo = dots
            .iter()
            .map(|d| d.sample.ci_low)
            .fold(f64::INFINITY, f64::min);
        let hi = dots.iter().map(|d| d.sample.ci_high).fold(0.0, f64::max);
        let x = if lo > 0.0 && hi / lo > 20.0 {
            Axis::log(value_title, ticks)
        } else {
            Axis::linear(value_title, ticks)
        };
        Chart {
            id: id.into(),
            title: title.into(),
            x,
            y: Axis::linear("", Ticks::Plain),
            body: Body::Dots(dots),
        }
    }

    /// A line chart.
    pub fn lines(id: &str, title: &str, x: Axis, y: Axis, series: Vec<Series>) -> Self {
        Chart {
            id: id.into(),
            title: title.into(),
            x,
            y,
            body: Body::Lines(series),
        }
    }

    /// The default chart of an experiment: each row's headline metric as a dot.
    pub fn of_rows(e: &Experiment) -> Self {
        let unit = e.rows.first().map_or("ns", |r| r.headline().unit.as_str());
        let name = e
            .rows
            .first()
            .map_or("time per operation".to_string(), |r| {
                r.headline().name.clone()
            });
        let ticks = if unit == "ns" {
            Ticks::Nanos
        } else {
            Ticks::Plain
        };
        let dots = e
            .rows
            .iter()
            .map(|r| Dot {
                label: r.label.clone(),
                sample: r.headline().sample.clone(),
            })
            .collect();
        Chart::dots(
            &e.name,
            &format!("{}: {name}, median and 95% interval", e.name),
            &format!("{name} ({unit})"),
            ticks,
            dots,
        )
    }

    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> String {
        let mut out = String::new();
        let (w, h) = self.size();
        {
            let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
            // Errors from an in-memory backend cannot happen but for bad ranges; a chart
            // that fails to draw says so on its canvas rather than aborting the run.
            if let Err(e) = self.draw(&root) {
                let _ = root.fill(&WHITE);
                let _ = root.draw(&Text::new(
                    format!("plot failed: {e}"),
                    (10, 20),
                    ("sans-serif", 16),
                ));
            }
            let _ = root.present();
        }
        out
    }

    fn size(&self) -> (u32, u32) {
        match &self.body {
            Body::Dots(d) => (980, 110 + 30 * d.len() as u32),
            Body::Lines(_) => (980, 480),
        }
    }

    fn draw(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match &self.body {
            Body::Dots(dots) => self.draw_dots(root, dots),
            Body::Lines(series) => self.draw_lines(root, series),
        }
    }

    fn draw_dots(
        &self,
        root: &DrawingArea<SVGBackend<'_>, Shift>,
        dots: &[Dot],
    ) -> Result<(), String> {
        let labels: Vec<String> = dots
            .iter()
            .map(|d| format!("{}  {}", d.label, tick(self.x.ticks, d.sample.median, true)))
            .collect();
        // Font sizes are in points; plotters writes them as px / 1.24: 15 pt is about 12 px,
        // whose characters average under 7 px in a sans-serif font.
        let label_w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10) as u32 * 7 + 20;
        let n = dots.len().max(1);
        let lo = dots
            .iter()
            .map(|d| d.sample.ci_low.min(d.sample.median))
            .fold(f64::INFINITY, f64::min);
        let hi = dots
            .iter()
            .map(|d| d.sample.ci_high.max(d.sample.median))
            .fold(0.0, f64::max)
            .max(1e-9);
        let y_range = -0.5..(n as f64 - 0.5);
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, ("sans-serif", 21))
            .margin(14)
            .margin_right(40)
            .x_label_area_size(50)
            .y_label_area_size(label_w.min(620));
        let fmt_y = |v: &f64| {
            let i = v.round();
            if (v - i).abs() > 0.01 || i < 0.0 || i as usize >= n {
                return String::new();
            }
            labels[n - 1 - i as usize].clone()
        };
        let y_pos = |i: usize| (n - 1 - i) as f64;
        // The same mesh and series on a log or a linear x axis: the two coordinate types
        // differ, so the drawing is written once, for whichever chart is built.
        macro_rules! draw_dots {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc(&self.x.title)
                    .x_labels(10)
                    .y_labels(n)
                    .y_label_formatter(&fmt_y)
                    .x_label_formatter(&|v| self.x.label(*v))
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 16))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()
                    .map_err(err)?;
                for (i, d) in dots.iter().enumerate() {
                    let s = &d.sample;
                    chart
                        .draw_series([ErrorBar::new_horizontal(
                            y_pos(i),
                            s.ci_low,
                            s.median,
                            s.ci_high,
                            BLUE.stroke_width(2),
                            10,
                        )])
                        .map_err(err)?;
                    chart
                        .draw_series([Circle::new((s.median, y_pos(i)), 4, BLUE.filled())])
                        .map_err(err)?;
                }
            }};
        }
        if self.x.log {
            let lo = lo.max(hi * 1e-9) / 1.5;
            draw_dots!(builder.build_cartesian_2d((lo..hi * 1.5).log_scale(), y_range));
        } else {
            draw_dots!(builder.build_cartesian_2d(0.0..hi * 1.08, y_range));
        }
        Ok(())
    }

    fn draw_lines(
        &self,
        root: &DrawingArea<SVGBackend<'_>, Shift>,
        series: &[Series],
    ) -> Result<(), String> {
        let legend_w = series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(8) as u32
            * 7
            + 50;
        let (w, _) = root.dim_in_pixel();
        let (plot_area, legend) = root.split_horizontally(w.saturating_sub(legend_w.min(420)));
        let points = || series.iter().flat_map(|s| s.points.iter());
        let bounds = |f: &dyn Fn(&Point) -> (f64, f64)| {
            points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                let (a, b) = f(p);
                (lo.min(a), hi.max(b))
            })
        };
        let (x_lo, x_hi) = bounds(&|p| (p.x, p.x));
        let (y_lo, y_hi) = bounds(&|p| (p.low.min(p.y), p.high.max(p.y)));
        if !x_lo.is_finite() || !y_hi.is_finite() {
            return Err("no points".into());
        }
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut builder = ChartBuilder::on(&plot_area);
        builder
            .caption(&self.title, ("sans-serif", 21))
            .margin(14)
            .margin_right(24)
            .x_label_area_size(50)
            .y_label_area_size(80);
        let x_span = if self.x.log {
            (x_lo / 1.6, x_hi * 1.6)
        } else {
            let pad = ((x_hi - x_lo) * 0.05).max(0.05);
            (x_lo - pad, x_hi + pad)
        };
        let y_span = if self.y.log {
            (y_lo.max(y_hi * 1e-9) / 1.6, y_hi * 1.6)
        } else {
            (0.0, y_hi * 1.1)
        };
        let colors = palette();
        macro_rules! draw_with {
            ($x:expr, $y:expr) => {{
                let mut chart = builder.build_cartesian_2d($x, $y).map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc(&self.x.title)
                    .y_desc(&self.y.title)
                    .x_labels(match self.x.ticks {
                        Ticks::Labels(names) => names.len(),
                        _ => 12,
                    })
                    .y_labels(10)
                    .x_label_formatter(&|v| self.x.label(*v))
                    .y_label_formatter(&|v| self.y.label(*v))
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 16))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()
                    .map_err(err)?;
                for (i, s) in series.iter().enumerate() {
                    let color = colors[i % colors.len()];
                    let style = color.stroke_width(2);
                    chart
                        .draw_series(LineSeries::new(s.points.iter().map(|p| (p.x, p.y)), style))
                        .map_err(err)?;
                    for p in &s.points {
                        chart
                            .draw_series([ErrorBar::new_vertical(
                                p.x, p.low, p.y, p.high, style, 8,
                            )])
                            .map_err(err)?;
                        marker!(i, (p.x, p.y), color, |m| chart
                            .draw_series([m])
                            .map(|_| ())
                            .map_err(err)?);
                    }
                }
            }};
        }
        match (self.x.log, self.y.log) {
            (true, true) => draw_with!(
                (x_span.0..x_span.1)
                    .log_scale()
                    .base(log_base(self.x.ticks)),
                (y_span.0..y_span.1).log_scale()
            ),
            (true, false) => draw_with!(
                (x_span.0..x_span.1)
                    .log_scale()
                    .base(log_base(self.x.ticks)),
                y_span.0..y_span.1
            ),
            (false, true) => draw_with!(x_span.0..x_span.1, (y_span.0..y_span.1).log_scale()),
            (false, false) => draw_with!(x_span.0..x_span.1, y_span.0..y_span.1),
        }
        // The legend, beside the plot.
        for (i, s) in series.iter().enumerate() {
            let y = 60 + 26 * i as i32;
            let color = colors[i % colors.len()];
            legend
                .draw(&PathElement::new(
                    vec![(4, y), (30, y)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            marker!(i, (17, y), color, |m| legend.draw(&m).map_err(err)?);
            legend
                .draw(&Text::new(
                    s.name.clone(),
                    (38, y - 8),
                    ("sans-serif", 15).into_font(),
                ))
                .map_err(err)?;
        }
        Ok(())
    }
}

fn log_base(ticks: Ticks) -> f64 {
    if ticks == Ticks::Bytes {
        4.0
    } else {
        10.0
    }
}

/// Ten colours, and `MARKERS` markers: since 10 is not a multiple of 4, series `i` and
/// `i + 10` differ in marker, so no two of a chart's first 20 series look alike (the channel
/// chart has nine).
fn palette() -> [RGBColor; 10] {
    [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0xbc, 0xbd, 0x22),
    ]
}

/// A tick label (`exact`: print a measured value with more digits).
pub fn tick(ticks: Ticks, v: f64, exact: bool) -> String {
    match ticks {
        Ticks::Plain => {
            if v == 0.0 {
                "0".into()
            } else if v.abs() >= 100.0 || (v.fract() == 0.0 && !exact) {
                format!("{v:.0}")
            } else if v.abs() >= 10.0 {
                format!("{v:.1}")
            } else if v.abs() >= 0.01 {
                let s = format!("{v:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                format!("{v:.1e}")
            }
        }
        Ticks::Bytes => {
            let (div, unit) = if v >= (1u64 << 30) as f64 {
                ((1u64 << 30) as f64, "GiB")
            } else if v >= (1u64 << 20) as f64 {
                ((1u64 << 20) as f64, "MiB")
            } else if v >= 1024.0 {
                (1024.0, "KiB")
            } else {
                (1.0, "B")
            };
            let x = v / div;
            if (x - x.round()).abs() < 0.01 {
                format!("{:.0} {unit}", x.round())
            } else {
                format!("{x:.1} {unit}")
            }
        }
        Ticks::Nanos => {
            if v == 0.0 {
                return "0".into();
            }
            let (div, unit) = if v.abs() >= 1e9 {
                (1e9, "s")
            } else if v.abs() >= 1e6 {
                (1e6, "ms")
            } else if v.abs() >= 1e3 {
                (1e3, "µs")
            } else {
                (1.0, "ns")
            };
            let x = v / div;
            if exact {
                if x >= 100.0 {
                    format!("{x:.0} {unit}")
                } else {
                    format!("{x:.1} {unit}")
                }
            } else if (x - x.round()).abs() < 1e-6 * x.abs().max(1.0) {
                format!("{:.0} {unit}", x.round())
            } else {
                let s = format!("{x:.2}");
                format!("{} {unit}", s.trim_end_matches('0').trim_end_matches('.'))
            }
        }
        Ticks::Percent => format!("{:.0}%", v * 100.0),
        Ticks::Labels(names) => {
            let i = v.round();
            if (v - i).abs() > 0.01 || i < 0.0 {
                String::new()
            } else {
                names
                    .get(i as usize)
                    .map_or(String::new(), |s| s.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series' look: its colour and its marker (as `marker!` picks it).
    fn look(i: usize) -> (RGBColor, usize) {
        let colors = palette();
        (colors[i % colors.len()], i % MARKERS)
    }

    #[test]
    fn the_first_twenty_series_of_a_chart_each_look_different() {
        for i in 0..20 {
            for j in 0..i {
                assert_ne!(look(i), look(j), "series {j} and {i} look alike");
            }
        }
    }
}
