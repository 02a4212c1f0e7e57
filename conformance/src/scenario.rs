//! The scenario files (`conformance/scenarios/*.toml`) and the outcome vocabulary both
//! runners speak.
//!
//! An outcome is a short canonical string, so that the two runners' outcomes and a
//! scenario's expectations compare as text:
//!
//! | outcome | meaning |
//! |---|---|
//! | `ok` | the step succeeded and gives no value |
//! | `queued` | a background blocking send has put its item in the channel |
//! | `default` | a receive with a default found the channel empty |
//! | `unbound` | the received item is the unbound marker (its sender was destroyed) |
//! | `bytes:<data>` | a `bytes` object received, or the contents read from an object |
//! | `view:<data>` | a `memoryview` received (a buffer item: zero-copy) |
//! | `count:<n>` | items queued |
//! | `status:<open\|closing\|closed>` | the channel's status |
//! | `interps:[a,b]` | the interpreters associated with an end, by name, sorted |
//! | `error:<Kind>` | the step failed with this kind (see [`ERROR_KINDS`]) |
//!
//! Data is printable ASCII as itself, every other byte (and `\`) as `\xNN`. CPython's
//! runner may also report `crash:<signal>` (CPython died in that step), `skipped:...` (a
//! step after a crash) and `runner-error:...` (the script itself failed).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The error kinds of the shared vocabulary: xinterp's `ErrorKind` names, to which the
/// CPython runner maps CPython's exceptions (`ChannelClosedError` is `ChannelClosed`, ...).
/// An error outside this set is reported as `Other(<name>)`.
pub const ERROR_KINDS: &[&str] = &[
    "ChannelNotFound",
    "ChannelClosed",
    "ChannelEmpty",
    "ChannelNotEmpty",
    "Timeout",
    "ItemInterpreterDestroyed",
    "BufferError",
    "InterpreterNotFound",
    "TypeError",
    "ValueError",
    "IndexError",
];

/// The outcome words that carry no value.
const WORDS: &[&str] = &["ok", "queued", "default", "unbound"];

/// The id a channel declared with `exists = false` gets in both runners: never created.
pub const GHOST_CHANNEL: u64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    scenario: Vec<Scenario>,
}

/// One scenario: interpreters and channels made at its start, then its steps in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique across all files.
    pub name: String,
    /// What it covers: association, fifo, close, release, unbound, blocking, buffers...
    pub topic: String,
    /// One sentence: the behaviour it shows.
    pub about: String,
    /// Subinterpreters to create, by name; `main` names the main interpreter and is never
    /// listed here.
    #[serde(default)]
    pub interpreters: Vec<String>,
    /// Channels to create, by name.
    #[serde(default)]
    pub channels: Vec<ChannelDecl>,
    /// The steps, each with the outcome xinterp must give.
    pub steps: Vec<Step>,
    /// The file it came from (file name only).
    #[serde(skip)]
    pub file: String,
}

/// A channel made at the scenario's start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelDecl {
    /// The name steps use.
    pub name: String,
    /// The channel's default unbound op.
    #[serde(default)]
    pub unbound: Policy,
    /// `false`: not created; the name stands for an id no channel ever had.
    #[serde(default = "yes")]
    pub exists: bool,
}

fn yes() -> bool {
    true
}

/// What becomes of an item whose sender is destroyed (CPython's unbound ops).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The receiver gets the unbound marker.
    #[default]
    Replace,
    /// The receive fails with `ItemInterpreterDestroyed`.
    Error,
    /// The item leaves the queue.
    Remove,
}

/// How a close closes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// `close()`: refused while items are queued.
    Now,
    /// `close(send=True)`: sends stop, the queue drains, then the channel closes.
    AfterDrain,
    /// `close(force=True)`: queued items are discarded.
    Force,
}

/// A channel end.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EndName {
    /// The send end.
    Send,
    /// The receive end.
    Recv,
    /// Both (release only).
    Both,
}

/// What `make` makes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MakeKind {
    /// A writable, resizable `bytearray`.
    #[default]
    Bytearray,
    /// A read-only `bytes`.
    Bytes,
}

/// The step operations.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Create channel `chan` (with default op `unbound`).
    CreateChannel,
    /// `interp` sends a bytes item (`bytes`, `hex`, or a copy of object `obj`), not waiting.
    Send,
    /// `interp` sends object `obj` as a buffer item (zero-copy), not waiting.
    SendBuffer,
    /// `interp` sends and waits at most `timeout_ms` for a receiver to take the item.
    SendWait,
    /// As `send_wait`, on a thread of its own (`task`); gives `queued` once the item is in.
    SendWaitStart,
    /// Waits for background send `task` and gives its outcome.
    SendWaitJoin,
    /// `interp` receives; `keep` names the received object for later steps.
    Recv,
    /// `interp` receives with a default.
    RecvOr,
    /// Closes `chan` as `how` says (from `interp`, or from outside any channel end).
    Close,
    /// `interp` releases `end` of `chan`.
    Release,
    /// Destroys interpreter `interp`.
    DestroyInterp,
    /// Destroys channel `chan`.
    DestroyChannel,
    /// The interpreters associated with `end` of `chan`.
    List,
    /// Items queued in `chan`.
    Count,
    /// `chan`'s status.
    Status,
    /// `interp` makes object `obj` (a bytearray, or bytes) holding `bytes` / `hex`.
    Make,
    /// `interp` writes the one byte of `bytes` at `index` of object `obj`.
    Write,
    /// `interp` reads the contents of object `obj`.
    Read,
    /// `interp` appends `bytes` to bytearray `obj`.
    Resize,
    /// `interp` lets go of object `obj`.
    Drop,
}

impl Op {
    /// The name used in the files.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateChannel => "create_channel",
            Op::Send => "send",
            Op::SendBuffer => "send_buffer",
            Op::SendWait => "send_wait",
            Op::SendWaitStart => "send_wait_start",
            Op::SendWaitJoin => "send_wait_join",
            Op::Recv => "recv",
            Op::RecvOr => "recv_or",
            Op::Close => "close",
            Op::Release => "release",
            Op::DestroyInterp => "destroy_interp",
            Op::DestroyChannel => "destroy_channel",
            Op::List => "list",
            Op::Count => "count",
            Op::Status => "status",
            Op::Make => "make",
            Op::Write => "write",
            Op::Read => "read",
            Op::Resize => "resize",
            Op::Drop => "drop",
        }
    }
}

/// One step. Which fields an op needs is checked when the files are loaded.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the step does.
    pub op: Op,
    /// The interpreter it runs in.
    pub interp: Option<String>,
    /// The channel it uses.
    pub chan: Option<String>,
    /// Data as text.
    pub bytes: Option<String>,
    /// Data as hex digits.
    pub hex: Option<String>,
    /// A named object of `interp`.
    pub obj: Option<String>,
    /// The name a received object is kept under.
    pub keep: Option<String>,
    /// What `make` makes.
    pub kind: Option<MakeKind>,
    /// The item's own unbound op (or, for `create_channel`, the channel's default).
    pub unbound: Option<Policy>,
    /// How `close` closes.
    pub how: Option<How>,
    /// Which end.
    pub end: Option<EndName>,
    /// A blocking send's timeout.
    pub timeout_ms: Option<u64>,
    /// A background send's name.
    pub task: Option<String>,
    /// The byte `write` writes.
    pub index: Option<usize>,
    /// What xinterp must give.
    pub expect: Expect,
    /// A remark for readers.
    pub note: Option<String>,
}

impl Step {
    /// The step's data: `bytes` as UTF-8, or `hex` decoded.
    pub fn data(&self) -> Option<Vec<u8>> {
        if let Some(text) = &self.bytes {
            return Some(text.as_bytes().to_vec());
        }
        let hex = self.hex.as_ref()?;
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// The interpreter name (checked present at load).
    pub fn interp(&self) -> &str {
        self.interp.as_deref().unwrap_or("main")
    }

    /// The channel name (checked present at load).
    pub fn chan(&self) -> &str {
        self.chan.as_deref().unwrap_or_default()
    }

    /// The object name (checked present at load).
    pub fn obj(&self) -> &str {
        self.obj.as_deref().unwrap_or_default()
    }

    /// A short human description, for the report.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        if let Some(interp) = &self.interp {
            let _ = write!(text, "{interp}: ");
        }
        text.push_str(self.op.name());
        if let Some(chan) = &self.chan {
            let _ = write!(text, " {chan}");
        }
        if let Some(how) = self.how {
            let _ = write!(text, " {how:?}");
        }
        if let Some(end) = self.end {
            let _ = write!(text, " {end:?}");
        }
        if let Some(obj) = &self.obj {
            let _ = write!(text, " {obj}");
        }
        if let Some(index) = self.index {
            let _ = write!(text, "[{index}]");
        }
        if let Some(data) = self.data() {
            let _ = write!(text, " '{}'", render(&data));
        }
        if let Some(kind) = self.kind {
            let _ = write!(text, " ({kind:?})");
        }
        if let Some(op) = self.unbound {
            let _ = write!(text, " unbound={op:?}");
        }
        if let Some(ms) = self.timeout_ms {
            let _ = write!(text, " timeout={ms}ms");
        }
        if let Some(task) = &self.task {
            let _ = write!(text, " task={task}");
        }
        if let Some(keep) = &self.keep {
            let _ = write!(text, " -> {keep}");
        }
        text
    }
}

/// An expected outcome as written in a file: a word (`"ok"`) or a one-key table
/// (`{ error = "ChannelClosed" }`, `{ bytes = "x" }`, `{ count = 2 }` ...).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// `ok`, `queued`, `default`, `unbound` (and, in the deviation file, `crash:<signal>`).
    Word(String),
    /// A value or an error.
    Table(ExpectTable),
}

/// The one-key table form of [`Expect`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectTable {
    error: Option<String>,
    bytes: Option<String>,
    view: Option<String>,
    count: Option<u64>,
    status: Option<String>,
    interps: Option<Vec<String>>,
}

impl Expect {
    /// The canonical outcome string, or why this is not one.
    pub fn outcome(&self, allow_crash: bool) -> Result<String, String> {
        match self {
            Expect::Word(word) if WORDS.contains(&word.as_str()) => Ok(word.clone()),
            Expect::Word(word) if allow_crash && word.starts_with("crash:") => Ok(word.clone()),
            Expect::Word(word) => Err(format!(
                "unknown outcome {word:?} (words: {})",
                WORDS.join(", ")
            )),
            Expect::Table(t) => {
                let given = [
                    t.error.is_some(),
                    t.bytes.is_some(),
                    t.view.is_some(),
                    t.count.is_some(),
                    t.status.is_some(),
                    t.interps.is_some(),
                ];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err("an outcome table has exactly one key".into());
                }
                if let Some(kind) = &t.error {
                    if !ERROR_KINDS.contains(&kind.as_str()) {
                        return Err(format!(
                            "unknown error kind {kind:?} (kinds: {})",
                            ERROR_KINDS.join(", ")
                        ));
                    }
                    return Ok(error(kind));
                }
                if let Some(text) = &t.bytes {
                    return Ok(format!("bytes:{text}"));
                }
                if let Some(text) = &t.view {
                    return Ok(format!("view:{text}"));
                }
                if let Some(n) = t.count {
                    return Ok(count(n as usize));
                }
                if let Some(status) = &t.status {
                    if !["open", "closing", "closed"].contains(&status.as_str()) {
                        return Err(format!("unknown status {status:?}"));
                    }
                    return Ok(format!("status:{status}"));
                }
                let names = t.interps.clone().unwrap_or_default();
                Ok(interps(names))
            }
        }
    }
}

/// `error:<kind>`.
pub fn error(kind: &str) -> String {
    format!("error:{kind}")
}

/// `count:<n>`.
pub fn count(n: usize) -> String {
    format!("count:{n}")
}

/// `interps:[a,b]`, sorted.
pub fn interps(mut names: Vec<String>) -> String {
    names.sort();
    format!("interps:[{}]", names.join(","))
}

/// Bytes as the vocabulary writes them: printable ASCII as itself, the rest as `\xNN`.
pub fn render(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Every scenario of every `*.toml` file in `dir`, in file-name order, checked.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no scenario files (*.toml)", dir.display()));
    }
    let mut all = Vec::new();
    let mut names = BTreeSet::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for scenario in parse(&text, &file)? {
            if !names.insert(scenario.name.clone()) {
                return Err(format!(
                    "{file}: scenario {} is defined twice",
                    scenario.name
                ));
            }
            all.push(scenario);
        }
    }
    Ok(all)
}

/// The scenarios of one file's text, checked.
pub fn parse(text: &str, file: &str) -> Result<Vec<Scenario>, String> {
    let parsed: ScenarioFile = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let mut all = Vec::new();
    for mut scenario in parsed.scenario {
        scenario.file = file.to_string();
        check(&scenario).map_err(|e| format!("{file}: scenario {}: {e}", scenario.name))?;
        all.push(scenario);
    }
    Ok(all)
}

/// Checks that every step has what its op needs, and names only interpreters, channels,
/// objects and tasks that exist by then.
fn check(s: &Scenario) -> Result<(), String> {
    let mut interps: BTreeSet<&str> = s.interpreters.iter().map(String::as_str).collect();
    if interps.contains("main") || interps.len() != s.interpreters.len() {
        return Err("interpreter names must be unique, and `main` is implied".into());
    }
    interps.insert("main");
    let mut chans: BTreeSet<String> = s.channels.iter().map(|c| c.name.clone()).collect();
    let mut objs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut tasks: BTreeSet<String> = BTreeSet::new();
    if s.steps.is_empty() {
        return Err("no steps".into());
    }
    for (i, step) in s.steps.iter().enumerate() {
        let at = |e: String| format!("step {} ({}): {e}", i + 1, step.op.name());
        step.expect.outcome(false).map_err(at)?;
        let need = |what: &str, present: bool| -> Result<(), String> {
            if present {
                Ok(())
            } else {
                Err(at(format!("needs `{what}`")))
            }
        };
        let has_data = step.bytes.is_some() || step.hex.is_some();
        if step.hex.is_some() && step.data().is_none() {
            return Err(at("`hex` is not an even number of hex digits".into()));
        }
        use Op::*;
        // Which fields each op reads.
        let (interp, chan, obj) = match step.op {
            CreateChannel => (false, true, false),
            Send | SendWait | SendWaitStart => {
                need("bytes, hex or obj", has_data || step.obj.is_some())?;
                (true, true, step.obj.is_some())
            }
            SendBuffer => (true, true, true),
            SendWaitJoin => (false, false, false),
            Recv | RecvOr => (true, true, false),
            Close => {
                need("how", step.how.is_some())?;
                (step.interp.is_some(), true, false)
            }
            Release => {
                need("end", step.end.is_some())?;
                (true, true, false)
            }
            DestroyInterp => (true, false, false),
            DestroyChannel | Count | Status => (false, true, false),
            List => {
                need(
                    "end (send or recv)",
                    matches!(step.end, Some(EndName::Send | EndName::Recv)),
                )?;
                (false, true, false)
            }
            Make => {
                need("bytes or hex", has_data)?;
                need("obj", step.obj.is_some())?;
                (true, false, false)
            }
            Write => {
                need("index", step.index.is_some())?;
                need(
                    "one byte in bytes or hex",
                    step.data().is_some_and(|d| d.len() == 1),
                )?;
                (true, false, true)
            }
            Resize => {
                need("bytes or hex", has_data)?;
                (true, false, true)
            }
            Read | Drop => (true, false, true),
        };
        if interp {
            let name = step
                .interp
                .as_deref()
                .ok_or_else(|| at("needs `interp`".into()))?;
            if !interps.contains(name) {
                return Err(at(format!("unknown interpreter {name:?}")));
            }
        }
        if chan {
            let name = step.chan.clone().ok_or_else(|| at("needs `chan`".into()))?;
            if step.op == CreateChannel {
                if !chans.insert(name.clone()) {
                    return Err(at(format!("channel {name:?} exists already")));
                }
            } else if !chans.contains(&name) {
                return Err(at(format!("unknown channel {name:?}")));
            }
        }
        if obj {
            let key = (step.interp().to_string(), step.obj().to_string());
            if !objs.contains(&key) {
                return Err(at(format!(
                    "interpreter {} has no object {:?} made or kept before",
                    key.0, key.1
                )));
            }
        }
        if let (Make, Some(name)) = (step.op, &step.obj) {
            objs.insert((step.interp().to_string(), name.clone()));
        }
        if let Some(name) = &step.keep {
            objs.insert((step.interp().to_string(), name.clone()));
        }
        match step.op {
            SendWait => need("timeout_ms", step.timeout_ms.is_some())?,
            SendWaitStart => {
                need("timeout_ms", step.timeout_ms.is_some())?;
                let task = step.task.clone().ok_or_else(|| at("needs `task`".into()))?;
                if !tasks.insert(task) {
                    return Err(at("task name in use".into()));
                }
            }
            SendWaitJoin => {
                let task = step
                    .task
                    .as_ref()
                    .ok_or_else(|| at("needs `task`".into()))?;
                if !tasks.remove(task) {
                    return Err(at(format!("no task {task:?} started before")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_render_as_text_or_escapes() {
        assert_eq!(render(b"ok"), "ok");
        assert_eq!(render(b"a\\b\x00\xff"), "a\\x5cb\\x00\\xff");
    }

    #[test]
    fn expectations_use_the_vocabulary() {
        let one = |text: &str| {
            parse(
                &format!(
                    "[[scenario]]\nname = \"s\"\ntopic = \"t\"\nabout = \"a\"\n\
                     interpreters = [\"a\"]\nchannels = [{{ name = \"c\" }}]\n\
                     steps = [{{ op = \"recv\", interp = \"a\", chan = \"c\", expect = {text} }}]\n"
                ),
                "t.toml",
            )
        };
        let outcome = |text: &str| one(text).map(|s| s[0].steps[0].expect.outcome(false).unwrap());
        assert_eq!(outcome("\"ok\"").unwrap(), "ok");
        assert_eq!(
            outcome("{ error = \"ChannelClosed\" }").unwrap(),
            "error:ChannelClosed"
        );
        assert_eq!(
            outcome("{ interps = [\"b\", \"a\"] }").unwrap(),
            "interps:[a,b]"
        );
        assert_eq!(outcome("{ count = 2 }").unwrap(), "count:2");
        assert!(one("\"fine\"").unwrap_err().contains("unknown outcome"));
        assert!(one("{ error = \"Oops\" }")
            .unwrap_err()
            .contains("unknown error kind"));
        assert!(one("{ count = 1, bytes = \"x\" }")
            .unwrap_err()
            .contains("exactly one key"));
    }

    #[test]
    fn steps_name_only_what_exists() {
        let steps = |steps: &str| {
            parse(
                &format!(
                    "[[scenario]]\nname = \"s\"\ntopic = \"t\"\nabout = \"a\"\n\
                     interpreters = [\"a\"]\nchannels = [{{ name = \"c\" }}]\nsteps = [{steps}]\n"
                ),
                "t.toml",
            )
        };
        let err = steps(
            "{ op = \"send\", interp = \"z\", chan = \"c\", bytes = \"x\", expect = \"ok\" }",
        );
        assert!(err.unwrap_err().contains("unknown interpreter"));
        let err = steps("{ op = \"read\", interp = \"a\", obj = \"v\", expect = \"ok\" }");
        assert!(err.unwrap_err().contains("no object"));
        let err = steps("{ op = \"send_wait_join\", task = \"t\", expect = \"ok\" }");
        assert!(err.unwrap_err().contains("no task"));
        let err = steps("{ op = \"close\", chan = \"c\", expect = \"ok\" }");
        assert!(err.unwrap_err().contains("needs `how`"));
        assert!(steps("{ op = \"make\", interp = \"a\", obj = \"v\", hex = \"0f\", expect = \"ok\" }, { op = \"read\", interp = \"a\", obj = \"v\", expect = { bytes = '\\x0f' } }").is_ok());
    }
}
