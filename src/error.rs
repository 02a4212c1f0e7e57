//! Errors as values: every failure the model can report is an [`Error`] with a kind and a
//! message, never a panic. Python-level kinds mirror CPython's exception classes so an error
//! raised in one interpreter can be carried, typed, into another.

use std::fmt;

/// What went wrong, as a closed set of kinds a caller can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Python `TypeError`: an operation the object's type does not support (writing
    /// through a read-only buffer included).
    TypeError,
    /// Python `AttributeError`.
    AttributeError,
    /// Python `KeyError`.
    KeyError,
    /// Python `IndexError`.
    IndexError,
    /// Python `ValueError`.
    ValueError,
    /// Python `BufferError`: resizing an exporter with live exports, releasing an exported
    /// view.
    BufferError,
    /// Python `OverflowError`.
    OverflowError,
    /// Python `ZeroDivisionError`.
    ZeroDivisionError,
    /// Python `RuntimeError`, raised by user methods that have no better kind.
    RuntimeError,
    /// No interpreter with this id exists (never created, or destroyed).
    InterpreterNotFound,
    /// The interpreter cannot be destroyed now: a thread is running in it (or is switched
    /// out of it and will come back), or handles to its objects are outstanding.
    InterpreterBusy,
    /// The main interpreter cannot be destroyed while other interpreters live.
    MainInterpreter,
    /// The calling thread already holds an interpreter; move with `Token::switch` or let
    /// go first with `Token::suspend`.
    AlreadyEntered,
    /// An object handle was used with a token for an interpreter that does not own it.
    WrongInterpreter,
    /// The interpreter's pending-call inbox is closed (the interpreter is being destroyed).
    InboxClosed,
    /// No channel with this id exists (never created, or destroyed).
    ChannelNotFound,
    /// The channel is closed, or closing, or this interpreter released the end it used.
    ChannelClosed,
    /// A receive found no item.
    ChannelEmpty,
    /// `close` without force on a channel with queued items.
    ChannelNotEmpty,
    /// A blocking operation ran out of time.
    Timeout,
    /// The received item's sending interpreter was destroyed (`UnboundOp::Error`).
    ItemInterpreterDestroyed,
    /// Object-pointer bytes that are forged, stale, truncated or corrupted.
    InvalidMessage,
    /// A proxy's (or message's) origin interpreter has been destroyed (under `Invalidate`),
    /// or its destroy had begun when the reference was made: the proxy or message is dead.
    InterpreterGone,
    /// Code forwarded to another interpreter panicked there; the panic did not cross.
    Panic,
    /// A channel item, an object handle or an object-pointer message of one [`Runtime`]
    /// was used in another: runtimes share no interpreters, channels or exports.
    ///
    /// [`Runtime`]: crate::Runtime
    WrongRuntime,
    /// An object cannot be shared the way asked: frozen (a proxy, a memoryview, a received
    /// buffer, a bytearray with live exports in its graph) or moved (its graph is referred
    /// to from outside it, or holds such an object). CPython's `NotShareableError`.
    NotShareable,
    /// A mutation of a frozen object.
    Frozen,
}

impl ErrorKind {
    /// The name a Python programmer would see, e.g. `"TypeError"`: CPython's exception
    /// where it has one (`"InterpreterNotFoundError"`, `"ChannelClosedError"`,
    /// `"ItemInterpreterDestroyed"`), else the model's own kind (`"InterpreterGone"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::TypeError => "TypeError",
            Self::AttributeError => "AttributeError",
            Self::KeyError => "KeyError",
            Self::IndexError => "IndexError",
            Self::ValueError => "ValueError",
            Self::BufferError => "BufferError",
            Self::OverflowError => "OverflowError",
            Self::ZeroDivisionError => "ZeroDivisionError",
            Self::RuntimeError => "RuntimeError",
            Self::InterpreterNotFound => "InterpreterNotFoundError",
            Self::InterpreterBusy => "InterpreterBusy",
            Self::MainInterpreter => "MainInterpreter",
            Self::AlreadyEntered => "AlreadyEntered",
            Self::WrongInterpreter => "WrongInterpreter",
            Self::InboxClosed => "InboxClosed",
            Self::ChannelNotFound => "ChannelNotFoundError",
            Self::ChannelClosed => "ChannelClosedError",
            Self::ChannelEmpty => "ChannelEmptyError",
            Self::ChannelNotEmpty => "ChannelNotEmptyError",
            Self::Timeout => "TimeoutError",
            Self::ItemInterpreterDestroyed => "ItemInterpreterDestroyed",
            Self::InvalidMessage => "InvalidMessage",
            Self::InterpreterGone => "InterpreterGone",
            Self::Panic => "Panic",
            Self::WrongRuntime => "WrongRuntime",
            Self::NotShareable => "NotShareableError",
            Self::Frozen => "FrozenError",
        }
    }
}

/// A typed error: its kind and a message naming what failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind, to match on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for `Err(Error::new(kind, message))`.
pub(crate) fn fail<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T> {
    Err(Error::new(kind, message))
}

#[cfg(test)]
mod tests {
    use super::ErrorKind::{self, *};

    // CPython 3.13's names for the same exceptions (`conformance/cpython_runner.py` maps
    // those its scenarios meet back to kinds).
    #[test]
    fn the_kinds_cpython_raises_too_carry_its_exception_names() {
        let cpython: [(ErrorKind, &str); 9] = [
            (InterpreterNotFound, "InterpreterNotFoundError"),
            (ChannelNotFound, "ChannelNotFoundError"),
            (ChannelClosed, "ChannelClosedError"),
            (ChannelEmpty, "ChannelEmptyError"),
            (ChannelNotEmpty, "ChannelNotEmptyError"),
            (Timeout, "TimeoutError"),
            (ItemInterpreterDestroyed, "ItemInterpreterDestroyed"),
            (BufferError, "BufferError"),
            (NotShareable, "NotShareableError"),
        ];
        for (kind, name) in cpython {
            assert_eq!(kind.name(), name, "{kind:?}");
        }
    }
}
