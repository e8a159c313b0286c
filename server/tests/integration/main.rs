//! The server crate's integration tests, one binary (each test binary links the whole
//! server): the real `thindesk-server` binary beside a running server, and the three
//! faces of administration side by side.

mod cli;
mod connections;
mod faces;
mod methods;
mod openstack;
mod overload;
mod sessions;
mod tls;
