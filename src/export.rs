//! The export table: an interpreter's record of its objects that other interpreters refer to,
//! and of how many origin references each has outstanding. See `design/export.md`.
//!
//! One entry per exported object. The entry holds one strong reference to the object
//! (taken in the origin when the entry is made, given back in the origin when the count of
//! origin references falls to zero). Origin references are counted, not refcounted on the
//! object: any thread may duplicate one it holds (the entry cannot vanish meanwhile), but
//! only a thread holding the origin may give one back, because the last one frees the entry
//! (INV-EXPORT-COUNTED).
//!
//! The ledger (INV-LEDGER): for every entry, `refs == proxies + in_flight + pending`, where
//! each origin reference is a proxy's, a message's or a value's crossing the membrane in flight, or a release queued
//! on its way back. Checked at every transition in debug builds.

mod origin_ref;

pub(crate) use origin_ref::OriginRef;

use std::borrow::Cow;
use std::collections::{hash_map, HashMap};

use smallvec::SmallVec;

use crate::counters::{Event, LiveCounters};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::extensions::Extension;
use crate::interp::{InterpId, InterpState};
use crate::message::ObjectRef;
use crate::object::{Obj, ObjPtr};
use crate::release::Joined;
use crate::runtime::Runtime;
use crate::sync::{process_unique, Arc, IdBuildHasher, Mutex};

/// What an origin reference is doing right now, for the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Held by a message in a channel, or by a call or a value crossing the membrane.
    InFlight,
    /// Held by a proxy.
    Proxy,
}

struct Entry {
    serial: u64,
    generation: u64,
    object: ObjPtr,
    type_name: Cow<'static, str>,
    refs: usize,
    proxies: usize,
    in_flight: usize,
    pending: usize,
    /// Who holds the proxies' references.
    holders: Holders,
}

/// Who holds an export's proxy references: receiving interpreter and references, in id
/// order. Usually one or two, kept inline: a map would allocate a node per export.
#[derive(Default)]
struct Holders(SmallVec<[(InterpId, usize); 2]>);

impl Holders {
    fn position(&self, holder: InterpId) -> std::result::Result<usize, usize> {
        self.0.binary_search_by_key(&holder, |&(id, _)| id)
    }

    fn add(&mut self, holder: InterpId, count: usize) {
        match self.position(holder) {
            Ok(i) => self.0[i].1 += count,
            Err(i) => self.0.insert(i, (holder, count)),
        }
    }

    /// Takes `count` of `holder`'s references away, with one search; if it holds fewer,
    /// changes nothing and says how many it holds.
    fn take(&mut self, holder: InterpId, count: usize) -> std::result::Result<(), usize> {
        let Ok(i) = self.position(holder) else {
            return if count == 0 { Ok(()) } else { Err(0) };
        };
        match self.0[i].1.checked_sub(count) {
            Some(0) => {
                self.0.remove(i);
            }
            Some(left) => self.0[i].1 = left,
            None => return Err(self.0[i].1),
        }
        Ok(())
    }
}

// SAFETY: an entry's object pointer is dereferenced (its refcount given back) only by a
// thread holding the origin (INV-RELEASE-IN-OWNER, INV-EXPORT-COUNTED); other threads
// only compare and copy the address.
unsafe impl Send for Entry {}

impl Entry {
    /// The ledger, checked at every transition in every build: a miscount is a panic that
    /// names the export, never an early free (INV-LEDGER).
    fn check_ledger(&self, origin: InterpId) {
        assert_eq!(
            self.refs,
            self.proxies + self.in_flight + self.pending,
            "ledger of export {} (a {} of interpreter {origin}): refs {} != proxies {} + in \
             flight {} + pending {} (INV-LEDGER)",
            self.serial,
            self.type_name,
            self.refs,
            self.proxies,
            self.in_flight,
            self.pending,
        );
    }

    /// Moves one of the entry's counts by `by`, panicking (in every build) if it would go
    /// negative or overflow, with the export named (INV-LEDGER).
    fn shift(&mut self, count: Count, by: isize, origin: InterpId) {
        let slot = match count {
            Count::Refs => &mut self.refs,
            Count::Role(Role::Proxy) => &mut self.proxies,
            Count::Role(Role::InFlight) => &mut self.in_flight,
            Count::Pending => &mut self.pending,
        };
        match slot.checked_add_signed(by) {
            Some(after) => *slot = after,
            None => self.out_of_range(count, by, origin),
        }
    }

    /// The panic of a [`Entry::shift`] out of range, out of line.
    #[cold]
    #[inline(never)]
    fn out_of_range(&self, count: Count, by: isize, origin: InterpId) -> ! {
        let (name, before) = match count {
            Count::Refs => ("refs", self.refs),
            Count::Role(Role::Proxy) => ("proxies", self.proxies),
            Count::Role(Role::InFlight) => ("in flight", self.in_flight),
            Count::Pending => ("pending", self.pending),
        };
        panic!(
            "ledger of export {} (a {} of interpreter {origin}): {name} {before} {by:+} \
             is out of range (INV-LEDGER)",
            self.serial, self.type_name
        )
    }

    /// Takes `count` of a proxy's references away from `holder`'s share, checked.
    fn unhold(&mut self, holder: InterpId, count: usize, origin: InterpId) {
        if let Err(held) = self.holders.take(holder, count) {
            self.holds_fewer(holder, count, held, origin)
        }
    }

    /// The panic of an [`Entry::unhold`] of more than the holder holds, out of line.
    #[cold]
    #[inline(never)]
    fn holds_fewer(&self, holder: InterpId, count: usize, held: usize, origin: InterpId) -> ! {
        panic!(
            "ledger of export {} (a {} of interpreter {origin}): interpreter {holder} gives back \
             {count} proxy reference(s) but holds {held} (INV-LEDGER)",
            self.serial, self.type_name
        )
    }
}

/// Which count of an entry [`Entry::shift`] moves.
#[derive(Clone, Copy)]
enum Count {
    Refs,
    Role(Role),
    Pending,
}

/// The serial of a reference that names no entry: an export made after the table closed
/// (INV-EXPORTS-CLOSED). Real serials come from [`process_unique`] and never reach it.
const DEAD_SERIAL: u64 = u64::MAX;

/// An origin reference's release on its way back, run in the origin with the others
/// waiting beside it in a thread's batch: one critical section of the table for all.
#[derive(Clone, Copy)]
pub(crate) struct GiveBack {
    pub(crate) key: ObjectRef,
    pub(crate) count: usize,
}

impl Joined for GiveBack {
    fn run_together(owner: &InterpState, releases: impl Iterator<Item = GiveBack>) {
        Exports::of(owner).finish_releases(releases);
    }
}

/// What [`Exports::start_release`] did with a reference.
enum Started {
    /// Marked pending: its release goes on to the origin.
    GiveBack,
    /// Nothing to give back; it was the last reference out if this holds the anchor, which
    /// the caller drops last (INV-OWNER-OUTLIVES).
    Ended(Option<Arc<InterpState>>),
}

/// What goes when a run of give-backs ends, the table's mutex let go: the strong references
/// of the objects whose entries went with their last reference, then the anchor if the last
/// reference out came back.
struct Freed {
    objects: SmallVec<[ObjPtr; 64]>,
    anchor: Option<Arc<InterpState>>,
}

impl Drop for Freed {
    fn drop(&mut self) {
        for object in self.objects.drain(..) {
            // SAFETY: made only by `finish_releases`, which runs while the thread holds the
            // origin (INV-RELEASE-IN-OWNER); each entry's one strong reference is given back
            // once, when its last origin reference goes (INV-EXPORT-COUNTED).
            unsafe { object.decref() };
        }
        // Never the last `Arc`: the thread holding the origin holds one of its own
        // (INV-OWNER-OUTLIVES).
        drop(self.anchor.take());
    }
}

#[derive(Default)]
struct Table {
    by_addr: HashMap<usize, Entry, IdBuildHasher>,
    /// Set when the interpreter's destroy begins, in the same critical section that decides
    /// it (INV-EXPORTS-CLOSED): from then on no new reference is counted. Exports made later
    /// (by a pending call of the final drain) are dead, and bytes are not resolved; the
    /// entries already there live on until their references come back.
    closed: bool,
    /// Set when the interpreter is destroyed under the `Invalidate` policy: every entry was
    /// released then, and every later operation on an origin reference does nothing.
    invalidated: bool,
    /// Origin references out (dead and invalidated ones too): each [`OriginRef`]'s count,
    /// added when it is made and taken away when it ends (INV-OWNER-OUTLIVES).
    out: usize,
    /// The interpreter's state, held while `out` is not zero: what keeps it alive for the
    /// references, which hold no `Arc` of their own (INV-OWNER-OUTLIVES).
    anchor: Option<Arc<InterpState>>,
}

impl Table {
    /// Whether an operation on `key` has nothing to count: the table was invalidated, or
    /// `key` is a dead reference.
    fn ignores(&self, key: &ObjectRef) -> bool {
        self.invalidated || key.serial == DEAD_SERIAL
    }

    /// Counts a new origin reference out; the first anchors `state`, this table's
    /// interpreter (INV-OWNER-OUTLIVES).
    fn reference_out(&mut self, state: &Arc<InterpState>) {
        if self.out == 0 {
            self.anchor = Some(Arc::clone(state));
        }
        self.out += 1;
    }

    /// Counts another reference out beside one that is out already (so the state is
    /// anchored).
    fn another_out(&mut self) {
        assert!(self.out > 0, "a reference is out (INV-OWNER-OUTLIVES)");
        self.out += 1;
    }

    /// Counts `count` references back. After the last, the anchor is given to the caller,
    /// to drop once this table is no longer borrowed (INV-OWNER-OUTLIVES).
    #[must_use]
    fn back(&mut self, count: usize) -> Option<Arc<InterpState>> {
        self.out = self
            .out
            .checked_sub(count)
            .expect("every reference back was out (INV-OWNER-OUTLIVES)");
        if self.out == 0 {
            self.anchor.take()
        } else {
            None
        }
    }
}

/// An interpreter's export table. Its mutex is held only for bookkeeping: never across a
/// switch or a call (INV-NO-GUARD-SWITCH).
pub(crate) struct Exports {
    table: Mutex<Table>,
    /// Where references taken and given back are counted: only those the table counts
    /// (never a dead reference's), so taken == released + outstanding.
    counters: Arc<LiveCounters>,
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exports")
            .field("entries", &self.table.lock().by_addr.len())
            .finish()
    }
}

/// One outstanding export, as `Runtime::destroy` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportInfo {
    /// The export's serial.
    pub serial: u64,
    /// The exported object's type.
    pub type_name: String,
    /// Origin references outstanding.
    pub refs: usize,
    /// Held by proxies.
    pub proxies: usize,
    /// Held by messages and values in flight.
    pub in_flight: usize,
    /// The interpreters whose proxies hold references, with how many each.
    pub holders: Vec<(InterpId, usize)>,
    /// Releases on their way back.
    pub pending: usize,
}

impl Extension for Exports {
    const SLOT: usize = 0;
}

impl Exports {
    /// The export table of interpreter `state` (kept in its extensions).
    pub(crate) fn of(state: &InterpState) -> &Exports {
        state.extensions.get()
    }

    pub(crate) fn new(counters: Arc<LiveCounters>) -> Self {
        Exports {
            table: Mutex::new(Table::default()),
            counters,
        }
    }

    /// The destroy of interpreter `id` begins: under `Refuse` (`refuse_if_held`), refuses
    /// while references other than releases on their way back are out; otherwise, or if
    /// none are, closes the table to new references. Decided under the table's mutex, while
    /// `begin_destroy` holds the interpreter lock reserved, so that no reference can be
    /// counted between the check and the destroy (INV-EXPORTS-CLOSED).
    pub(crate) fn close(&self, id: InterpId, refuse_if_held: bool) -> Result<()> {
        let mut table = self.table.lock();
        if refuse_if_held {
            refuse_if_held_in(&table, id)?;
        }
        table.closed = true;
        Ok(())
    }

    /// How many entries the table has.
    pub(crate) fn entries(&self) -> usize {
        self.table.lock().by_addr.len()
    }

    /// Adds one origin reference to `obj`, making its entry if needed. The caller holds
    /// `obj`'s interpreter (its token proves it).
    pub(crate) fn export(&self, obj: &Obj<'_>, role: Role) -> ObjectRef {
        let origin = obj.token().id();
        let runtime = obj.token().runtime().id();
        let mut table = self.table.lock();
        let addr = obj.ptr().addr();
        table.reference_out(obj.token().interp());
        if table.closed {
            // A pending call of the final drain exports after the destroy began: nothing is
            // recorded or pinned, and the ledger counts nothing (only `out` does, so that the
            // state outlives the reference), so nothing can leak and `Refuse` is not bypassed;
            // the reference names no entry, and every use of it fails validation
            // (INV-EXPORTS-CLOSED, INV-OWNER-DEATH).
            return ObjectRef {
                runtime,
                origin: origin.get(),
                serial: DEAD_SERIAL,
                generation: DEAD_SERIAL,
                addr: addr as u64,
            };
        }
        let entry = table.by_addr.entry(addr).or_insert_with(|| {
            // Unique in the process, so a message names one export of one runtime.
            let serial = process_unique();
            Entry {
                serial,
                generation: serial,
                // The entry's own strong reference (INV-EXPORT-COUNTED).
                object: obj.clone().into_ptr(),
                type_name: obj.type_name_cow(),
                refs: 0,
                proxies: 0,
                in_flight: 0,
                pending: 0,
                holders: Holders::default(),
            }
        });
        entry.shift(Count::Refs, 1, origin);
        entry.shift(Count::Role(role), 1, origin);
        entry.check_ledger(origin);
        self.counters.bump(Event::OriginRefsTaken);
        ObjectRef {
            runtime,
            origin: origin.get(),
            serial: entry.serial,
            generation: entry.generation,
            addr: addr as u64,
        }
    }

    /// Looks `key` up: the object it names, if the entry exists and matches exactly
    /// (INV-MSG-VALIDATE). Never dereferences anything.
    pub(crate) fn validate(&self, key: &ObjectRef) -> Result<ObjPtr> {
        if key.serial == DEAD_SERIAL {
            return Err(dead_error(key));
        }
        let mut table = self.table.lock();
        exact_mut(&mut table, key).map(|e| e.object)
    }

    /// Checks `key` against the table and, in the same critical section, adds an origin
    /// reference to what it names (for bytes whose own reference, if any, is elsewhere).
    /// Refused with `InterpreterGone` once the interpreter's destroy has begun: it hands
    /// out no new references, whatever its policy (INV-EXPORTS-CLOSED).
    pub(crate) fn validate_and_duplicate(&self, key: &ObjectRef, role: Role) -> Result<()> {
        let mut table = self.table.lock();
        if table.closed {
            return Err(closed_error(key));
        }
        let entry = exact_mut(&mut table, key)?;
        let origin = InterpId::new(key.origin);
        entry.shift(Count::Refs, 1, origin);
        entry.shift(Count::Role(role), 1, origin);
        entry.check_ledger(origin);
        // An entry has a reference out, so the state is anchored.
        table.another_out();
        self.counters.bump(Event::OriginRefsTaken);
        Ok(())
    }

    /// Adds an origin reference to an entry the caller already holds one of (so it exists).
    /// Any thread may do this; a closed table still counts it (the entry is there until its
    /// references come back). Nothing to count for a dead reference.
    pub(crate) fn duplicate(&self, key: &ObjectRef, role: Role) {
        let mut table = self.table.lock();
        table.another_out();
        if table.ignores(key) {
            return;
        }
        let origin = InterpId::new(key.origin);
        let entry = entry_mut(&mut table, key);
        entry.shift(Count::Refs, 1, origin);
        entry.shift(Count::Role(role), 1, origin);
        entry.check_ledger(origin);
        self.counters.bump(Event::OriginRefsTaken);
    }

    /// Moves `count` references in flight to a proxy of interpreter `holder`, and gives the
    /// object the entry names: the check of `validate` and the move in one critical
    /// section (INV-MSG-VALIDATE). On an error (a dead reference, an entry gone with an
    /// invalidated table) nothing is counted.
    pub(crate) fn to_proxy(
        &self,
        key: &ObjectRef,
        count: usize,
        holder: InterpId,
    ) -> Result<ObjPtr> {
        if key.serial == DEAD_SERIAL {
            return Err(dead_error(key));
        }
        let mut table = self.table.lock();
        let entry = exact_mut(&mut table, key)?;
        let origin = InterpId::new(key.origin);
        let by = signed(count);
        entry.shift(Count::Role(Role::InFlight), -by, origin);
        entry.shift(Count::Role(Role::Proxy), by, origin);
        entry.holders.add(holder, count);
        entry.check_ledger(origin);
        Ok(entry.object)
    }

    /// Marks a reference as on its way back (its holder is gone; the release is queued or
    /// about to run). [`Started::Ended`] if there is nothing to give back (a dead reference,
    /// an invalidated table): the reference ends here.
    fn start_release(
        &self,
        key: &ObjectRef,
        role: Role,
        count: usize,
        holder: Option<InterpId>,
    ) -> Started {
        let mut table = self.table.lock();
        if table.ignores(key) {
            return Started::Ended(table.back(count));
        }
        let origin = InterpId::new(key.origin);
        let entry = entry_mut(&mut table, key);
        let by = signed(count);
        entry.shift(Count::Role(role), -by, origin);
        if let Some(holder) = holder {
            entry.unhold(holder, count, origin);
        }
        entry.shift(Count::Pending, by, origin);
        entry.check_ledger(origin);
        Started::GiveBack
    }

    /// Gives origin references back, all in one critical section. Runs in the origin
    /// (INV-RELEASE-IN-OWNER): an entry's last reference removes it and releases its strong
    /// reference, after the table's mutex is let go.
    fn finish_releases(&self, releases: impl Iterator<Item = GiveBack>) {
        // Declared first, so dropped last: after the guard, also when a miscount unwinds.
        let mut freed = Freed {
            objects: SmallVec::new(),
            anchor: None,
        };
        let mut table = self.table.lock();
        if table.invalidated {
            let count = releases.map(|release| release.count).sum();
            freed.anchor = table.back(count);
            return;
        }
        let mut released = 0;
        for GiveBack { key, count } in releases {
            let origin = InterpId::new(key.origin);
            // One lookup finds the entry and, if this was its last reference, removes it.
            let mut slot = match table.by_addr.entry(key.addr as usize) {
                hash_map::Entry::Occupied(slot) if slot.get().serial == key.serial => slot,
                _ => no_entry_for_a_counted_reference(),
            };
            let entry = slot.get_mut();
            let by = signed(count);
            entry.shift(Count::Pending, -by, origin);
            entry.shift(Count::Refs, -by, origin);
            entry.check_ledger(origin);
            released += count;
            if entry.refs == 0 {
                freed.objects.push(slot.remove().object);
            }
        }
        freed.anchor = table.back(released);
        self.counters
            .add(Event::OriginRefsReleased, released as u64);
    }

    /// The exports outstanding, by serial.
    pub(crate) fn outstanding(&self) -> Vec<ExportInfo> {
        outstanding_in(&self.table.lock())
    }

    /// Destroy under `Invalidate`: every entry's strong reference is given back now (the
    /// caller holds the interpreter for its final drain), and later releases are no-ops.
    pub(crate) fn invalidate(&self) -> usize {
        let entries: Vec<Entry> = {
            let mut table = self.table.lock();
            table.invalidated = true;
            table.by_addr.drain().map(|(_, e)| e).collect()
        };
        let count = entries.len();
        // Every reference still out is given back at once, as far as the counters go.
        let refs: usize = entries.iter().map(|e| e.refs).sum();
        self.counters.add(Event::OriginRefsReleased, refs as u64);
        for entry in entries {
            // SAFETY: the destroying thread holds the interpreter (INV-OWN-LOCKED); each
            // entry's one strong reference is given back once, here (INV-EXPORT-COUNTED).
            unsafe { entry.object.decref() };
        }
        count
    }
}

impl Runtime {
    /// Interpreter `id`'s objects held by other interpreters, with the ledger of each:
    /// origin references = proxies + in flight + releases pending (INV-LEDGER).
    pub fn exports(&self, id: InterpId) -> Result<Vec<ExportInfo>> {
        let state = self.lookup(id)?;
        Ok(Exports::of(&state).outstanding())
    }
}

/// The entry `key` names exactly (address, serial and generation), or the error saying why
/// there is none (INV-MSG-VALIDATE).
fn exact_mut<'a>(table: &'a mut Table, key: &ObjectRef) -> Result<&'a mut Entry> {
    match usize::try_from(key.addr)
        .ok()
        .and_then(|addr| table.by_addr.get_mut(&addr))
    {
        Some(e) if e.serial == key.serial && e.generation == key.generation => Ok(e),
        found => Err(missing_error(key, found.is_some())),
    }
}

#[cold]
#[inline(never)]
fn dead_error(key: &ObjectRef) -> Error {
    Error::new(
        ErrorKind::InterpreterGone,
        format!(
            "interpreter {} was being destroyed when this reference was made",
            key.origin
        ),
    )
}

#[cold]
#[inline(never)]
fn missing_error(key: &ObjectRef, stale: bool) -> Error {
    Error::new(
        ErrorKind::InvalidMessage,
        format!(
            "no live export {} at {:#x} in interpreter {}{}",
            key.serial,
            key.addr,
            key.origin,
            if stale {
                " (a stale object pointer: the address names another export)"
            } else {
                ""
            }
        ),
    )
}

#[cold]
#[inline(never)]
fn closed_error(key: &ObjectRef) -> Error {
    Error::new(
        ErrorKind::InterpreterGone,
        format!(
            "interpreter {} is being destroyed; it hands out no new references",
            key.origin
        ),
    )
}

fn entry_mut<'a>(table: &'a mut Table, key: &ObjectRef) -> &'a mut Entry {
    match table.by_addr.get_mut(&(key.addr as usize)) {
        Some(e) if e.serial == key.serial => e,
        _ => no_entry_for_a_counted_reference(),
    }
}

#[cold]
#[inline(never)]
fn no_entry_for_a_counted_reference() -> ! {
    panic!("an origin reference keeps its entry alive (INV-EXPORT-COUNTED)")
}

/// A count of references as a signed step.
fn signed(count: usize) -> isize {
    isize::try_from(count).expect("reference counts fit in isize")
}

/// The exports of `table`, by serial.
fn outstanding_in(table: &Table) -> Vec<ExportInfo> {
    let mut out: Vec<ExportInfo> = table
        .by_addr
        .values()
        .map(|e| ExportInfo {
            serial: e.serial,
            type_name: e.type_name.to_string(),
            refs: e.refs,
            proxies: e.proxies,
            in_flight: e.in_flight,
            pending: e.pending,
            holders: e.holders.0.to_vec(),
        })
        .collect();
    out.sort_by_key(|e| e.serial);
    out
}

/// The `Refuse` owner-death policy: refuses while references other than releases on their
/// way back are out, listing each export held and by what. Pending releases are run by the
/// final drain, or late.
fn refuse_if_held_in(table: &Table, id: InterpId) -> Result<()> {
    let held: Vec<ExportInfo> = outstanding_in(table)
        .into_iter()
        .filter(|e| e.proxies + e.in_flight > 0)
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = held
        .iter()
        .map(|e| {
            let holders: Vec<String> = e
                .holders
                .iter()
                .map(|(id, n)| format!("interpreter {id} ({n})"))
                .collect();
            format!(
                "export {} (a {}): {} proxy reference(s) held by [{}], {} in flight",
                e.serial,
                e.type_name,
                e.proxies,
                holders.join(", "),
                e.in_flight
            )
        })
        .collect();
    fail(
        ErrorKind::InterpreterBusy,
        format!(
            "interpreter {id} cannot be destroyed: {} of its objects are held by other \
             interpreters: {}",
            held.len(),
            list.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, OwnerDeath, Runtime};

    /// Exports a list of `s` twice and hands one reference each to proxies of `r1` and `r2`;
    /// then `slip` gives references back wrongly. Every build panics naming the export
    /// (INV-LEDGER); before, the holders subtraction wrapped in release builds and the
    /// entry could reach zero references (and free its object) early (audit-1 S2, the slip
    /// F1 reached).
    fn miscount(slip: impl FnOnce(&Exports, &ObjectRef, InterpId)) {
        // `Invalidate`, so that the runtime's finalization (during the unwind) gives back the
        // entry the broken ledger would otherwise keep forever: nothing leaks.
        let rt = Runtime::with_config(Config::default().owner_death(OwnerDeath::Invalidate));
        let (s, r1, r2) = (
            rt.create().unwrap(),
            rt.create().unwrap(),
            rt.create().unwrap(),
        );
        rt.enter(s, |tok| {
            let list = tok.list(&[]);
            let exports = Exports::of(tok.interp());
            // The references below are bare keys, which no `OriginRef` ends: as the slip
            // unwinds, the anchor they keep is let go (else the state would keep itself).
            struct LetGo<'a>(&'a Exports);
            impl Drop for LetGo<'_> {
                fn drop(&mut self) {
                    let anchor = self.0.table.lock().anchor.take();
                    drop(anchor);
                }
            }
            let _let_go = LetGo(exports);
            let key = exports.export(&list, Role::InFlight);
            exports.to_proxy(&key, 1, r1).unwrap();
            exports.export(&list, Role::InFlight);
            exports.to_proxy(&key, 1, r2).unwrap();
            slip(exports, &key, r1);
        })
        .unwrap();
    }

    #[test]
    #[should_panic(expected = "gives back 2 proxy reference(s) but holds 1 (INV-LEDGER)")]
    fn a_holder_giving_back_more_than_it_holds_panics_in_every_build() {
        miscount(|exports, key, r1| {
            exports.start_release(key, Role::Proxy, 2, Some(r1));
        });
    }

    #[test]
    #[should_panic(expected = "pending 0 -1 is out of range (INV-LEDGER)")]
    fn a_release_finished_twice_panics_in_every_build() {
        miscount(|exports, key, _| {
            let release = GiveBack {
                key: *key,
                count: 1,
            };
            exports.finish_releases(std::iter::once(release))
        });
    }

    // INV-OWNER-OUTLIVES: the references out keep their origin's state alive through one
    // anchor, the table's, and take no count each; the last one back lets go of it.
    #[test]
    fn references_out_anchor_their_origin_once() {
        let rt = Runtime::new();
        let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
        let ch = rt.create_channel();
        let state = rt.lookup(s).unwrap();
        let counted = || Arc::strong_count(&state);
        // Once entered, the thread's state cache holds a count of its own.
        rt.enter(s, |_| ()).unwrap();
        let before = counted();
        rt.enter(s, |tok| {
            for _ in 0..3 {
                ch.send(tok, crate::Outgoing::object(&tok.list(&[])))
                    .unwrap();
            }
            let out = counted();
            tok.switch(r, |tr| {
                let proxies: Vec<_> = (0..3).map(|_| ch.recv(tr).unwrap()).collect();
                assert_eq!(counted(), out, "receiving takes no count");
                drop(proxies);
            })
            .unwrap();
            assert_eq!(counted(), out - 1, "the last back let go of the anchor");
        })
        .unwrap();
        assert_eq!(counted(), before);
        rt.enter(s, |tok| {
            let kept = OriginRef::export(&tok.list(&[]), Role::InFlight);
            let anchored = counted();
            let more: Vec<_> = (0..3)
                .map(|_| OriginRef::export(&tok.list(&[]), Role::InFlight))
                .collect();
            assert_eq!(counted(), anchored, "three more references, no more counts");
            drop((kept, more));
            assert_eq!(counted(), anchored - 1);
        })
        .unwrap();
        ch.destroy().unwrap();
    }
}
