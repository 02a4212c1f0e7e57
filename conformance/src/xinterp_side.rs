//! The xinterp runner: each scenario in a fresh [`Runtime`] with the default configuration
//! (the `Switch` release strategy), each step through the library's public API, its
//! outcome in the shared vocabulary.
//!
//! Objects a step makes or keeps live in the runner as `OwnedObj` handles, named per
//! interpreter, as CPython's runner keeps them in each interpreter's namespace. Destroying
//! an interpreter first drops the handles it owns (in CPython its namespace dies with it;
//! here an outstanding handle would refuse the destroy).

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xinterp::{
    Channel, ChannelId, ChannelStatus, Close, End, Error, InterpId, Obj, ObjKind, Outgoing,
    OwnedObj, Result, Runtime, Token, UnboundOp,
};

use crate::scenario::{self, EndName, How, MakeKind, Op, Policy, Scenario, Step};

/// Runs `scenario` and gives one outcome per step.
pub fn run(scenario: &Scenario) -> Vec<String> {
    let mut world = World::new(scenario);
    let outcomes = scenario.steps.iter().map(|s| world.step(s)).collect();
    world.finish();
    outcomes
}

struct World {
    rt: Runtime,
    interps: BTreeMap<String, InterpId>,
    names: BTreeMap<InterpId, String>,
    chans: BTreeMap<String, Channel>,
    /// Objects by (interpreter name, object name).
    objs: BTreeMap<(String, String), OwnedObj>,
    /// Background blocking sends.
    tasks: BTreeMap<String, JoinHandle<String>>,
}

fn op(policy: Policy) -> UnboundOp {
    match policy {
        Policy::Replace => UnboundOp::Replace,
        Policy::Error => UnboundOp::Error,
        Policy::Remove => UnboundOp::Remove,
    }
}

fn end(name: EndName) -> End {
    match name {
        EndName::Send => End::Send,
        EndName::Recv => End::Recv,
        EndName::Both => End::Both,
    }
}

fn how(how: How) -> Close {
    match how {
        How::Now => Close::Now,
        How::AfterDrain => Close::AfterDrain,
        How::Force => Close::Force,
    }
}

fn failed(e: &Error) -> String {
    scenario::error(&format!("{:?}", e.kind()))
}

/// The outcome of an entry whose body gives an outcome or fails.
fn flat(entered: Result<Result<String>>) -> String {
    match entered {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) | Err(e) => failed(&e),
    }
}

fn ok(result: Result<()>) -> Result<String> {
    result.map(|()| "ok".to_string())
}

/// What a received object is, in the vocabulary.
fn describe(obj: &Obj<'_>) -> Result<String> {
    Ok(match obj.kind() {
        ObjKind::Bytes => format!("bytes:{}", scenario::render(&obj.to_bytes()?)),
        ObjKind::View => format!("view:{}", scenario::render(&obj.to_bytes()?)),
        ObjKind::Unbound => "unbound".to_string(),
        _ => format!("value:{}", obj.repr()?),
    })
}

/// CPython's runner gives a missing name as a `KeyError`.
fn missing() -> String {
    scenario::error("Other(KeyError)")
}

impl World {
    fn new(s: &Scenario) -> World {
        let rt = Runtime::new();
        let mut interps = BTreeMap::from([("main".to_string(), rt.main())]);
        for name in &s.interpreters {
            let id = rt.create().expect("a fresh runtime creates interpreters");
            interps.insert(name.clone(), id);
        }
        let names = interps.iter().map(|(n, id)| (*id, n.clone())).collect();
        let chans = s
            .channels
            .iter()
            .map(|c| {
                let ch = if c.exists {
                    rt.create_channel_with(op(c.unbound))
                } else {
                    rt.channel(ChannelId::new(scenario::GHOST_CHANNEL))
                };
                (c.name.clone(), ch)
            })
            .collect();
        World {
            rt,
            interps,
            names,
            chans,
            objs: BTreeMap::new(),
            tasks: BTreeMap::new(),
        }
    }

    fn step(&mut self, step: &Step) -> String {
        let interp = self.interps.get(step.interp()).copied();
        let ch = self.chans.get(step.chan()).cloned();
        match step.op {
            Op::CreateChannel => {
                let ch = self
                    .rt
                    .create_channel_with(op(step.unbound.unwrap_or_default()));
                self.chans.insert(step.chan().to_string(), ch);
                "ok".into()
            }
            Op::Send | Op::SendBuffer => {
                let (id, ch) = (interp.expect("checked"), ch.expect("checked"));
                let objs = &self.objs;
                flat(self.rt.enter(id, |tok| {
                    let item = make_item(tok, step, objs)?;
                    ok(ch.send(tok, item))
                }))
            }
            Op::SendWait => {
                let (id, ch) = (interp.expect("checked"), ch.expect("checked"));
                let objs = &self.objs;
                let timeout = step.timeout_ms.map(Duration::from_millis);
                flat(self.rt.enter(id, |tok| {
                    let item = make_item(tok, step, objs)?;
                    ok(ch.send_wait(tok, item, timeout))
                }))
            }
            Op::SendWaitStart => self.start(step, interp.expect("checked"), ch.expect("checked")),
            Op::SendWaitJoin => {
                let task = self.tasks.remove(step.task.as_deref().unwrap_or_default());
                match task.map(JoinHandle::join) {
                    Some(Ok(outcome)) => outcome,
                    Some(Err(_)) => scenario::error("Other(panic)"),
                    None => missing(),
                }
            }
            Op::Recv | Op::RecvOr => {
                let (id, ch) = (interp.expect("checked"), ch.expect("checked"));
                let key = step.keep.clone().map(|k| (step.interp().to_string(), k));
                let objs = &mut self.objs;
                flat(self.rt.enter(id, |tok| {
                    let got = if step.op == Op::Recv {
                        ch.recv(tok)?
                    } else {
                        let default = tok.str("default");
                        let got = ch.recv_or(tok, default.clone())?;
                        if got.is(&default) {
                            return Ok("default".into());
                        }
                        got
                    };
                    let outcome = describe(&got)?;
                    if let Some(key) = key {
                        objs.insert(key, got.unbind());
                    }
                    Ok(outcome)
                }))
            }
            Op::Close => {
                let (ch, how) = (ch.expect("checked"), how(step.how.expect("checked")));
                match &step.interp {
                    None => flat(Ok(ok(ch.close(how)))),
                    Some(_) => flat(
                        self.rt
                            .enter(interp.expect("checked"), |_| ok(ch.close(how))),
                    ),
                }
            }
            Op::Release => {
                let (id, ch) = (interp.expect("checked"), ch.expect("checked"));
                let end = end(step.end.expect("checked"));
                flat(self.rt.enter(id, |tok| ok(ch.release(tok, end))))
            }
            Op::DestroyInterp => self.destroy(step.interp(), interp.expect("checked")),
            Op::DestroyChannel => flat(Ok(ok(ch.expect("checked").destroy()))),
            Op::List => {
                let end = end(step.end.expect("checked"));
                match ch.expect("checked").interpreters(end) {
                    Ok(ids) => scenario::interps(
                        ids.iter()
                            .map(|id| self.names.get(id).cloned().unwrap_or(id.to_string()))
                            .collect(),
                    ),
                    Err(e) => failed(&e),
                }
            }
            Op::Count => match ch.expect("checked").info() {
                Ok(info) => scenario::count(info.count),
                Err(e) => failed(&e),
            },
            Op::Status => match ch.expect("checked").info() {
                Ok(info) => match info.status {
                    ChannelStatus::Open => "status:open".into(),
                    ChannelStatus::Closing => "status:closing".into(),
                    ChannelStatus::Closed => "status:closed".into(),
                },
                Err(e) => failed(&e),
            },
            Op::Make => {
                let key = (step.interp().to_string(), step.obj().to_string());
                let data = step.data().expect("checked");
                let made = self.rt.enter(interp.expect("checked"), |tok| {
                    match step.kind.unwrap_or_default() {
                        MakeKind::Bytearray => tok.bytearray(&data).unbind(),
                        MakeKind::Bytes => tok.bytes(&data).unbind(),
                    }
                });
                match made {
                    Ok(obj) => {
                        // An object it replaces is let go of in its owner.
                        let old = self.objs.insert(key, obj);
                        let _ = self.rt.enter(interp.expect("checked"), |_| drop(old));
                        "ok".into()
                    }
                    Err(e) => failed(&e),
                }
            }
            Op::Write | Op::Read | Op::Resize => {
                let key = (step.interp().to_string(), step.obj().to_string());
                let objs = &self.objs;
                flat(self.rt.enter(interp.expect("checked"), |tok| {
                    let Some(held) = objs.get(&key) else {
                        return Ok(missing());
                    };
                    let obj = held.bind(tok)?;
                    let data = step.data().unwrap_or_default();
                    match step.op {
                        Op::Write => {
                            let index = i64::try_from(step.index.expect("checked")).unwrap_or(-1);
                            ok(obj.setitem(&tok.int(index), &tok.int(i64::from(data[0]))))
                        }
                        Op::Read => Ok(format!("bytes:{}", scenario::render(&obj.to_bytes()?))),
                        _ => ok(obj.bytearray_extend(&data)),
                    }
                }))
            }
            Op::Drop => {
                let key = (step.interp().to_string(), step.obj().to_string());
                let objs = &mut self.objs;
                flat(self.rt.enter(interp.expect("checked"), |_| {
                    Ok(match objs.remove(&key) {
                        Some(obj) => {
                            drop(obj);
                            "ok".into()
                        }
                        None => missing(),
                    })
                }))
            }
        }
    }

    /// A blocking send on a thread of its own. Gives `queued` once the item is in the
    /// channel, or the send's own outcome if it ended first.
    fn start(&mut self, step: &Step, id: InterpId, ch: Channel) -> String {
        let objs = &self.objs;
        let item = match self.rt.enter(id, |tok| make_item(tok, step, objs)) {
            Ok(Ok(item)) => item,
            Ok(Err(e)) | Err(e) => return failed(&e),
        };
        let count = |ch: &Channel| ch.info().map(|i| i.count).unwrap_or(0);
        let before = count(&ch);
        let (rt, sender) = (self.rt.clone(), ch.clone());
        let timeout = step.timeout_ms.map(Duration::from_millis);
        let task = std::thread::spawn(move || {
            flat(rt.enter(id, |tok| ok(sender.send_wait(tok, item, timeout))))
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut outcome = None;
        while !task.is_finished() && Instant::now() < deadline {
            if count(&ch) > before {
                outcome = Some("queued".to_string());
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match outcome {
            Some(queued) => {
                self.tasks
                    .insert(step.task.clone().unwrap_or_default(), task);
                queued
            }
            None => task
                .join()
                .unwrap_or_else(|_| scenario::error("Other(panic)")),
        }
    }

    /// Drops the objects `name` owns, inside it, then destroys it.
    fn destroy(&mut self, name: &str, id: InterpId) -> String {
        let keys: Vec<_> = self
            .objs
            .keys()
            .filter(|(interp, _)| interp == name)
            .cloned()
            .collect();
        let owned: Vec<OwnedObj> = keys.iter().filter_map(|k| self.objs.remove(k)).collect();
        if !owned.is_empty() {
            let _ = self.rt.enter(id, |_| drop(owned));
        }
        match self.rt.destroy(id) {
            Ok(_report) => "ok".into(),
            Err(e) => failed(&e),
        }
    }

    /// Joins what is still running, and drops every kept object in its owner.
    fn finish(mut self) {
        for (_, task) in std::mem::take(&mut self.tasks) {
            let _ = task.join();
        }
        let mut by_interp: BTreeMap<String, Vec<OwnedObj>> = BTreeMap::new();
        for ((interp, _), obj) in std::mem::take(&mut self.objs) {
            by_interp.entry(interp).or_default().push(obj);
        }
        for (interp, objs) in by_interp {
            // Kept objects of a destroyed interpreter were dropped by its destroy.
            let _ = self.rt.enter(self.interps[&interp], |_| drop(objs));
        }
    }
}

/// The item a send step sends: a bytes item of `bytes` / `hex` or of a copy of object
/// `obj`, or (`send_buffer`, or a `send_wait` naming an object) a buffer item of `obj`.
fn make_item(
    tok: &Token<'_>,
    step: &Step,
    objs: &BTreeMap<(String, String), OwnedObj>,
) -> Result<Outgoing> {
    let named = match &step.obj {
        Some(name) => {
            let key = (step.interp().to_string(), name.clone());
            let held = objs.get(&key).ok_or_else(|| {
                Error::new(xinterp::ErrorKind::KeyError, format!("no object {name}"))
            })?;
            Some(held.bind(tok)?)
        }
        None => None,
    };
    let item = match (step.op, named) {
        (Op::Send, Some(obj)) => Outgoing::bytes(&obj)?,
        (_, Some(obj)) => Outgoing::buffer(&obj)?,
        (_, None) => Outgoing::bytes(&tok.bytes(&step.data().unwrap_or_default()))?,
    };
    Ok(match step.unbound {
        Some(policy) => item.unbound(op(policy)),
        None => item,
    })
}
