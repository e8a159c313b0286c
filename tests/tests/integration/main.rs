//! thindesk's end-to-end tests, as one test binary with a module per subject, so the
//! server is linked once for all of them rather than once per file. Helpers they
//! share are in the crate's library (`tests/src/`). Every test runs in this one
//! process beside the others, so none may use a fixed port (see
//! `thindesk_tests::ports`) or change the process's environment.
//!
//! One module's tests, by a filter on the test's path:
//! `cargo test -p thindesk-tests --test integration console_browser::`.

mod admin_api;
mod api;
mod audit;
mod caches;
mod cloud_api;
mod cloud_qemu;
mod console;
mod console_browser;
mod crash;
mod demo;
mod guest_network;
mod openapi;
mod openstack;
mod openstack_network;
mod openstack_viewer;
mod qemu;
mod restart;
mod seed_client;
mod tickets;
mod transport;
mod viewer;
