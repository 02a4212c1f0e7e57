//! The export table: an interpreter's record of its objects that other interpreters refer to,
//! and of how many origin references each has outstanding. See `design/proxy.md`.
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

use std::collections::{BTreeMap, HashMap};

use crate::counters::LiveCounters;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::{InterpId, InterpState};
use crate::message::ObjectRef;
use crate::object::{Obj, ObjPtr};
use crate::release::release_in_owner;
use crate::runtime::Runtime;
use crate::sync::{Arc, Mutex};

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
    type_name: String,
    refs: usize,
    proxies: usize,
    in_flight: usize,
    pending: usize,
    /// Who holds the proxies' references: receiving interpreter -> references.
    holders: BTreeMap<InterpId, usize>,
}

// SAFETY: an entry's object pointer is dereferenced (its refcount given back) only by a
// thread holding the origin (INV-RELEASE-IN-OWNER, INV-EXPORT-COUNTED); other threads
// only compare and copy the address.
unsafe impl Send for Entry {}

impl Entry {
    fn check_ledger(&self, origin: InterpId) {
        debug_assert_eq!(
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
}

#[derive(Default)]
struct Table {
    by_addr: HashMap<usize, Entry>,
    next_serial: u64,
    /// Set when the interpreter is destroyed under the `Invalidate` policy: every entry was
    /// released then, and every later operation on an origin reference does nothing.
    invalidated: bool,
}

/// An interpreter's export table. Its mutex is held only for bookkeeping: never across a
/// switch or a call (INV-NO-GUARD-SWITCH).
pub(crate) struct Exports {
    table: Mutex<Table>,
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

impl Exports {
    pub(crate) fn new() -> Self {
        Exports {
            table: Mutex::new(Table::default()),
        }
    }

    /// Adds one origin reference to `obj`, making its entry if needed. The caller holds
    /// `obj`'s interpreter (its token proves it).
    pub(crate) fn export(&self, obj: &Obj<'_>, role: Role) -> ObjectRef {
        let origin = obj.token().id();
        LiveCounters::bump(&obj.token().counters().origin_refs_taken);
        let mut table = self.table.lock();
        let addr = obj.ptr().addr();
        if table.invalidated {
            // A pending call of the final drain exports after `invalidate`: nothing is
            // recorded and nothing pinned, so nothing can leak; the reference names no
            // entry, and every use of it fails validation (INV-OWNER-DEATH).
            return ObjectRef {
                origin: origin.get(),
                serial: u64::MAX,
                generation: u64::MAX,
                addr: addr as u64,
            };
        }
        if !table.by_addr.contains_key(&addr) {
            let serial = table.next_serial;
            table.next_serial += 1;
            table.by_addr.insert(
                addr,
                Entry {
                    serial,
                    generation: serial,
                    // The entry's own strong reference (INV-EXPORT-COUNTED).
                    object: obj.clone().into_ptr(),
                    type_name: obj.type_name(),
                    refs: 0,
                    proxies: 0,
                    in_flight: 0,
                    pending: 0,
                    holders: BTreeMap::new(),
                },
            );
        }
        let entry = table.by_addr.get_mut(&addr).expect("just made");
        entry.refs += 1;
        bump(entry, role, 1);
        entry.check_ledger(origin);
        ObjectRef {
            origin: origin.get(),
            serial: entry.serial,
            generation: entry.generation,
            addr: addr as u64,
        }
    }

    /// Looks `key` up: the object it names, if the entry exists and matches exactly
    /// (INV-MSG-VALIDATE). Never dereferences anything.
    pub(crate) fn validate(&self, key: &ObjectRef) -> Result<ObjPtr> {
        let table = self.table.lock();
        let entry = usize::try_from(key.addr)
            .ok()
            .and_then(|addr| table.by_addr.get(&addr));
        match entry {
            Some(e) if e.serial == key.serial && e.generation == key.generation => Ok(e.object),
            Some(_) => fail(
                ErrorKind::InvalidMessage,
                format!(
                    "stale object pointer: export {} of interpreter {} no longer names that object",
                    key.serial, key.origin
                ),
            ),
            None => fail(
                ErrorKind::InvalidMessage,
                format!(
                    "no export {} at {:#x} in interpreter {}",
                    key.serial, key.addr, key.origin
                ),
            ),
        }
    }

    /// Checks `key` against the table and, in the same critical section, adds an origin
    /// reference to what it names (for bytes whose own reference, if any, is elsewhere).
    pub(crate) fn validate_and_duplicate(&self, key: &ObjectRef, role: Role) -> Result<()> {
        let mut table = self.table.lock();
        let found = usize::try_from(key.addr)
            .ok()
            .and_then(|addr| table.by_addr.get_mut(&addr))
            .filter(|e| e.serial == key.serial && e.generation == key.generation);
        match found {
            Some(entry) => {
                entry.refs += 1;
                bump(entry, role, 1);
                entry.check_ledger(InterpId::new(key.origin));
                Ok(())
            }
            None => fail(
                ErrorKind::InvalidMessage,
                format!(
                    "no live export {} at {:#x} in interpreter {}",
                    key.serial, key.addr, key.origin
                ),
            ),
        }
    }

    /// Adds an origin reference to an entry the caller already holds one of (so it exists).
    /// Any thread may do this.
    pub(crate) fn duplicate(&self, key: &ObjectRef, role: Role) {
        let mut table = self.table.lock();
        if table.invalidated {
            return;
        }
        let entry = entry_mut(&mut table, key);
        entry.refs += 1;
        bump(entry, role, 1);
        entry.check_ledger(InterpId::new(key.origin));
    }

    /// Moves `count` references in flight to a proxy of interpreter `holder`.
    pub(crate) fn to_proxy(&self, key: &ObjectRef, count: usize, holder: InterpId) {
        let mut table = self.table.lock();
        if table.invalidated {
            return;
        }
        let entry = entry_mut(&mut table, key);
        bump(entry, Role::InFlight, -(count as isize));
        bump(entry, Role::Proxy, count as isize);
        *entry.holders.entry(holder).or_default() += count;
        entry.check_ledger(InterpId::new(key.origin));
    }

    /// Marks a reference as on its way back (its holder is gone; the release is queued or
    /// about to run).
    /// False if there is nothing to give back (the table was invalidated).
    fn start_release(
        &self,
        key: &ObjectRef,
        role: Role,
        count: usize,
        holder: Option<InterpId>,
    ) -> bool {
        let mut table = self.table.lock();
        if table.invalidated {
            return false;
        }
        let entry = entry_mut(&mut table, key);
        bump(entry, role, -(count as isize));
        if let Some(holder) = holder {
            let held = entry
                .holders
                .get_mut(&holder)
                .expect("a proxy's holder is recorded");
            *held -= count;
            if *held == 0 {
                entry.holders.remove(&holder);
            }
        }
        entry.pending += count;
        entry.check_ledger(InterpId::new(key.origin));
        true
    }

    /// Gives one origin reference back. Runs in the origin (INV-RELEASE-IN-OWNER): the last
    /// one removes the entry and releases its strong reference.
    fn finish_release(&self, key: &ObjectRef, count: usize) {
        let freed = {
            let mut table = self.table.lock();
            if table.invalidated {
                return;
            }
            let addr = key.addr as usize;
            let entry = entry_mut(&mut table, key);
            entry.pending -= count;
            entry.refs -= count;
            entry.check_ledger(InterpId::new(key.origin));
            if entry.refs == 0 {
                table.by_addr.remove(&addr).map(|e| e.object)
            } else {
                None
            }
        };
        if let Some(object) = freed {
            // SAFETY: release functions run while the thread holds the origin
            // (INV-RELEASE-IN-OWNER); the entry's one strong reference is given back once,
            // when its last origin reference goes (INV-EXPORT-COUNTED).
            unsafe { object.decref() };
        }
    }

    /// Refuses a destroy while references other than releases on their way back are out
    /// (the `Refuse` owner-death policy). Pending releases are run by the final drain, or
    /// late.
    pub(crate) fn refuse_if_held(&self, id: InterpId) -> Result<()> {
        let held: Vec<ExportInfo> = self
            .outstanding()
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

    /// The exports outstanding, by serial.
    pub(crate) fn outstanding(&self) -> Vec<ExportInfo> {
        let table = self.table.lock();
        let mut out: Vec<ExportInfo> = table
            .by_addr
            .values()
            .map(|e| ExportInfo {
                serial: e.serial,
                type_name: e.type_name.clone(),
                refs: e.refs,
                proxies: e.proxies,
                in_flight: e.in_flight,
                pending: e.pending,
                holders: e.holders.iter().map(|(k, v)| (*k, *v)).collect(),
            })
            .collect();
        out.sort_by_key(|e| e.serial);
        out
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
        for entry in entries {
            // SAFETY: the destroying thread holds the interpreter (INV-OWN-LOCKED); each
            // entry's one strong reference is given back once, here (INV-EXPORT-COUNTED).
            unsafe { entry.object.decref() };
        }
        count
    }
}

fn entry_mut<'a>(table: &'a mut Table, key: &ObjectRef) -> &'a mut Entry {
    table
        .by_addr
        .get_mut(&(key.addr as usize))
        .filter(|e| e.serial == key.serial)
        .expect("an origin reference keeps its entry alive (INV-EXPORT-COUNTED)")
}

fn bump(entry: &mut Entry, role: Role, by: isize) {
    let slot = match role {
        Role::InFlight => &mut entry.in_flight,
        Role::Proxy => &mut entry.proxies,
    };
    *slot = slot
        .checked_add_signed(by)
        .expect("ledger counts never go negative");
}

/// One origin reference, owned: it keeps an exported object alive in its origin until
/// dropped, and then gives the reference back in the origin by the runtime's release
/// strategy. Bound to no interpreter.
pub(crate) struct OriginRef {
    key: ObjectRef,
    role: Role,
    /// For a proxy's references: the interpreter holding the proxy.
    holder: Option<InterpId>,
    /// How many origin references this value holds: one, or more once a proxy has absorbed
    /// the surplus references of identity-cache hits. They go back in one release that
    /// carries the count (INV-IDENTITY-ONE).
    count: usize,
    origin: Arc<InterpState>,
    rt: Runtime,
}

impl OriginRef {
    /// Wraps a reference just added to `origin`'s table (by `export` or `duplicate`).
    pub(crate) fn adopt(key: ObjectRef, role: Role, origin: Arc<InterpState>, rt: Runtime) -> Self {
        OriginRef {
            key,
            role,
            holder: None,
            count: 1,
            origin,
            rt,
        }
    }

    pub(crate) fn key(&self) -> &ObjectRef {
        &self.key
    }

    pub(crate) fn origin(&self) -> &Arc<InterpState> {
        &self.origin
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// A second reference to the same object, in `role`.
    pub(crate) fn duplicate(&self, role: Role) -> OriginRef {
        self.origin.exports.duplicate(&self.key, role);
        LiveCounters::bump(&self.origin.counters.origin_refs_taken);
        OriginRef::adopt(
            self.key,
            role,
            Arc::clone(&self.origin),
            self.rt.uncounted(),
        )
    }

    /// Gives up this value's references without releasing them, for a holder that takes
    /// them over (a proxy absorbing an identity-cache hit), and says how many there were.
    pub(crate) fn hand_over(mut self) -> usize {
        std::mem::replace(&mut self.count, 0)
    }

    /// Adds `count` references previously handed over to a holder of this value.
    pub(crate) fn take_back(&mut self, count: usize) {
        self.count += count;
    }

    /// The same references, now held by a proxy in interpreter `holder`.
    pub(crate) fn into_proxy(mut self, holder: InterpId) -> OriginRef {
        debug_assert_eq!(self.role, Role::InFlight);
        self.origin.exports.to_proxy(&self.key, self.count, holder);
        self.role = Role::Proxy;
        self.holder = Some(holder);
        self
    }

    /// The object, if the origin still has the entry: checked against the table, never
    /// taken on trust (INV-MSG-VALIDATE).
    pub(crate) fn target(&self) -> Result<ObjPtr> {
        self.origin.exports.validate(&self.key)
    }
}

impl Drop for OriginRef {
    fn drop(&mut self) {
        let count = self.count;
        if count == 0
            || !self
                .origin
                .exports
                .start_release(&self.key, self.role, count, self.holder)
        {
            return;
        }
        let key = self.key;
        let origin = Arc::clone(&self.origin);
        release_in_owner(&self.rt, &self.origin, move || {
            origin.exports.finish_release(&key, count);
            LiveCounters::bump_by(&origin.counters.origin_refs_released, count as u64);
        });
    }
}
