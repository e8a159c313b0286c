//! The client's integration tests, in one binary: each test binary links the whole
//! server, so one link instead of one per file.
//!
//! `gui` drives the real app against a real in-process server, `viewer_e2e` opens the
//! demo's VM in the real `remote-viewer`, `rdp_pin` runs the real xfreerdp against
//! FreeRDP's shadow server with one certificate and then another, `demo_signal`
//! interrupts the real binary's demo, `pinning` puts another server where the trusted
//! one was; `util` has what more than one of them needs.

mod demo_signal;
mod gui;
mod pinning;
mod rdp_pin;
mod util;
mod viewer_e2e;
