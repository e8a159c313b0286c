//! `thindesk --demo`: the management server's throw-away demo installation
//! (`thindesk_server::demo`) inside the client, on loopback: two places, registration
//! mode `auto`, an administrator, and a student whose desktop runs on the demo image.
//! [`Demo::stop`] destroys its machine and removes its files.

use std::net::SocketAddr;

pub use thindesk_server::demo::{Demo, DemoError, DemoLogins};

/// Starts the demo server on `127.0.0.1` (any free port) on the current runtime. The
/// first start on a host builds the demo image (a few seconds).
pub async fn start() -> Result<Demo, DemoError> {
    Demo::start(SocketAddr::from(([127, 0, 0, 1], 0))).await
}
