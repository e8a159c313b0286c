//! `thindesk --demo`: the management server's throw-away demo installation
//! (`thindesk_server::demo`) on loopback: two places, registration mode `auto`, an
//! administrator, and a student whose desktop runs on the demo image.
//!
//! **The process the user started supervises; the window is a child process.** The
//! supervisor runs the demo server and never connects to the display, so nothing the
//! display does (Xlib's `exit()` when its connection breaks) can end it before the demo
//! is stopped. It starts the window as `thindesk --demo-gui` (this same program),
//! hands it the server's address and the hint on its stdin, and waits. However the
//! window process ends (closed, the display gone, a panic, killed), or whichever
//! signal reaches the supervisor (SIGINT, SIGTERM, SIGHUP: passed on to the window,
//! which logs out and ends), the supervisor then destroys the demo's machine and
//! removes its files ([`Demo::stop`]), and only then ends. The window process ends by
//! itself when its stdin closes, that is when the supervisor is gone.

use crate::cli::GuiSetup;
use crate::pinning::BadFingerprint;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub use thindesk_server::demo::{Demo, DemoError, DemoLogins};

/// How long the window process has to log out after a signal before it is killed.
const WINDOW_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error("cannot catch signals: {0}")]
    Signals(std::io::Error),
}

/// Starts the demo server on `127.0.0.1` (any free port) on the current runtime. The
/// first start on a host builds the demo image (a few seconds).
pub async fn start() -> Result<Demo, DemoError> {
    Demo::start(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Runs the demo and its window process (this program with `gui_args`) until the
/// window ends or a signal comes, then stops the demo. Returns the exit code: the
/// window's, or 128 + the signal's number.
pub async fn supervise(gui_args: Vec<OsString>) -> Result<i32, SuperviseError> {
    // Caught from before the demo exists: a signal during its start stops it once
    // started, rather than ending the process with a machine running.
    let mut signals = Signals::catch().map_err(SuperviseError::Signals)?;
    let demo = start().await?;
    let (student, admin) = (&demo.logins.student, &demo.logins.admin);
    let login = |(user, password): &(String, String)| crate::screens::login::DemoLogin {
        user: user.clone(),
        password: Some(password.clone()),
    };
    let hint = crate::screens::login::DemoHint { student: login(student), admin: login(admin) };
    println!("{}", hint.show(crate::i18n::Lang::En));
    println!("Demo server at {} (data in {}, removed on exit)", demo.url(), demo.data_dir().display());
    let code = match signals.already() {
        Some((name, code)) => {
            tracing::info!(signal = name, "a signal came while the demo started");
            code
        }
        None => {
            let tls = thindesk_server::tls::directory(demo.data_dir());
            let fingerprint = thindesk_server::tls::show(&tls)
                .map_err(|e| e.to_string())
                .and_then(|identity| identity.fingerprint.parse().map_err(|e: BadFingerprint| e.to_string()));
            match fingerprint {
                Ok(fingerprint) => {
                    run_window(gui_args, GuiSetup { server: demo.url(), fingerprint, hint }, &mut signals).await
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the demo server's certificate");
                    1
                }
            }
        }
    };
    tracing::info!("stopping the demo: destroying its machine");
    demo.stop().await;
    Ok(code)
}

/// Starts the window process and waits for it, passing a signal on to it.
async fn run_window(gui_args: Vec<OsString>, setup: GuiSetup, signals: &mut Signals) -> i32 {
    // /proc/self/exe rather than current_exe(): the running program even if its file
    // was replaced meanwhile (a rebuild), named as the user called it.
    let spawned = tokio::process::Command::new("/proc/self/exe")
        .arg0("thindesk")
        .arg("--demo-gui")
        .args(gui_args)
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut window = match spawned {
        Ok(window) => window,
        Err(error) => {
            tracing::error!(%error, "cannot start the demo's window");
            return 1;
        }
    };
    // Kept open while the window runs: its end tells the window the supervisor is gone.
    let mut stdin = window.stdin.take();
    if let (Some(pipe), Ok(line)) = (&mut stdin, serde_json::to_string(&setup)) {
        let _ = pipe.write_all(format!("{line}\n").as_bytes()).await;
        let _ = pipe.flush().await;
    }
    // A signal and the window's end at once: the signal, the user's own word, names it.
    let code = tokio::select! {
        biased;
        (name, code) = signals.recv() => {
            tracing::info!(signal = name, "closing the demo's window");
            if let Some(pid) = window.id() {
                crate::leaving::terminate(pid);
            }
            if tokio::time::timeout(WINDOW_GRACE, window.wait()).await.is_err() {
                tracing::warn!("the demo's window did not end: killed");
                let _ = window.kill().await;
            }
            code
        }
        status = window.wait() => status.map_or(1, |status| exit_code(&status)),
    };
    drop(stdin);
    code
}

fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(1)
}

/// SIGINT, SIGTERM and SIGHUP, each with its name and exit code.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn catch() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> (&'static str, i32) {
        tokio::select! {
            _ = self.interrupt.recv() => ("SIGINT", 128 + libc::SIGINT),
            _ = self.terminate.recv() => ("SIGTERM", 128 + libc::SIGTERM),
            _ = self.hangup.recv() => ("SIGHUP", 128 + libc::SIGHUP),
        }
    }

    /// A signal that has already come, without waiting.
    fn already(&mut self) -> Option<(&'static str, i32)> {
        use std::task::{Context, Poll, Waker};
        let mut context = Context::from_waker(Waker::noop());
        let mut pending = [
            (&mut self.interrupt, "SIGINT", libc::SIGINT),
            (&mut self.terminate, "SIGTERM", libc::SIGTERM),
            (&mut self.hangup, "SIGHUP", libc::SIGHUP),
        ];
        pending.iter_mut().find_map(|(signal, name, number)| match signal.poll_recv(&mut context) {
            Poll::Ready(_) => Some((*name, 128 + *number)),
            Poll::Pending => None,
        })
    }
}
