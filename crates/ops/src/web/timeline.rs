//! One account's consent history drawn as a timeline for its ops page
//! (the table below it has every row).

use plotters::chart::ChartBuilder;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::{
    Cartesian2d, Circle, IntoDrawingArea, IntoFont, RGBColor, Rectangle, SVGBackend, WHITE,
};
use plotters::style::Color;

use super::plot::{
    css_id, err, group, ChartError, SlotAxis, CONSENTED, NOT_REQUIRED, WIDTH, WITHDRAWN,
};
use crate::consent_records::SubjectHistory;
use crate::time::utc_date;

/// The timeline: time across, a lane per consent type.
type LaneCtx<'a, 'b> =
    plotters::chart::ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, SlotAxis>>;

/// Height of one consent type's lane in the timeline, and the room
/// around the lanes (axis labels, margins).
const LANE: u32 = 46;
const TIMELINE_FRAME: u32 = 84;

fn state_colour(state: &str) -> RGBColor {
    match state {
        "consented" => CONSENTED,
        "not required" => NOT_REQUIRED,
        _ => WITHDRAWN,
    }
}

/// One account's consent history as a timeline: a lane per consent type
/// (in the order first recorded), a dot per row coloured by what it
/// records, and a band from each row to the next (the state in force),
/// up to `h.generated_at`. `None` without rows.
pub fn timeline(h: &SubjectHistory) -> Result<Option<String>, ChartError> {
    if h.consents.is_empty() {
        return Ok(None);
    }
    let mut types: Vec<&str> = Vec::new();
    for c in &h.consents {
        if !types.contains(&c.consent_type.as_str()) {
            types.push(&c.consent_type);
        }
    }
    let first = h
        .consents
        .iter()
        .map(|c| c.consent_time)
        .min()
        .unwrap_or(0)
        .min(h.user.create_time);
    let last = h
        .consents
        .iter()
        .map(|c| c.consent_time)
        .max()
        .unwrap_or(0)
        .max(h.generated_at);
    let pad = ((last - first) / 40).max(3600);
    let (x0, x1) = ((first - pad) as f64, (last + pad) as f64);
    let n = types.len();
    let height = TIMELINE_FRAME + LANE * n as u32;
    let keys: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    // Lane 0 at the top: the y axis grows upwards, so lane i is drawn at
    // slot n - 1 - i.
    let slot = |i: usize| (n - 1 - i) as f64;
    let names: Vec<String> = types.iter().rev().map(|t| (*t).to_owned()).collect();

    let layer = |background: bool,
                 draw: &dyn Fn(&mut LaneCtx<'_, '_>) -> Result<(), ChartError>|
     -> Result<String, ChartError> {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
            if background {
                root.fill(&WHITE).map_err(err)?;
            }
            let mut chart = ChartBuilder::on(&root)
                .margin_top(12)
                .margin_right(24)
                .margin_left(8)
                .margin_bottom(8)
                .x_label_area_size(40)
                .y_label_area_size(120)
                .build_cartesian_2d(
                    x0..x1,
                    SlotAxis {
                        slots: n,
                        keys: keys.clone(),
                    },
                )
                .map_err(err)?;
            draw(&mut chart)?;
            root.present().map_err(err)?;
        }
        Ok(buf)
    };

    let id = css_id(&h.user.id.to_string());
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"consent-timeline\" id=\"timeline-{id}\" \
         viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" \
         aria-labelledby=\"timeline-title\"><title id=\"timeline-title\">Consent history of \
         account {id} over time (UTC), one lane per consent type; the table below lists every \
         row</title>"
    );
    let axes = layer(true, &|c| {
        c.configure_mesh()
            .disable_y_mesh()
            .x_labels(6)
            .max_light_lines(0)
            .x_label_formatter(&|t| utc_date(*t as i64))
            .y_label_formatter(&|y| {
                names
                    .get(y.floor().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .label_style(("sans-serif", 13).into_font())
            .draw()
            .map_err(err)?;
        Ok(())
    })?;
    out.push_str(&group("axes", "axes", "", &axes));

    for (i, ty) in types.iter().enumerate() {
        let rows: Vec<_> = h
            .consents
            .iter()
            .filter(|c| c.consent_type == *ty)
            .collect();
        let y = slot(i);
        let lane = layer(false, &|c| {
            for (k, r) in rows.iter().enumerate() {
                let until = rows.get(k + 1).map_or(h.generated_at, |n| n.consent_time);
                let colour = state_colour(r.state);
                c.draw_series(std::iter::once(Rectangle::new(
                    [
                        (r.consent_time as f64, y + 0.38),
                        (until.max(r.consent_time) as f64, y + 0.62),
                    ],
                    colour.mix(0.35).filled(),
                )))
                .map_err(err)?;
            }
            c.draw_series(rows.iter().map(|r| {
                Circle::new(
                    (r.consent_time as f64, y + 0.5),
                    6,
                    state_colour(r.state).filled(),
                )
            }))
            .map_err(err)?;
            Ok(())
        })?;
        let states: Vec<&str> = rows.iter().map(|r| r.state).collect();
        out.push_str(&format!(
            "<g class=\"lane\" data-type=\"{}\" data-states=\"{}\">{lane}</g>",
            boinc_db::text::xml::escape(ty),
            states.join(",")
        ));
    }
    out.push_str("</svg>");
    Ok(Some(out))
}
