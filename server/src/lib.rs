//! The thindesk management server: the v1.0 terminal API (seed 002) over SQLite, the
//! compute drivers that run desktops, and the command line that administers them.
//!
//! Layers, each depending only on those below it:
//! `http` (routes, handlers, the JSend mapping) → `service` (the rules) →
//! `store` (SQLite) and `compute` (hypervisors). See ARCHITECTURE.md.

pub mod app;
pub mod cli;
pub mod compute;
pub mod config;
pub mod demo;
pub mod http;
mod random;
pub mod service;
pub mod store;
pub mod tls;

pub use app::{RunningServer, Services, StartError};
pub use config::Config;
