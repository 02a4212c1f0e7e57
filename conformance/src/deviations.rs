//! `conformance/deviations.toml`: where xinterp differs from CPython, step by step.
//!
//! - `[[deviation]]`: on purpose (MISSION.md's "Improve on purpose", design/channel.md
//!   section 12), each with its reason and the steps that show it, with CPython's outcome
//!   there. A step listed here whose CPython outcome is the listed one is a deliberate
//!   deviation; one where CPython now agrees with xinterp is a stale listing and fails.
//! - `[[open]]`: not on purpose, reported and awaiting a fix in the library. Each step
//!   names CPython's outcome (which the scenario expects) and xinterp's outcome today.
//!   Such a step is reported as DIFFERENT (open); it fails the run only with `--strict`.
//!   Once xinterp gives the expected outcome the entry is reported as fixed, to be removed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::scenario::{Expect, Scenario};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    deviation: Vec<Raw>,
    #[serde(default)]
    open: Vec<Raw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: String,
    title: String,
    reason: String,
    #[serde(default)]
    mission: Option<String>,
    #[serde(default)]
    against: Option<String>,
    #[serde(default)]
    fix: Option<String>,
    #[serde(default)]
    shown_by: Vec<RawStep>,
    #[serde(default)]
    see: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    scenario: String,
    step: usize,
    cpython: Expect,
    #[serde(default)]
    xinterp: Option<Expect>,
}

/// Deliberate, or open (awaiting a fix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// On purpose.
    Deliberate,
    /// Not on purpose; reported.
    Open,
}

/// One entry of the file.
#[derive(Clone, Debug, Serialize)]
pub struct Deviation {
    /// Short id, cited in verdicts.
    pub id: String,
    /// Deliberate or open.
    pub kind: Kind,
    /// What differs.
    pub title: String,
    /// Why (deliberate), or what is wrong (open).
    pub reason: String,
    /// Where the project asks for it (deliberate).
    pub mission: Option<String>,
    /// The CPython version it is against, when it is not the one compared (3.13 agrees).
    pub against: Option<String>,
    /// Where the fix goes (open).
    pub fix: Option<String>,
    /// The steps that show it.
    pub shown_by: Vec<Shown>,
    /// Scenarios that show xinterp's side where CPython 3.13 agrees (an entry `against`
    /// another version).
    pub see: Vec<String>,
}

/// A step that shows a deviation.
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    /// The scenario.
    pub scenario: String,
    /// 1-based step number.
    pub step: usize,
    /// CPython's outcome there.
    pub cpython: String,
    /// xinterp's outcome there today (open entries; deliberate ones give the scenario's).
    pub xinterp: Option<String>,
}

/// The entries, and an index by (scenario, step).
pub struct Deviations {
    /// In file order: deliberate ones, then open ones.
    pub all: Vec<Deviation>,
    index: BTreeMap<(String, usize), Vec<(usize, usize)>>,
}

impl Deviations {
    /// Loads and checks `path` against the scenarios.
    pub fn load(path: &Path, scenarios: &[Scenario]) -> Result<Deviations, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Deviations::parse(&text, &path.display().to_string(), scenarios)
    }

    /// Parses and checks the text of a deviation file (`label` names it in errors).
    pub fn parse(text: &str, label: &str, scenarios: &[Scenario]) -> Result<Deviations, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("{label}: {e}"))?;
        let mut all = Vec::new();
        let entries = file
            .deviation
            .into_iter()
            .map(|r| (Kind::Deliberate, r))
            .chain(file.open.into_iter().map(|r| (Kind::Open, r)));
        for (kind, raw) in entries {
            let at = |e: String| format!("{label}: {}: {e}", raw.id);
            if all.iter().any(|d: &Deviation| d.id == raw.id) {
                return Err(at("listed twice".into()));
            }
            let mut shown_by = Vec::new();
            for s in raw.shown_by {
                let scenario = scenarios
                    .iter()
                    .find(|x| x.name == s.scenario)
                    .ok_or_else(|| at(format!("no scenario {}", s.scenario)))?;
                if s.step == 0 || s.step > scenario.steps.len() {
                    return Err(at(format!("{} has no step {}", s.scenario, s.step)));
                }
                let xinterp = match (kind, s.xinterp) {
                    (Kind::Open, None) => {
                        return Err(at("an open entry names xinterp's outcome today".into()))
                    }
                    (_, x) => x.map(|x| x.outcome(true).map_err(at)).transpose()?,
                };
                shown_by.push(Shown {
                    scenario: s.scenario,
                    step: s.step,
                    cpython: s.cpython.outcome(true).map_err(at)?,
                    xinterp,
                });
            }
            for name in &raw.see {
                if !scenarios.iter().any(|x| &x.name == name) {
                    return Err(at(format!("no scenario {name}")));
                }
            }
            if shown_by.is_empty() && raw.against.is_none() {
                return Err(at(
                    "names no step that shows it (or `against`: the CPython version that shows it)"
                        .into(),
                ));
            }
            all.push(Deviation {
                id: raw.id,
                kind,
                title: raw.title,
                reason: raw.reason,
                mission: raw.mission,
                against: raw.against,
                fix: raw.fix,
                shown_by,
                see: raw.see,
            });
        }
        let mut index: BTreeMap<(String, usize), Vec<(usize, usize)>> = BTreeMap::new();
        for (d, dev) in all.iter().enumerate() {
            for (s, shown) in dev.shown_by.iter().enumerate() {
                index
                    .entry((shown.scenario.clone(), shown.step))
                    .or_default()
                    .push((d, s));
            }
        }
        Ok(Deviations { all, index })
    }

    /// The entries listing step `step` (1-based) of `scenario`.
    pub fn at(&self, scenario: &str, step: usize) -> Vec<(&Deviation, &Shown)> {
        self.index
            .get(&(scenario.to_string(), step))
            .map(|v| {
                v.iter()
                    .map(|&(d, s)| (&self.all[d], &self.all[d].shown_by[s]))
                    .collect()
            })
            .unwrap_or_default()
    }
}
