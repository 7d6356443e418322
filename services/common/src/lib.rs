//! What every gryning gRPC service shares, so each service crate is only its handlers:
//! typed layered settings ([`config`]), access control ([`auth`]), the one mapping from errors
//! to gRPC status codes ([`status`]), the per-process shared state and recording helper
//! ([`context`]), live projections for the insight service ([`live`]), Prometheus metrics
//! ([`metrics`]), the bounded sending side of server streams ([`outbox`]) and the server harness with health, reflection, TLS and graceful shutdown
//! ([`server`]).
//!
//! Architecture invariant: no validation rule lives here; events go through
//! `gryning_recording::Recorder` like every other path.

pub mod audit;
pub mod auth;
pub mod config;
pub mod context;
pub mod credentials;
mod drain;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod outbox;
pub mod publish;
pub mod server;
pub mod status;

pub use auth::{Principal, Role, Rpc};
pub use config::{Options, Settings};
pub use context::{case_event, client_event, Context, StartError};
pub use live::LiveProjections;
pub use outbox::{Ended, Outbox, ResponseStream};
pub use server::{init_telemetry, termination, Application, Health};
pub use status::ServiceError;

/// The allocator of every process that serves gryning (each service binary and `gryning` link
/// this crate). Under concurrent calls glibc's allocator made threads wait on its arena locks;
/// with mimalloc the police unary benchmark records about a fifth more events per second.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Convenience for handlers: the generic result with the one error type.
pub type Result<T> = std::result::Result<T, ServiceError>;
