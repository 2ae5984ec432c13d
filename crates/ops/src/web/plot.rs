//! What the ops page's drawings share: the canvas width, the colours of
//! each consent state (the page's legend uses the same from `ops.css`),
//! the axis of equal slots, the error type, and how a layer is wrapped in
//! a group the DOM can find. The monthly charts are in `chart.rs`, an
//! account's timeline in `timeline.rs`.
//!
//! Drawn by `plotters` with its SVG backend only (no fonts, no bitmaps, no
//! JavaScript): a maintained plotting crate does the scales, ticks and
//! label layout that hand-written path strings would get wrong, and its SVG
//! backend writes presentation attributes rather than `style` attributes or
//! a `<style>` element, so the SVG sits inline in the page under its strict
//! CSP (`default-src 'self'`, no inline styles or scripts). Text sizes use
//! plotters' built-in estimate (no `ttf` feature: the browser lays the
//! text out anyway).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::RGBColor;

/// Canvas size in SVG user units (the page scales it to its width).
pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 360;

/// The kinds drawn, in drawing order, with their colours (the page's
/// legend uses the same colours from `ops.css`).
pub const CONSENTED: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
pub const WITHDRAWN: RGBColor = RGBColor(0xc6, 0x28, 0x28);
pub const NOT_REQUIRED: RGBColor = RGBColor(0x75, 0x75, 0x75);
pub const SHARE: RGBColor = RGBColor(0x15, 0x65, 0xc0);
pub const TERMS: RGBColor = RGBColor(0x6a, 0x1b, 0x9a);

#[derive(Debug, thiserror::Error)]
#[error("drawing the consent chart: {0}")]
pub struct ChartError(pub(super) String);

pub(super) fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

/// An axis of equal slots (months, timeline lanes): slot `i` spans
/// `[i, i + 1)`; ticks (and labels) sit at the middle of the chosen slots.
/// plotters' own numeric axes pick "nice" tick values, which would fall
/// between slots.
pub struct SlotAxis {
    pub(super) slots: usize,
    pub(super) keys: Vec<f64>,
}

impl Ranged for SlotAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = value / self.slots.max(1) as f64;
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.slots as f64
    }
}

pub(super) fn join(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// One layer wrapped in a group the DOM can find.
pub(super) fn group(class: &str, kind: &str, values: &str, svg: &str) -> String {
    format!("<g class=\"{class}\" data-kind=\"{kind}\" data-values=\"{values}\">{svg}</g>")
}

/// A type name as an id fragment: shortnames are `[A-Z0-9_]` when made
/// here, but a database may hold others; anything else becomes `-`.
pub fn css_id(shortname: &str) -> String {
    shortname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
