//! What every check shares: a finding, how it counts, and the list the
//! checks add to. Every other part of the doctor depends on this module; it
//! depends on none of them.

use serde::Serialize;

/// How a finding counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Level {
    /// Checked and fine.
    Ok,
    /// Worth knowing; not a problem.
    Note,
    /// Would lock someone out, or let someone in without the second factor.
    Problem,
}

#[derive(Debug, Serialize)]
pub(super) struct Finding {
    pub(super) level: Level,
    pub(super) check: &'static str,
    pub(super) message: String,
    pub(super) fix: Option<String>,
}

/// The findings so far, in the order the checks made them.
#[derive(Default)]
pub(super) struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, level: Level, check: &'static str, message: String, fix: Option<String>) {
        self.0.push(Finding {
            level,
            check,
            message,
            fix,
        });
    }

    pub(super) fn ok(&mut self, check: &'static str, message: String) {
        self.add(Level::Ok, check, message, None);
    }

    pub(super) fn note(&mut self, check: &'static str, message: String) {
        self.add(Level::Note, check, message, None);
    }

    pub(super) fn problem(&mut self, check: &'static str, message: String, fix: impl Into<String>) {
        self.add(Level::Problem, check, message, Some(fix.into()));
    }

    pub(super) fn problems(&self) -> usize {
        self.0.iter().filter(|f| f.level == Level::Problem).count()
    }

    pub(super) fn into_vec(self) -> Vec<Finding> {
        self.0
    }
}
