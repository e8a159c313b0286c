//! Handing the terminal over, and leaving the process, whatever ends it.
//!
//! A terminal is shared by a whole class, so what a student opened must not outlive
//! their session: [`Session`] knows the token in force and the viewers the client
//! opened, and [`Session::hand_over`] takes both (logging out closes the viewers and
//! revokes the token).
//!
//! The process can end in many ways: the window closed, SIGINT, SIGTERM, SIGHUP, a
//! panic on the UI thread, the display going away (its X server killed, alone or with
//! a signal), the demo's supervisor gone. Every one of them ends in [`leave`], which
//! hands the session over synchronously and then ends the process with `_exit(2)`:
//!
//! - **Xlib cannot cut it short.** When the X connection breaks, Xlib calls its I/O
//!   error handler and then `exit()`. Ours ([`install_x_io_handler`]) never returns:
//!   it runs the hand-over (or waits for the one already under way) and `_exit`s.
//! - **The display's end is noticed even when nothing is drawn.** An idle client makes
//!   no X calls, so Xlib would not see the server go; [`watch_display`] keeps a
//!   connection of its own blocked on a read, which ends when the server does.
//! - **Nothing exits from another thread while the window is being made.** `exit()`
//!   runs the graphics library's destructors under the main thread; `_exit` runs no
//!   user-space code at all (the kernel ends every thread), so a signal may end the
//!   process from its own thread at any moment, the window half made or not.
//!
//! Only one caller hands over: a second one (the X handler while a signal's hand-over
//! runs) waits for the first, which ends the process.

// FFI: Xlib's I/O error handler, kill(2), _exit(2). Each use says why it is sound.
#![allow(unsafe_code)]

use crate::api::ApiClient;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The exit code when the display went away.
pub const DISPLAY_LOST: i32 = 1;
/// The exit code after a panic on the UI thread (Rust's own for a panic).
pub const PANICKED: i32 = 101;
/// How long logging out may take while leaving.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(3);

/// The signed-in session's token and the viewers it opened: a cheap handle.
#[derive(Clone, Default)]
pub struct Session(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// The server (with its pin) and the token in force.
    signed_in: Option<(ApiClient, String)>,
    viewers: Vec<u32>,
    /// Counts hand-overs: a viewer started for an earlier session is closed at once.
    generation: u64,
}

/// What a hand-over took from the session.
#[derive(Default)]
pub struct HandOver {
    /// The server and the token to revoke.
    pub token: Option<(ApiClient, String)>,
    /// The viewers to close (process ids).
    pub viewers: Vec<u32>,
}

impl Session {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `token` is now in force on `server` (a login or a renewal).
    pub fn signed_in(&self, server: &ApiClient, token: &str) {
        self.state().signed_in = Some((server.clone(), token.to_owned()));
    }

    /// The token in force, if someone is signed in.
    pub fn token(&self) -> Option<String> {
        self.state().signed_in.as_ref().map(|(_, token)| token.clone())
    }

    /// The hand-over generation: give it to [`Session::viewer_opened`].
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// A viewer was started for the session of `generation`. Returns false when that
    /// session was handed over meanwhile: the caller closes the viewer.
    #[must_use]
    pub fn viewer_opened(&self, generation: u64, pid: u32) -> bool {
        let mut state = self.state();
        if state.generation != generation {
            return false;
        }
        state.viewers.push(pid);
        true
    }

    pub fn viewer_closed(&self, pid: u32) {
        self.state().viewers.retain(|&p| p != pid);
    }

    /// Whether a viewer the client opened is still open.
    pub fn viewers_open(&self) -> usize {
        self.state().viewers.len()
    }

    /// The process ids of the viewers open.
    pub fn viewers(&self) -> Vec<u32> {
        self.state().viewers.clone()
    }

    /// Takes the token and the viewers: the session is over.
    pub fn hand_over(&self) -> HandOver {
        let mut state = self.state();
        state.generation += 1;
        HandOver { token: state.signed_in.take(), viewers: std::mem::take(&mut state.viewers) }
    }
}

impl HandOver {
    /// Asks every viewer to end (SIGTERM).
    pub fn close_viewers(&self) {
        for &pid in &self.viewers {
            terminate(pid);
        }
    }

    /// Closes the viewers and revokes the token, waiting for neither longer than
    /// [`REVOKE_TIMEOUT`]. For the way out, off the UI's normal paths.
    pub fn run_blocking(self) {
        self.close_viewers();
        let Some((api, token)) = self.token else { return };
        // A thread of its own with a runtime of its own: this may run on a thread of
        // the app's runtime (a signal), or on the main thread inside Xlib.
        let revoke = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            let api = api.fresh();
            // The timer is made inside the runtime: it needs its clock.
            Some(runtime.block_on(async { tokio::time::timeout(REVOKE_TIMEOUT, api.log_out(&token)).await }))
        });
        match revoke.join() {
            Ok(Some(Ok(Ok(())))) => tracing::info!("logged out"),
            Ok(Some(Ok(Err(error)))) => tracing::warn!(%error, "logging out failed"),
            Ok(Some(Err(_))) => tracing::warn!("logging out took too long"),
            Ok(None) | Err(_) => tracing::warn!("cannot log out"),
        }
    }
}

/// Sends SIGTERM to a child of this process (a viewer, the demo's window).
pub fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The pid is
    // a child of this process not yet reaped (a viewer is dropped from the session as
    // its wait ends; the demo's window is waited for by the caller), so it names no
    // other process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// The session the process hands over when it ends.
static PROCESS_SESSION: OnceLock<Session> = OnceLock::new();
/// Held by whoever is leaving, until the process ends.
static LEAVING: Mutex<()> = Mutex::new(());

/// Makes `session` the one [`leave`] hands over.
pub fn register(session: Session) {
    let _ = PROCESS_SESSION.set(session);
}

/// Hands the process's session over, once, for a way out that returns normally (the
/// window closed).
pub fn hand_over_now() {
    if let Some(session) = PROCESS_SESSION.get() {
        session.hand_over().run_blocking();
    }
}

/// Hands the session over and ends the process with `code`, from any thread, at any
/// moment. Never returns; a second caller waits for the first to end the process.
pub fn leave(code: i32, why: &str) -> ! {
    let _only_one = LEAVING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tracing::info!(code, "leaving: {why}");
    hand_over_now();
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit(2) ends the process without running any user-space code (no
    // atexit handlers, no destructors), which is the point: no library is torn down
    // under a thread still using it.
    unsafe { libc::_exit(code) }
}

/// Catches SIGINT, SIGTERM and SIGHUP on `runtime`: each leaves with 128 + its number.
/// Call before the window is made.
pub fn catch_signals(runtime: &tokio::runtime::Runtime) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _context = runtime.enter();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    runtime.spawn(async move {
        let (name, code) = tokio::select! {
            _ = interrupt.recv() => ("SIGINT", 128 + libc::SIGINT),
            _ = terminate.recv() => ("SIGTERM", 128 + libc::SIGTERM),
            _ = hangup.recv() => ("SIGHUP", 128 + libc::SIGHUP),
        };
        // Off the runtime: the hand-over blocks.
        std::thread::spawn(move || leave(code, name));
    });
    Ok(())
}

/// After a panic on the main (UI) thread, the panic is reported as usual and then the
/// process leaves. Panics of other threads are theirs to handle.
pub fn leave_on_ui_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let ui_thread = std::thread::current().name() == Some("main");
        // The windowing library unwraps its X requests (winit's `inner_size`): with the
        // display gone, its panic is how the display's end reaches the UI thread, the
        // same way out as the display watcher's, not a fault to report.
        if ui_thread && is_x_connection_lost(&panic_text(info)) {
            tracing::info!(location = ?info.location(), "the X connection broke under a drawing call");
            leave(DISPLAY_LOST, "the display went away");
        }
        report(info);
        if ui_thread {
            leave(PANICKED, "a panic on the UI thread");
        }
    }));
}

fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Whether a panic's message is an X connection's end as x11rb reports it to winit
/// (`Connection(IoError(…))`), unwrapped.
fn is_x_connection_lost(text: &str) -> bool {
    text.contains("Err` value: Connection(")
}

/// Keeps a connection of its own to the X display open and leaves when it ends: the
/// display went away. Without a display (`DISPLAY` unset, or not reachable) nothing is
/// watched; the window then fails to open, which says why.
pub fn watch_display() {
    use x11rb::connection::Connection;
    let connection = match x11rb::connect(None) {
        Ok((connection, _screen)) => connection,
        Err(error) => {
            tracing::debug!(%error, "the display is not watched");
            return;
        }
    };
    let spawned = std::thread::Builder::new().name("display-watch".into()).spawn(move || {
        loop {
            // No events are selected: this returns only when the connection ends.
            if let Err(error) = connection.wait_for_event() {
                tracing::debug!(%error, "the display's connection ended");
                break;
            }
        }
        leave(DISPLAY_LOST, "the display went away");
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "the display is not watched");
    }
}

/// Xlib, opened once and kept, so the handler's library stays loaded.
static XLIB: OnceLock<Option<x11_dl::xlib::Xlib>> = OnceLock::new();

/// Replaces Xlib's I/O error handler (which `exit()`s) with one that leaves in order.
/// Call once the window exists (after the windowing library set up its handlers).
pub fn install_x_io_handler() {
    let xlib = XLIB.get_or_init(|| match x11_dl::xlib::Xlib::open() {
        Ok(xlib) => Some(xlib),
        Err(error) => {
            tracing::debug!(%error, "no Xlib: its I/O error handler is left as it is");
            None
        }
    });
    if let Some(xlib) = xlib {
        // SAFETY: XSetIOErrorHandler only stores the function pointer (a process-wide
        // setting of the same libX11 the window uses); the handler has the C
        // signature Xlib expects and never returns or unwinds.
        unsafe {
            (xlib.XSetIOErrorHandler)(Some(on_x_io_error));
        }
    }
}

unsafe extern "C" fn on_x_io_error(_display: *mut x11_dl::xlib::Display) -> std::os::raw::c_int {
    leave(DISPLAY_LOST, "the X connection broke")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unwrapped_x_connection_error_counts_as_the_display_gone() {
        let winit = "called `Result::unwrap()` on an `Err` value: Connection(IoError(Custom { kind: Other, error: UnknownError }))";
        assert!(is_x_connection_lost(winit));
        assert!(!is_x_connection_lost("called `Result::unwrap()` on an `Err` value: ParseError"));
        assert!(!is_x_connection_lost("index out of bounds"));
    }

    #[test]
    fn a_hand_over_takes_the_token_and_viewers_once() {
        let session = Session::default();
        let server = ApiClient::new("s:5000", crate::pinning::Pin::new(None));
        session.signed_in(&server, "t1");
        session.signed_in(&server, "t2");
        let generation = session.generation();
        assert!(session.viewer_opened(generation, 11));
        assert!(session.viewer_opened(generation, 12));
        session.viewer_closed(11);
        assert_eq!(session.viewers_open(), 1);
        let first = session.hand_over();
        assert_eq!(
            first.token.map(|(api, token)| (api.server().to_owned(), token)),
            Some(("https://s:5000".into(), "t2".into()))
        );
        assert_eq!(first.viewers, vec![12]);
        let second = session.hand_over();
        assert!(second.token.is_none() && second.viewers.is_empty());
        assert!(!session.viewer_opened(generation, 13), "a viewer of a handed-over session is refused");
        assert_eq!(session.viewers_open(), 0);
    }
}
