//! xinterp: cross-interpreter object sharing for CPython-style interpreters that share one
//! address space, modelled on raw pointers so that its protocol can be model-checked with
//! loom and its unsafe code checked with Miri.
//!
//! The foundation, part by part (see `design/ARCHITECTURE.md` for the code map):
//! - [`Runtime`]: a registry of interpreters with ids that are never reused, a main
//!   interpreter, create / list / destroy, and runtime-wide [`Counters`].
//! - Thread state: any thread enters any interpreter ([`Runtime::enter`]) and gets a
//!   [`Token`], the proof that it holds that interpreter; it can switch to another and back
//!   ([`Token::switch`]) or let go for a while ([`Token::suspend`]); it never holds two.
//! - Objects on raw pointers with non-atomic refcounts: [`Obj`] (bound to a token),
//!   [`OwnedObj`] (bound to nothing), [`RawObj`] (an address).
//! - Each interpreter's pending-call inbox ([`Runtime::call_soon`]), drained when a thread
//!   enters it or at an explicit drain point ([`Runtime::drain`]).
//! - The buffer protocol ([`Buffer`]) with counted exports.
//! - Errors as values ([`Error`], [`ErrorKind`]).
//!
//! What is built on it:
//! - **Channels** (the MemChannel, CPython's channel semantics): [`Runtime::create_channel`]
//!   gives a [`Channel`] handle, whose [`Channel::send`] / [`Channel::send_wait`] and
//!   [`Channel::recv`] / [`Channel::recv_wait`] take the token of the interpreter that uses
//!   them. An item is made in its sender as an [`Outgoing`]: [`Outgoing::bytes`] copies
//!   once, [`Outgoing::buffer`] is zero-copy, and [`Outgoing::object`] sends an object
//!   pointer. Closing ([`Channel::close`]), releasing an end ([`Channel::release`]) and the
//!   fate of a destroyed sender's items ([`UnboundOp`]) follow CPython, except where
//!   `design/channel.md` says why not.
//! - **Views**: a zero-copy item arrives as a `memoryview` onto the sender's memory; the
//!   exporter stays locked against resizing until the receiver's last view goes, and that
//!   release runs in the sender by the runtime's [`ReleaseStrategy`] (`Switch`: enter the
//!   owner now; `Deferred`: queue it on the owner's inbox, bounded by the deferred limit;
//!   `Adaptive`: enter if the owner is free, else defer). A view stays valid after its
//!   owner is destroyed.
//! - **Proxies**: an object item arrives as a RemoteProxy ([`ObjKind::Proxy`]) holding one
//!   reference in its origin and forwarding operations there; sent back home it is the
//!   object again. With the identity cache on, the same origin object arrives as the same
//!   proxy. Raw message bytes resolve with [`Token::resolve_object`], checked against the
//!   origin's export table ([`Runtime::exports`]). Destroying an origin whose objects are
//!   held elsewhere is refused or invalidates them ([`OwnerDeath`]).
//! - **Policies** are fixed per runtime in a [`Config`], whose rustdoc states every default;
//!   runtimes share nothing, and a thing of one used in another is [`ErrorKind::WrongRuntime`].
//!
//! ```
//! use xinterp::{ErrorKind, Runtime};
//!
//! fn main() -> xinterp::Result<()> {
//!     let rt = Runtime::new();
//!     let sub = rt.create()?;
//!     // `try_enter` / `try_switch` take a closure that can fail: one `?` for both.
//!     let handle = rt.try_enter(rt.main(), |tok| {
//!         let list = tok.list(&[tok.int(1), tok.str("two")]);
//!         assert_eq!(list.repr()?, "[1, 'two']");
//!         // A token-bound handle cannot be held across a switch; an owned one can.
//!         let list = list.unbind();
//!         assert_eq!(tok.try_switch(sub, |in_sub| in_sub.int(3).repr())?, "3");
//!         Ok(list)
//!     })?;
//!     // Using it needs a token for its owner.
//!     let err = rt.try_enter(sub, |tok| handle.bind(tok).map(drop)).unwrap_err();
//!     assert_eq!(err.kind(), ErrorKind::WrongInterpreter);
//!     drop(handle); // no interpreter held here: the decref is queued on main's inbox
//!     assert_eq!(rt.drain(rt.main())?, 1);
//!     Ok(())
//! }
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod channel;
mod counters;
mod error;
mod export;
mod extensions;
mod interp;
mod lifecycle;
mod message;
mod object;
mod proxy;
mod release;
mod runtime;
mod state_cache;
mod sync;
mod thread_state;
mod trace;

pub use channel::{
    Channel, ChannelId, ChannelInfo, ChannelStatus, Close, End, Incoming, Outgoing, UnboundOp,
};
pub use counters::Counters;
pub use error::{Error, ErrorKind, Result};
pub use export::ExportInfo;
pub use interp::{InterpId, InterpInfo};
pub use lifecycle::DestroyReport;
pub use message::{DecodeError, ObjectRef, MESSAGE_LEN};
pub use object::{Buffer, ClassDef, Method, Obj, ObjKind, OwnedObj, RawObj};
pub use runtime::{Config, OwnerDeath, ReleaseStrategy, Runtime};
pub use thread_state::Token;
pub use trace::TraceEvent;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod assertions {
    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert, const_assert_eq};
    use std::mem::size_of;

    use super::*;

    // The token proves "this thread holds X": it must never reach another thread.
    assert_not_impl_any!(Token<'static>: Send, Sync);
    // Token-bound handles live and die on the thread that holds their interpreter.
    assert_not_impl_any!(Obj<'static>: Send, Sync);
    assert_not_impl_any!(Buffer<'static>: Send, Sync);
    // Handles bound to nothing travel.
    assert_impl_all!(OwnedObj: Send, Sync);
    assert_impl_all!(RawObj: Send, Sync, Copy);
    assert_impl_all!(Runtime: Send, Sync, Clone);
    assert_impl_all!(InterpId: Send, Sync, Copy);
    assert_impl_all!(Error: Send, Sync, std::error::Error);
    assert_impl_all!(Counters: Send, Sync, Copy);
    assert_impl_all!(InterpInfo: Send, Sync);
    assert_impl_all!(DestroyReport: Send, Sync);
    // Channel items wait in the channel, bound to no interpreter.
    assert_impl_all!(Outgoing: Send, Sync);
    assert_impl_all!(Incoming: Send, Sync);
    assert_impl_all!(Channel: Send, Sync, Clone);
    assert_impl_all!(ChannelId: Send, Sync, Copy);
    assert_impl_all!(ChannelInfo: Send, Sync);

    // Object layout is asserted beside its definition (`object/pointer.rs`).
    const_assert!(size_of::<usize>() <= size_of::<u64>());
    const_assert_eq!(size_of::<RawObj>(), size_of::<usize>());
    const_assert_eq!(size_of::<InterpId>(), size_of::<u64>());
}
