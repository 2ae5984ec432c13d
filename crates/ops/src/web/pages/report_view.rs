//! The consent report as the consent-types page shows it: one chart and
//! its table per consent type, and how old the report is.

use crate::consent_records::ConsentReport;
use crate::web::chart::{self, RenderedChart};
use crate::web::numbers::{count, count_share};
use crate::web::report::{age_text, ReportView};

/// One consent type's chart and the table of the same numbers.
pub(super) struct ChartView {
    pub(super) shortname: String,
    /// The type name as an id fragment.
    pub(super) id: String,
    /// Trusted SVG drawn when the report was computed (`None`: failed).
    pub(super) svg: Option<String>,
    pub(super) months: Vec<MonthRow>,
    /// Terms versions first seen inside the chart's months (ENROLL).
    pub(super) terms: Vec<String>,
}

pub(super) struct MonthRow {
    pub(super) label: String,
    pub(super) consented: String,
    pub(super) withdrawn: String,
    pub(super) not_required: String,
    /// "1,234 (56.7%)"
    pub(super) consenting: String,
}

pub(super) fn chart_views(records: &ConsentReport, charts: &[RenderedChart]) -> Vec<ChartView> {
    records
        .consent_types
        .iter()
        .map(|t| {
            let data = chart::ChartData::of(t, records.users);
            ChartView {
                shortname: t.shortname.clone(),
                id: chart::css_id(&t.shortname),
                svg: charts
                    .iter()
                    .find(|c| c.shortname == t.shortname)
                    .and_then(|c| c.svg.clone()),
                months: t
                    .monthly
                    .iter()
                    .map(|m| MonthRow {
                        label: m.label.clone(),
                        consented: count(m.consented_rows),
                        withdrawn: count(m.withdrawn_rows),
                        not_required: count(m.not_required_rows),
                        consenting: count_share(m.consenting_at_end, records.users),
                    })
                    .collect(),
                terms: data
                    .terms
                    .iter()
                    .filter_map(|m| {
                        let v = t
                            .by_terms_version
                            .iter()
                            .find(|v| v.terms_version_id == Some(m.version))?;
                        Some(format!(
                            "terms v{}: first seen {}",
                            m.version,
                            v.first_seen_text()
                        ))
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The report's age and whether a fresh one is coming, for the page.
pub(super) fn report_note(view: &ReportView) -> String {
    match (&view.report, view.computing, view.failed) {
        (Some((_, age)), true, _) => {
            format!("{} old; a fresh one is being computed", age_text(*age))
        }
        (Some((_, age)), false, false) => format!("{} old", age_text(*age)),
        (Some((_, age)), false, true) => {
            format!(
                "{} old; computing a fresh one failed (see the server log)",
                age_text(*age)
            )
        }
        (None, true, _) => "computing… (reload in a few seconds)".to_owned(),
        (None, false, _) => "computing it failed (see the server log); reload to retry".to_owned(),
    }
}
