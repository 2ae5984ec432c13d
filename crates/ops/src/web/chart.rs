//! The consent page's monthly charts: per consent type, rows written per
//! month (new consents, withdrawals, "not required") as bars and the share
//! of accounts consenting at each month's end as a line, over the report's
//! 24 months; ENROLL's chart marks when each terms-of-use version was first
//! seen.
//!
//! How they are drawn (plotters, SVG only, no inline styles) and what the
//! drawings share is in `plot.rs`.
//!
//! Each part is drawn as its own layer with the same coordinates, wrapped
//! in a `<g>` that names it (`data-kind`) and carries the numbers drawn
//! (`data-values`), so the page's tests and screen readers find series in
//! the DOM, not by colour. The table beside the chart holds the same
//! numbers.

use plotters::chart::{ChartBuilder, DualCoordChartContext};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::{
    Cartesian2d, Circle, IntoDrawingArea, IntoFont, LineSeries, PathElement, RGBColor, Rectangle,
    SVGBackend, Text, WHITE,
};
use plotters::style::Color;

use super::numbers;
use super::plot::{err, group, join};
// The shared pieces and the account timeline, where they have always been
// reachable.
pub use super::plot::{
    css_id, ChartError, SlotAxis, CONSENTED, HEIGHT, NOT_REQUIRED, SHARE, TERMS, WIDTH, WITHDRAWN,
};
pub use super::timeline::timeline;
use crate::consent_records::{ConsentReport, TypeSummary};
use boinc_db::consent::report::Month;

type Primary = Cartesian2d<SlotAxis, RangedCoordf64>;
type Secondary = Cartesian2d<RangedCoordf64, RangedCoordf64>;
type Ctx<'a, 'b> = DualCoordChartContext<'a, SVGBackend<'b>, Primary, Secondary>;

/// A terms-of-use version first seen inside the chart's months.
#[derive(Debug, Clone, PartialEq)]
pub struct TermsMark {
    pub version: i64,
    /// Position on the month axis: month index plus the fraction of the
    /// month gone when it was first seen.
    pub x: f64,
}

/// The numbers one chart draws (and its table shows).
#[derive(Debug, Clone)]
pub struct ChartData {
    pub shortname: String,
    pub months: Vec<Month>,
    /// Live accounts (the share's denominator).
    pub accounts: i64,
    pub terms: Vec<TermsMark>,
}

impl ChartData {
    pub fn of(t: &TypeSummary, accounts: i64) -> Self {
        let months = t.monthly.clone();
        let terms = t
            .by_terms_version
            .iter()
            .filter_map(|v| Some((v.terms_version_id?, v.first_seen?)))
            .filter_map(|(id, seen)| {
                let i = months.iter().rposition(|m| m.start <= seen)?;
                // The report's own month: its length, near enough for a mark.
                let end = months
                    .get(i + 1)
                    .map_or(months[i].start + 31 * 86400, |m| m.start);
                let frac = (seen - months[i].start) as f64 / (end - months[i].start).max(1) as f64;
                Some(TermsMark {
                    version: id,
                    x: i as f64 + frac.clamp(0.0, 0.999),
                })
            })
            .collect();
        Self {
            shortname: t.shortname.clone(),
            months,
            accounts,
            terms,
        }
    }

    /// Share (percent) of accounts consenting at each month's end.
    pub fn shares(&self) -> Vec<f64> {
        self.months
            .iter()
            .map(|m| {
                if self.accounts > 0 {
                    m.consenting_at_end as f64 * 100.0 / self.accounts as f64
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// One consent type's chart as the page caches it.
#[derive(Debug, Clone)]
pub struct RenderedChart {
    pub shortname: String,
    /// `None`: drawing failed (logged); the page still shows the table.
    pub svg: Option<String>,
}

/// Every type's chart of a report (the share of the report's accounts).
pub fn render_report(r: &ConsentReport) -> Vec<RenderedChart> {
    r.consent_types
        .iter()
        .map(|t| RenderedChart {
            shortname: t.shortname.clone(),
            svg: render(&ChartData::of(t, r.users))
                .map_err(|e| tracing::error!(consent_type = %t.shortname, "{e}"))
                .ok(),
        })
        .collect()
}

/// A rendered chart: the SVG (trusted markup: numbers, month labels and
/// the escaped type name only) for the page.
pub fn render(d: &ChartData) -> Result<String, ChartError> {
    let n = d.months.len();
    if n == 0 {
        return Err(ChartError("no months to draw".to_owned()));
    }
    let kinds: [(&str, RGBColor, Vec<i64>); 3] = [
        (
            "consented",
            CONSENTED,
            d.months.iter().map(|m| m.consented_rows).collect(),
        ),
        (
            "withdrawn",
            WITHDRAWN,
            d.months.iter().map(|m| m.withdrawn_rows).collect(),
        ),
        (
            "not-required",
            NOT_REQUIRED,
            d.months.iter().map(|m| m.not_required_rows).collect(),
        ),
    ];
    let top = kinds
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .max()
        .unwrap_or(0);
    let ymax = nice_max(top);
    // A label every third month, ending with the report's own month.
    let keys: Vec<f64> = (0..n)
        .filter(|i| (n - 1 - i).is_multiple_of(3))
        .map(|i| i as f64 + 0.5)
        .collect();
    let labels: Vec<String> = d.months.iter().map(|m| m.label.clone()).collect();
    let spec = Spec {
        months: n,
        ymax,
        keys: &keys,
    };

    let name = boinc_db::text::xml::escape(&d.shortname);
    let id = css_id(&d.shortname);
    let first = labels.first().map(String::as_str).unwrap_or("");
    let last = labels.last().map(String::as_str).unwrap_or("");
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"consent-chart\" id=\"chart-{id}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         aria-labelledby=\"chart-title-{id}\"><title id=\"chart-title-{id}\">{name}: consent rows \
         written per month and accounts consenting at each month's end, {first} to {last} \
         (UTC); the table beside it has the numbers</title>"
    );
    let axes = spec.layer(true, |c| {
        c.configure_mesh()
            .disable_x_mesh()
            .y_labels(6)
            .max_light_lines(0)
            .x_label_formatter(&|x| {
                labels
                    .get(x.floor().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .y_label_formatter(&|y| numbers::count(y.round() as i64))
            .y_desc("rows written per month")
            .x_desc("month (UTC)")
            .axis_desc_style(("sans-serif", 14).into_font())
            .label_style(("sans-serif", 13).into_font())
            .draw()
            .map_err(err)?;
        c.configure_secondary_axes()
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .y_desc("accounts consenting at month end")
            .axis_desc_style(("sans-serif", 14).into_font())
            .label_style(("sans-serif", 13).into_font())
            .draw()
            .map_err(err)?;
        Ok(())
    })?;
    out.push_str(&group("axes", "axes", "", &axes));

    for (k, (kind, colour, values)) in kinds.iter().enumerate() {
        let left = 0.1 + 0.27 * k as f64;
        let svg = spec.layer(false, |c| {
            c.draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x = i as f64 + left;
                Rectangle::new([(x, 0.0), (x + 0.25, v as f64)], colour.filled())
            }))
            .map_err(err)?;
            Ok(())
        })?;
        out.push_str(&group("series", kind, &join(values), &svg));
    }

    let shares = d.shares();
    let share_svg = spec.layer(false, |c| {
        let points: Vec<(f64, f64)> = shares
            .iter()
            .enumerate()
            .map(|(i, &s)| (i as f64 + 0.5, s))
            .collect();
        c.draw_secondary_series(LineSeries::new(points.clone(), SHARE.stroke_width(2)))
            .map_err(err)?;
        c.draw_secondary_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, SHARE.filled())),
        )
        .map_err(err)?;
        Ok(())
    })?;
    let counts: Vec<i64> = d.months.iter().map(|m| m.consenting_at_end).collect();
    out.push_str(&format!(
        "<g class=\"series\" data-kind=\"share\" data-values=\"{}\" data-accounts=\"{}\">{share_svg}</g>",
        join(&counts),
        d.accounts
    ));

    if !d.terms.is_empty() {
        let marks = spec.layer(false, |c| {
            for m in &d.terms {
                c.draw_series(std::iter::once(PathElement::new(
                    vec![(m.x, 0.0), (m.x, ymax)],
                    TERMS.stroke_width(2),
                )))
                .map_err(err)?;
                c.draw_series(std::iter::once(Text::new(
                    format!("terms v{}", m.version),
                    (m.x, ymax),
                    ("sans-serif", 13).into_font().color(&TERMS),
                )))
                .map_err(err)?;
            }
            Ok(())
        })?;
        let versions: Vec<i64> = d.terms.iter().map(|m| m.version).collect();
        out.push_str(&group("terms-marks", "terms", &join(&versions), &marks));
    }
    out.push_str("</svg>");
    Ok(out)
}

/// The shared geometry of every layer of one chart.
struct Spec<'a> {
    months: usize,
    ymax: f64,
    keys: &'a [f64],
}

impl Spec<'_> {
    /// One layer: the same canvas, margins and coordinates, so layers
    /// stack exactly; only the axes layer has a background.
    fn layer(
        &self,
        background: bool,
        draw: impl FnOnce(&mut Ctx<'_, '_>) -> Result<(), ChartError>,
    ) -> Result<String, ChartError> {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
            if background {
                root.fill(&WHITE).map_err(err)?;
            }
            let mut chart = builder(&root)
                .build_cartesian_2d(
                    SlotAxis {
                        slots: self.months,
                        keys: self.keys.to_vec(),
                    },
                    0f64..self.ymax,
                )
                .map_err(err)?
                .set_secondary_coord(0f64..self.months as f64, 0f64..100f64);
            draw(&mut chart)?;
            root.present().map_err(err)?;
        }
        Ok(buf)
    }
}

fn builder<'a, 'b>(
    root: &'a plotters::drawing::DrawingArea<SVGBackend<'b>, Shift>,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.margin_top(24)
        .margin_right(12)
        .margin_left(8)
        .margin_bottom(8)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .right_y_label_area_size(70);
    b
}

/// A round top for the count axis: 1, 2 or 5 times a power of ten, at
/// least the largest bar (and never 0, so an empty chart still has a scale).
fn nice_max(top: i64) -> f64 {
    let top = top.max(1) as f64;
    let mut p = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if m * p >= top {
                return m * p;
            }
        }
        p *= 10.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn months(n: usize) -> Vec<Month> {
        boinc_db::consent::report::month_starts(1_796_544_000)
            .into_iter()
            .take(n)
            .enumerate()
            .map(|(i, start)| Month {
                start,
                label: chrono::DateTime::from_timestamp(start, 0)
                    .unwrap()
                    .format("%Y-%m")
                    .to_string(),
                consented_rows: i as i64 * 100,
                withdrawn_rows: 7,
                not_required_rows: if i == 5 { 3 } else { 0 },
                consenting_at_end: i as i64 * 10,
            })
            .collect()
    }

    #[test]
    fn rounds_the_count_axis_up() {
        assert_eq!(nice_max(0), 1.0);
        assert_eq!(nice_max(1), 1.0);
        assert_eq!(nice_max(3), 5.0);
        assert_eq!(nice_max(11), 20.0);
        assert_eq!(nice_max(2300), 5000.0);
        assert_eq!(nice_max(692_458), 1_000_000.0);
    }

    #[test]
    fn svg_has_one_layer_per_kind_and_no_inline_style() {
        let d = ChartData {
            shortname: "ENROLL".into(),
            months: months(24),
            accounts: 1000,
            terms: vec![TermsMark {
                version: 3,
                x: 20.5,
            }],
        };
        let svg = render(&d).unwrap();
        for kind in ["consented", "withdrawn", "not-required", "share", "terms"] {
            assert_eq!(
                svg.matches(&format!("data-kind=\"{kind}\"")).count(),
                1,
                "{kind}"
            );
        }
        assert!(svg.contains("data-values=\"0,100,200,"));
        assert!(svg.contains("2026-12") && svg.contains("2025-03"));
        assert!(svg.contains("terms v3"));
        // The page's CSP allows no inline styles.
        assert!(!svg.contains("style=") && !svg.contains("<style"), "{svg}");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn terms_are_marked_only_inside_the_window() {
        let m = months(24);
        let version = |id, first_seen| crate::consent_records::VersionCount {
            terms_version_id: Some(id),
            sha256: None,
            first_seen: Some(first_seen),
            first_seen_utc: None,
            users: 0,
            current: false,
        };
        let mid20 = (m[20].start + m[21].start) / 2;
        let t = TypeSummary {
            shortname: "ENROLL".into(),
            enabled: true,
            consented: 0,
            withdrawn: 0,
            not_required: 0,
            never_asked: 0,
            by_terms_version: vec![
                version(1, m[0].start - 1),
                version(2, mid20),
                version(3, m[23].start),
            ],
            monthly: m,
        };
        let d = ChartData::of(&t, 10);
        assert_eq!(d.terms.len(), 2, "{:?}", d.terms);
        assert_eq!(d.terms[0].version, 2);
        assert!((d.terms[0].x - 20.5).abs() < 0.02, "{:?}", d.terms);
        assert_eq!((d.terms[1].version, d.terms[1].x), (3, 23.0));
    }

    #[test]
    fn type_names_are_escaped() {
        let d = ChartData {
            shortname: "A<b>&\"".into(),
            months: months(24),
            accounts: 0,
            terms: vec![],
        };
        let svg = render(&d).unwrap();
        assert!(svg.contains("A&lt;b&gt;&amp;"), "{svg}");
        assert!(svg.contains("id=\"chart-A-b---\""));
        assert!(!svg.contains("data-kind=\"terms\""));
    }
}
