//! The thindesk thin-terminal client: registers the terminal by its MAC address, logs
//! students in, lists their desktops and opens them in a viewer. A library so that the
//! tests (and `main.rs`) build the very same app.

pub mod api;
pub mod app;
pub mod bg;
pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fonts;
pub mod i18n;
pub mod leaving;
pub mod look;
pub mod pinning;
pub mod screens;
pub mod settings;
mod settings_window;
pub mod viewer;
mod widgets;

pub use app::{App, Screen, Setup};
