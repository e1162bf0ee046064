//! `picket-notify`: telling people. An important beat has already queued
//! its events in the database, in the heartbeat's own transaction
//! (`picket_shared::db::alerts`); this crate delivers them.
//!
//! - [`event`]: what a message is about, built from an outbox row and its monitor.
//! - [`providers`]: one file per provider; each validates its settings and
//!   renders an event into an [`Outgoing`] request, purely.
//! - [`send`]: the one sender: HTTP with a timeout, and what a response means
//!   (sent, retry — honouring `Retry-After` — or give up).
//! - [`worker`]: the delivery loop every node runs: claim due rows, send,
//!   mark sent (fenced on the claim) or schedule the retry.

pub mod event;
pub mod providers;
pub mod send;
pub mod template;
pub mod worker;

pub use event::Event;
pub use send::{Mail, Outgoing, Request, SendError};
