//! Step by step: xinterp's outcome against the scenario's expectation (always), and
//! CPython's outcome against xinterp's (when CPython ran), explained by the deviation file.

use serde::Serialize;

use crate::cpython::Ran;
use crate::deviations::{Deviations, Kind};
use crate::scenario::Scenario;

/// What one step (or, the worst of its steps, one scenario) came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "ids", rename_all = "snake_case")]
pub enum Verdict {
    /// CPython and xinterp agree (and xinterp gives what the scenario expects).
    Same,
    /// CPython did not run this step (no CPython, or it crashed in an earlier step).
    CpythonSkipped,
    /// They differ, as listed under `[[deviation]]`.
    Deliberate(Vec<String>),
    /// They differ, as listed under `[[open]]`: reported, awaiting a fix.
    Open(Vec<String>),
    /// They differ and nothing lists it.
    Different,
    /// xinterp does not give what the scenario expects, a listing is stale, or the CPython
    /// runner failed.
    Fail,
}

impl Verdict {
    fn rank(&self) -> u8 {
        match self {
            Verdict::Same => 0,
            Verdict::CpythonSkipped => 1,
            Verdict::Deliberate(_) => 2,
            Verdict::Open(_) => 3,
            Verdict::Different => 4,
            Verdict::Fail => 5,
        }
    }

    /// As the report prints it.
    pub fn label(&self) -> String {
        match self {
            Verdict::Same => "same".into(),
            Verdict::CpythonSkipped => "CPython skipped".into(),
            Verdict::Deliberate(ids) => format!("deliberate deviation ({})", ids.join(", ")),
            Verdict::Open(ids) => format!("DIFFERENT (open: {})", ids.join(", ")),
            Verdict::Different => "DIFFERENT".into(),
            Verdict::Fail => "FAIL".into(),
        }
    }

    /// Whether it fails the run (`strict`: open differences too).
    pub fn fails(&self, strict: bool) -> bool {
        matches!(self, Verdict::Different | Verdict::Fail) || (strict && self.rank() == 3)
    }

    fn merge(self, other: &Verdict) -> Verdict {
        match (&self, other) {
            (Verdict::Deliberate(a), Verdict::Deliberate(b))
            | (Verdict::Open(a), Verdict::Open(b)) => {
                let mut ids = a.clone();
                ids.extend(b.iter().filter(|id| !a.contains(id)).cloned());
                if matches!(self, Verdict::Open(_)) {
                    Verdict::Open(ids)
                } else {
                    Verdict::Deliberate(ids)
                }
            }
            _ if other.rank() > self.rank() => other.clone(),
            _ => self,
        }
    }
}

/// One step's outcomes and verdict.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    /// 1-based.
    pub n: usize,
    /// What the step does.
    pub step: String,
    /// The scenario's expectation.
    pub expected: String,
    /// CPython's outcome, when it ran.
    pub cpython: Option<String>,
    /// xinterp's outcome.
    pub xinterp: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Why it fails, or what to do (a fixed open entry).
    pub notes: Vec<String>,
    /// The scenario file's remark on the step.
    pub remark: Option<String>,
}

/// One scenario's steps and verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// The file.
    pub file: String,
    /// Its name.
    pub name: String,
    /// Its topic.
    pub topic: String,
    /// What it shows.
    pub about: String,
    /// The worst step verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Where CPython crashed, if it did.
    pub cpython_crash: Option<String>,
    /// How the CPython runner failed, if it did (with the end of its stderr).
    pub cpython_runner_error: Option<String>,
    /// The steps.
    pub steps: Vec<StepResult>,
}

impl ScenarioResult {
    /// The step the report shows in the scenario table: the first that is not `same` (a
    /// skipped step only when nothing worse is there), else the last.
    pub fn key_step(&self) -> &StepResult {
        let worst = self
            .steps
            .iter()
            .filter(|s| s.verdict.rank() > 1)
            .max_by_key(|s| (s.verdict.rank(), std::cmp::Reverse(s.n)));
        worst.unwrap_or_else(|| self.steps.last().expect("scenarios have steps"))
    }
}

/// Compares one scenario.
pub fn scenario(
    s: &Scenario,
    xinterp: &[String],
    cpython: Option<&Ran>,
    devs: &Deviations,
) -> ScenarioResult {
    let mut verdict = Verdict::Same;
    let mut steps = Vec::new();
    for (i, step) in s.steps.iter().enumerate() {
        let n = i + 1;
        let expected = step.expect.outcome(false).expect("checked at load");
        let x = xinterp[i].clone();
        let c = cpython.and_then(|r| r.outcomes.get(i).cloned());
        let (v, notes) = one(&s.name, n, &expected, &x, c.as_deref(), devs);
        verdict = verdict.merge(&v);
        steps.push(StepResult {
            n,
            step: step.describe(),
            expected,
            cpython: c,
            xinterp: x,
            verdict: v,
            notes,
            remark: step.note.clone(),
        });
    }
    if cpython.is_none() && verdict == Verdict::Same {
        verdict = Verdict::CpythonSkipped;
    }
    ScenarioResult {
        file: s.file.clone(),
        name: s.name.clone(),
        topic: s.topic.clone(),
        about: s.about.clone(),
        verdict,
        cpython_crash: cpython.and_then(|r| r.crash.clone()),
        cpython_runner_error: cpython.and_then(|r| {
            r.runner_error
                .as_ref()
                .map(|e| format!("{e}\n{}", r.stderr.trim()))
        }),
        steps,
    }
}

/// One step's verdict, and the notes that explain a failure.
fn one(
    scenario: &str,
    n: usize,
    expected: &str,
    x: &str,
    c: Option<&str>,
    devs: &Deviations,
) -> (Verdict, Vec<String>) {
    let listed = devs.at(scenario, n);
    let deliberate: Vec<_> = listed
        .iter()
        .filter(|(d, _)| d.kind == Kind::Deliberate)
        .collect();
    let open: Vec<_> = listed
        .iter()
        .filter(|(d, _)| d.kind == Kind::Open)
        .collect();
    let mut notes = Vec::new();
    let mut fail = false;

    // xinterp against the scenario.
    let open_now = open
        .iter()
        .find(|(_, s)| s.xinterp.as_deref() == Some(x))
        .map(|(d, _)| d.id.clone());
    if x != expected && open_now.is_none() {
        fail = true;
        notes.push(format!(
            "xinterp gives {x}; the scenario expects {expected}"
        ));
    }
    if x == expected {
        for (d, _) in &open {
            notes.push(format!(
                "open entry {} looks fixed: xinterp now gives the expected {expected}; remove it from deviations.toml",
                d.id
            ));
        }
    }

    // CPython against xinterp.
    let verdict = match c {
        None => match &open_now {
            Some(id) => {
                notes.push(format!(
                    "xinterp gives {x}, the scenario expects {expected}: open, awaiting a fix"
                ));
                Verdict::Open(vec![id.clone()])
            }
            None => Verdict::CpythonSkipped,
        },
        Some(c) if c.starts_with("skipped:") => Verdict::CpythonSkipped,
        Some(c) if c.starts_with("runner-error:") => {
            notes.push(format!("the CPython runner failed: {c}"));
            Verdict::Fail
        }
        Some(c) if c == x => {
            for (d, _) in &deliberate {
                fail = true;
                notes.push(format!(
                    "deviation {} lists this step, but CPython gives the same outcome ({c}): the listing is stale",
                    d.id
                ));
            }
            Verdict::Same
        }
        Some(c) => {
            let by_deliberate: Vec<String> = deliberate
                .iter()
                .filter(|(_, s)| s.cpython == c)
                .map(|(d, _)| d.id.clone())
                .collect();
            let by_open: Vec<String> = open
                .iter()
                .filter(|(_, s)| s.cpython == c && s.xinterp.as_deref() == Some(x))
                .map(|(d, _)| d.id.clone())
                .collect();
            if !by_deliberate.is_empty() && x == expected {
                Verdict::Deliberate(by_deliberate)
            } else if !by_open.is_empty() {
                notes.push(format!(
                    "xinterp gives {x}, CPython {c}: open, awaiting a fix"
                ));
                Verdict::Open(by_open)
            } else {
                for (d, s) in &listed {
                    notes.push(format!(
                        "{} lists CPython's outcome here as {}",
                        d.id, s.cpython
                    ));
                }
                notes.push(format!(
                    "CPython gives {c}, xinterp {x}: a difference deviations.toml does not list"
                ));
                Verdict::Different
            }
        }
    };
    if fail {
        (Verdict::Fail, notes)
    } else {
        (verdict, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    const SCENARIO: &str = r#"
[[scenario]]
name = "s"
topic = "t"
about = "a"
interpreters = ["a"]
channels = [{ name = "c" }]
steps = [
  { op = "release", interp = "a", chan = "c", end = "send", expect = "ok" },
  { op = "status", chan = "c", expect = { status = "open" } },
]
"#;

    fn check(devs: &str, xinterp: &[&str], cpython: Option<&[&str]>) -> ScenarioResult {
        let scenarios = parse(SCENARIO, "t.toml").unwrap();
        let devs = Deviations::parse(devs, "d.toml", &scenarios).unwrap();
        let xinterp: Vec<String> = xinterp.iter().map(|s| s.to_string()).collect();
        let ran = cpython.map(|outcomes| Ran {
            name: "s".into(),
            outcomes: outcomes.iter().map(|s| s.to_string()).collect(),
            crash: None,
            runner_error: None,
            stderr: String::new(),
        });
        scenario(&scenarios[0], &xinterp, ran.as_ref(), &devs)
    }

    const DELIBERATE: &str = r#"
[[deviation]]
id = "d"
title = "t"
reason = "r"
shown_by = [{ scenario = "s", step = 2, cpython = { status = "closed" } }]
"#;

    const OPEN: &str = r#"
[[open]]
id = "o"
title = "t"
reason = "r"
shown_by = [{ scenario = "s", step = 2, cpython = { status = "open" }, xinterp = { status = "closing" } }]
"#;

    #[test]
    fn agreement_is_same_and_an_unlisted_difference_fails() {
        let r = check("", &["ok", "status:open"], Some(&["ok", "status:open"]));
        assert_eq!(r.verdict, Verdict::Same);
        let r = check("", &["ok", "status:open"], Some(&["ok", "status:closed"]));
        assert_eq!(r.verdict, Verdict::Different);
        assert!(r.verdict.fails(false));
    }

    #[test]
    fn xinterp_must_give_what_the_scenario_expects() {
        let r = check("", &["ok", "status:closed"], None);
        assert_eq!(r.verdict, Verdict::Fail);
        let r = check("", &["ok", "status:open"], None);
        assert_eq!(r.verdict, Verdict::CpythonSkipped);
        assert!(!r.verdict.fails(true));
    }

    #[test]
    fn a_listed_deviation_explains_the_difference_and_a_stale_one_fails() {
        let r = check(
            DELIBERATE,
            &["ok", "status:open"],
            Some(&["ok", "status:closed"]),
        );
        assert_eq!(r.verdict, Verdict::Deliberate(vec!["d".into()]));
        assert!(!r.verdict.fails(true));
        // CPython now agrees: the listing is stale.
        let r = check(
            DELIBERATE,
            &["ok", "status:open"],
            Some(&["ok", "status:open"]),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        // CPython differs otherwise than listed.
        let r = check(
            DELIBERATE,
            &["ok", "status:open"],
            Some(&["ok", "status:closing"]),
        );
        assert_eq!(r.verdict, Verdict::Different);
    }

    #[test]
    fn an_open_difference_is_reported_and_fails_only_when_strict() {
        let r = check(
            OPEN,
            &["ok", "status:closing"],
            Some(&["ok", "status:open"]),
        );
        assert_eq!(r.verdict, Verdict::Open(vec!["o".into()]));
        assert!(!r.verdict.fails(false));
        assert!(r.verdict.fails(true));
        // Without CPython, xinterp's listed outcome is still recognised.
        let r = check(OPEN, &["ok", "status:closing"], None);
        assert_eq!(r.verdict, Verdict::Open(vec!["o".into()]));
        // Something else again is a failure.
        let r = check(OPEN, &["ok", "status:closed"], Some(&["ok", "status:open"]));
        assert_eq!(r.verdict, Verdict::Fail);
        // Fixed: xinterp now gives the expected outcome; the entry is flagged for removal.
        let r = check(OPEN, &["ok", "status:open"], Some(&["ok", "status:open"]));
        assert_eq!(r.verdict, Verdict::Same);
        assert!(r.steps[1].notes[0].contains("looks fixed"));
    }
}
