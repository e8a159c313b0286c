//! Background work: [`Bg`] starts it, [`Msg`] is what it reports back.
//!
//! **The UI thread never waits on I/O.** HTTP calls, keyring look-ups, file dialogs and
//! viewer processes run on the tokio runtime (or its blocking pool) and send a [`Msg`]
//! over a channel, then wake the UI with `request_repaint`. `Bg` is a cheap clone, so a
//! screen can start work while the app's `&mut` screen is borrowed.

use crate::api::{ApiClient, ApiError};
use crate::i18n::T;
use crate::leaving::Session;
use crate::pinning::Untrusted;
use crate::viewer::ViewerError;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;
use thindesk_shared::{DesktopList, Place, Terminal, TerminalState, TokenGrant};

/// What background work reports.
pub enum Msg {
    Terminal(Result<Terminal, ApiError>),
    Places(Result<Vec<Place>, ApiError>),
    Registered(Result<TerminalState, ApiError>),
    LoggedIn {
        user: String,
        resumed: bool,
        result: Result<TokenGrant, ApiError>,
    },
    Renewed(Result<TokenGrant, ApiError>),
    Desktops(Result<DesktopList, ApiError>),
    ActionDone {
        id: String,
        label: T,
        result: Result<(), ApiError>,
    },
    /// The password changed, and the token got with the new one (the change ended the
    /// old token).
    PasswordChanged(Result<TokenGrant, ApiError>),
    ViewerStarted {
        name: String,
        result: Result<(), ViewerError>,
    },
    /// The viewer of desktop `id` ended: closed, dropped, or refused for its RDP
    /// certificate.
    ViewerExited {
        id: String,
        name: String,
        end: ViewerEnd,
    },
    /// The list asked for after a viewer of desktop `id` dropped: whether the server
    /// answers, and whether the desktop still runs, tell what happened to it.
    AfterDrop {
        id: String,
        name: String,
        early: bool,
        result: Result<DesktopList, ApiError>,
    },
    /// The list's periodic refresh, run in the background ([`Bg::repeat`]): only an
    /// answer that differs from the list shown, or an error, is reported. `epoch` tells
    /// an answer asked for before a newer refresh (or a new token) from a current one.
    DesktopsPolled {
        epoch: u64,
        result: Result<DesktopList, ApiError>,
    },
    /// The list asked for right before opening desktop `id`.
    FreshForConnect {
        id: String,
        result: Result<DesktopList, ApiError>,
    },
    Remembered {
        user: Result<Option<String>, String>,
        token: Option<String>,
    },
    FileSaved(Result<Option<PathBuf>, String>),
    ProgramChosen {
        rdp: bool,
        path: Option<PathBuf>,
    },
    /// The school's logo, read and decoded (or why not).
    Logo(Result<egui::ColorImage, String>),
}

/// How a viewer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerEnd {
    /// Closed by the student (a clean exit), or ended by a signal (the client's own,
    /// at logout).
    Closed,
    /// It ended with an error, or said it lost its connection: the network or the
    /// server may have dropped. `early`: within its first seconds, so it may never
    /// have connected at all.
    Failed { early: bool },
    /// xfreerdp refused the desktop: its RDP certificate is not the one recorded on
    /// this terminal for it. Never retried by itself.
    CertificateChanged,
}

impl Msg {
    /// Whether the call this answers was refused for the server's certificate:
    /// whichever call finds that out, the app stops there.
    pub fn untrusted(&self) -> Option<&Untrusted> {
        let error = match self {
            Self::Terminal(Err(error))
            | Self::Places(Err(error))
            | Self::Registered(Err(error))
            | Self::LoggedIn { result: Err(error), .. }
            | Self::Renewed(Err(error))
            | Self::Desktops(Err(error))
            | Self::DesktopsPolled { result: Err(error), .. }
            | Self::ActionDone { result: Err(error), .. }
            | Self::PasswordChanged(Err(error))
            | Self::FreshForConnect { result: Err(error), .. } => error,
            _ => return None,
        };
        match error {
            ApiError::Untrusted(untrusted) => Some(untrusted),
            _ => None,
        }
    }
}

/// A poll started by [`Bg::repeat`]; dropping it stops the poll (the screen that
/// polls is gone, or starts a new one).
pub struct Repeating(tokio::task::AbortHandle);

impl Drop for Repeating {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where background work runs and how its answers reach the UI.
#[derive(Clone)]
pub struct Bg {
    pub runtime: tokio::runtime::Handle,
    pub api: ApiClient,
    /// The signed-in session's token and viewers, for the hand-over.
    pub session: Session,
    tx: Sender<Msg>,
    ctx: egui::Context,
}

impl Bg {
    /// The handle, and the receiving end the app reads each frame.
    pub fn new(runtime: tokio::runtime::Handle, api: ApiClient, ctx: egui::Context) -> (Self, Receiver<Msg>) {
        let (tx, rx) = channel();
        (Self { runtime, api, session: Session::default(), tx, ctx }, rx)
    }

    pub fn ctx(&self) -> &egui::Context {
        &self.ctx
    }

    /// Hands `msg` to the UI and wakes it to read it.
    pub fn report(&self, msg: Msg) {
        // The receiver is gone only once the app is, when nobody is left to tell.
        let _ = self.tx.send(msg);
        self.ctx.request_repaint();
    }

    /// Runs `work` on the runtime and reports its message.
    pub fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = Msg> + Send + 'static,
    {
        let bg = self.clone();
        self.runtime.spawn(async move { bg.report(work.await) });
    }

    /// Runs `poll` again and again in the background until the returned [`Repeating`]
    /// is dropped: first after `first`, then after the pause each run returns (`None`:
    /// no more runs). A run reports its message if it has one, and has none when
    /// nothing the user would see changed.
    ///
    /// Why the timing is here and not in the UI's frames: every message wakes the UI,
    /// and a frame costs ~13 ms of CPU under a software renderer (llvmpipe, the thin
    /// terminals'). A poll timed by the UI costs a frame to start it and one for its
    /// answer, though the answer is nearly always the same as the last; timed here, an
    /// unchanged answer costs no frame at all.
    pub fn repeat<F, Fut>(&self, first: Duration, mut poll: F) -> Repeating
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = (Option<Msg>, Option<Duration>)> + Send + 'static,
    {
        let bg = self.clone();
        let task = self.runtime.spawn(async move {
            let mut pause = Some(first);
            while let Some(wait) = pause {
                tokio::time::sleep(wait).await;
                let (msg, next) = poll().await;
                if let Some(msg) = msg {
                    bg.report(msg);
                }
                pause = next;
            }
        });
        Repeating(task.abort_handle())
    }

    /// Runs blocking `work` (keyring, file dialogs, files) on the blocking pool, and
    /// reports its message if it has one.
    pub fn spawn_blocking<F>(&self, work: F)
    where
        F: FnOnce() -> Option<Msg> + Send + 'static,
    {
        let bg = self.clone();
        self.runtime.spawn_blocking(move || {
            if let Some(msg) = work() {
                bg.report(msg);
            }
        });
    }
}
