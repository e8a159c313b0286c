//! The signed-in user's desktops: the list (refreshed every few seconds), power
//! actions, connecting in a viewer, saving a connection file, changing the password,
//! and the token renewed before it expires.
//!
//! Two kinds of refresh: the one every [`DESKTOP_REFRESH`] runs in the background and
//! wakes the UI only when its answer differs from the list shown (or fails), so a list
//! left alone costs no frame; the ones something asked for (the Refresh button, an
//! action done, the window focused again, a viewer closed) are started by a frame as
//! before, and their answer always comes to the UI.

mod dialogs;

use super::{Command, describe};
use crate::api::ApiError;
use crate::bg::{Bg, Msg, Repeating, ViewerEnd};
use crate::i18n::{Lang, Said, T, fill};
use crate::look;
use crate::viewer::{self, ViewerError, ViewerPrograms};
use crate::widgets::{busy_line, busy_sign, focus_until_focused};
use dialogs::PasswordDialog;
use egui::{Color32, RichText};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use thindesk_shared::{Desktop, DesktopAction, DesktopList, DesktopStatus, TokenGrant};

/// A viewer that ends with an error this soon after it started never showed the
/// desktop: it could not connect.
const VIEWER_FAILS_WITHIN: Duration = Duration::from_secs(30);

/// How often the desktop list is refreshed while it is shown.
pub const DESKTOP_REFRESH: Duration = Duration::from_secs(5);

/// How often the server is asked while a dropped viewer waits to reconnect.
const RECONNECT_POLL: Duration = Duration::from_secs(2);

pub struct DesktopsView {
    user: String,
    token: String,
    desktops: Option<Vec<Desktop>>,
    /// Desktops with an action under way, the button's text, and when it began.
    busy: HashMap<String, (T, Instant)>,
    /// Desktops whose guest is still booting: running as far as the server can tell,
    /// but shown as starting until this time (`boot_wait` after the start was seen).
    booting: HashMap<String, Instant>,
    /// How long a started guest is shown as starting.
    boot_wait: Duration,
    /// When the list was first asked for, and when the refresh under way began.
    opened: Instant,
    refresh_since: Instant,
    /// The refresh under way is the student's (the Refresh button).
    refresh_asked: bool,
    /// A power action waiting for the user's yes.
    confirm: Option<Confirm>,
    /// Desktops whose action is done but whose new state is not listed yet: their
    /// buttons stay disabled until it is (a second click on Start would otherwise
    /// land on a button that is still Start, or on the next one).
    settling: Vec<String>,
    /// The list asked for before an action ended is stale: ask again.
    refresh_again: bool,
    /// The open confirmation is still to put the keyboard on its first button.
    dialog_wants_focus: bool,
    /// The list is still to put the keyboard on its first desktop's main button.
    list_wants_focus: bool,
    save_file: Option<Desktop>,
    notice: Option<(Said, bool)>,
    password: Option<PasswordDialog>,
    /// The desktop open in a viewer.
    session: Option<String>,
    /// The desktop whose viewer dropped with the server: opened again once it answers.
    reconnect: Option<String>,
    /// The last list asked for did not come.
    next_refresh_failed: bool,
    /// A refresh something asked for is under way.
    refreshing: bool,
    /// When a refresh something asked for is due (the periodic one is the poll's).
    next_refresh: Option<Instant>,
    /// What the periodic refresh, in the background, needs to know of this view.
    poll: Arc<Mutex<PollState>>,
    /// The periodic refresh; it stops when the view is dropped.
    _polling: Repeating,
    renew_at: Instant,
    renewing: bool,
    last_activity: Instant,
}

/// What the background refresh reads (the UI keeps it current each frame) and compares
/// its answers with.
#[derive(Default)]
struct PollState {
    token: String,
    /// The list shown: an answer the same as this is not worth a frame.
    shown: Option<Vec<Desktop>>,
    /// Every answer goes to the UI, the same or not, while the UI waits for one: the
    /// last one failed (a good one clears the error), the app shows the server as
    /// unreachable or in trouble (a good one clears that), an action's outcome is not
    /// shown yet, or a dropped viewer waits to reconnect.
    eager: bool,
    /// A password change is under way: it ends the token, so nothing is asked with it.
    paused: bool,
    /// Moved on by every refresh something asked for and by every new token: an answer
    /// asked for before is older than what is (or will be) shown, and is dropped.
    epoch: u64,
}

/// A power action that asks first.
#[derive(Clone)]
pub(super) struct Confirm {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) action: DesktopAction,
    pub(super) label: T,
}

/// What a widget of this screen asks for; carried out after drawing.
enum Intent {
    Refresh,
    /// Desktop id, what to ask the server, the button's text.
    Action(String, DesktopAction, T),
    Connect(Desktop),
    Ask(Confirm),
    AskSaveFile(Desktop),
    ChangePassword {
        current: String,
        new: String,
    },
    SaveFile(Desktop),
}

impl DesktopsView {
    /// `user` just logged in with `grant`: the view, its list already asked for.
    /// A guest started is shown as starting for `boot_wait`.
    pub fn open(bg: &Bg, user: String, grant: TokenGrant, boot_wait: Duration) -> Self {
        let now = Instant::now();
        let poll = Arc::new(Mutex::new(PollState { token: grant.token.id.clone(), ..PollState::default() }));
        let mut view = Self {
            user,
            token: grant.token.id,
            desktops: None,
            busy: HashMap::new(),
            booting: HashMap::new(),
            boot_wait,
            opened: now,
            refresh_since: now,
            refresh_asked: false,
            confirm: None,
            settling: Vec::new(),
            refresh_again: false,
            dialog_wants_focus: false,
            list_wants_focus: true,
            save_file: None,
            notice: None,
            password: None,
            session: None,
            reconnect: None,
            next_refresh_failed: false,
            refreshing: false,
            next_refresh: None,
            _polling: start_polling(bg, poll.clone()),
            poll,
            renew_at: now + renew_after(grant.expires_in),
            renewing: false,
            last_activity: now,
        };
        view.refresh(bg);
        view
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn ask_new_password(&mut self) {
        self.password = Some(PasswordDialog::default());
    }

    fn refresh(&mut self, bg: &Bg) {
        self.refreshing = true;
        self.refresh_since = Instant::now();
        self.next_refresh = None;
        // What the background refresh has under way is older than this answer.
        self.polled().epoch += 1;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::Desktops(api.desktops(&token).await) });
    }

    fn renew(&mut self, bg: &Bg) {
        self.renewing = true;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::Renewed(api.renew(&token).await) });
    }

    /// The state the background refresh shares with this view.
    fn polled(&self) -> MutexGuard<'_, PollState> {
        // A poll that panicked holding it left nothing half-written worth refusing.
        self.poll.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for the list at `at` (or sooner, if already asked for sooner).
    fn refresh_at(&mut self, at: Instant) {
        self.next_refresh = Some(self.next_refresh.map_or(at, |asked| asked.min(at)));
    }

    /// Refreshes the list when asked to and renews the token when due; returns when one
    /// of them, or a booting guest's end of boot, is next due. `troubled`: the app
    /// shows the server as unreachable or in trouble, which the next good list clears.
    pub fn tick(&mut self, now: Instant, bg: &Bg, troubled: bool) -> Instant {
        // Every change to what the background refresh needs comes with a frame: telling
        // it here keeps it current.
        let eager = troubled || self.next_refresh_failed || !self.settling.is_empty() || self.reconnect.is_some();
        let paused = self.changing_password();
        {
            let mut poll = self.polled();
            if poll.token != self.token {
                poll.token.clone_from(&self.token);
            }
            poll.eager = eager;
            poll.paused = paused;
        }
        // A password change under way ends the token: wait for the new one.
        if paused {
            // Its answer wakes the UI; until then nothing is due.
            return now + DESKTOP_REFRESH;
        }
        if let Some(at) = self.next_refresh
            && at <= now
            && !self.refreshing
        {
            self.refresh(bg);
        }
        if self.renew_at <= now && !self.renewing {
            self.renew(bg);
        }
        // A guest that has had its time to boot is shown as running from now on.
        self.booting.retain(|_, until| *until > now);
        let mut next = self.renew_at;
        // A refresh asked for while one is under way waits for its answer, which wakes
        // the UI.
        if let Some(at) = self.next_refresh.filter(|_| !self.refreshing) {
            next = next.min(at);
        }
        if let Some(booted) = self.booting.values().min() {
            next = next.min(*booted);
        }
        next
    }

    /// When a kiosk left alone for `idle` logs out; never while a session is open.
    pub fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        self.session.is_none().then(|| self.last_activity + idle)
    }

    /// `kiosk`: no connection files.
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, bg: &Bg, kiosk: bool) {
        let mut intent = None;
        if ui.input(|i| !i.events.is_empty()) {
            self.last_activity = Instant::now();
        }
        ui.horizontal(|ui| {
            ui.heading(T::DesktopsTitle.get(lang));
            if ui.add_enabled(!self.refreshing, egui::Button::new(T::Refresh.get(lang))).clicked() {
                intent = Some(Intent::Refresh);
            }
            // Only a refresh the student asked for shows its wait: the one every few
            // seconds would cost a frame each time for a sign nobody waits on.
            if self.refreshing && self.refresh_asked && self.desktops.is_some() {
                busy_sign(ui, self.refresh_since);
            }
        });
        // The status area: always there, two lines high, so that what it says never
        // moves the desktops (and their buttons) under the pointer.
        let said = self.session.is_some() || self.notice.is_some();
        let frame = egui::Frame::group(ui.style());
        // Empty, it keeps its size (a transparent stroke as wide), only unseen.
        let frame = if said {
            frame.fill(ui.visuals().extreme_bg_color)
        } else {
            frame.stroke(egui::Stroke::new(frame.stroke.width, Color32::TRANSPARENT))
        };
        frame.show(ui, |ui| {
            ui.set_width(ui.available_width());
            let line = ui.text_style_height(&egui::TextStyle::Body);
            // Roomier than two lines need, so that two never make it grow.
            ui.set_min_height(2.0 * (line + ui.spacing().item_spacing.y) + 4.0);
            if let Some(name) = &self.session {
                ui.label(RichText::new(fill(T::SessionOpen.get(lang), &[name])).strong());
                ui.label(T::SessionHint.get(lang));
            }
            if let Some((notice, is_error)) = &self.notice {
                let color = if *is_error { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
                ui.colored_label(color, notice.show(lang));
            }
        });
        match &self.desktops {
            None => busy_sign(ui, self.opened),
            Some(desktops) if desktops.is_empty() => {
                ui.label(T::NoDesktops.get(lang));
            }
            Some(desktops) => {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        for (i, desktop) in desktops.iter().enumerate() {
                            let busy = self.busy.get(&desktop.id);
                            let focus = (i == 0).then_some(&mut self.list_wants_focus);
                            let booting =
                                desktop.status == DesktopStatus::Active && self.booting.contains_key(&desktop.id);
                            let tile = Tile { desktop, busy, booting, in_session: self.session.is_some(), kiosk };
                            if let Some(i) = desktop_card(ui, lang, tile, focus) {
                                intent = Some(i);
                            }
                        }
                    });
                });
            }
        }
        if let Some(i) = dialogs::show(ui.ctx(), lang, self) {
            intent = Some(i);
        }
        if let Some(intent) = intent {
            self.carry_out(intent, lang, bg);
        }
    }

    fn carry_out(&mut self, intent: Intent, lang: Lang, bg: &Bg) {
        match intent {
            // The next frame's tick asks for the list.
            Intent::Refresh => {
                self.refresh_at(Instant::now());
                self.refresh_asked = true;
            }
            Intent::Action(id, action, label) => {
                self.busy.insert(id.clone(), (label, Instant::now()));
                self.notice = None;
                let (api, token) = (bg.api.clone(), self.token.clone());
                bg.spawn(async move {
                    let result = api.action(&token, &id, action).await;
                    Msg::ActionDone { id, label, result }
                });
            }
            // The list may be seconds old (the machine stopped, its ticket changed):
            // the desktop is looked up afresh, and opened once the answer is in.
            Intent::Connect(desktop) => {
                self.busy.insert(desktop.id.clone(), (T::Connect, Instant::now()));
                self.notice = None;
                let (api, token, id) = (bg.api.clone(), self.token.clone(), desktop.id);
                bg.spawn(async move { Msg::FreshForConnect { result: api.desktops(&token).await, id } });
            }
            Intent::Ask(confirm) => {
                self.confirm = Some(confirm);
                self.dialog_wants_focus = true;
            }
            Intent::AskSaveFile(desktop) => {
                self.save_file = Some(desktop);
                self.dialog_wants_focus = true;
            }
            Intent::ChangePassword { current, new } => {
                let (api, user) = (bg.api.clone(), self.user.clone());
                bg.spawn(async move {
                    // The change ends every token of the user, this one too: a new one
                    // with the new password keeps the student signed in.
                    let result = match api.change_password(&user, &current, &new).await {
                        Ok(()) => api.token(&user, &new).await,
                        Err(error) => Err(error),
                    };
                    Msg::PasswordChanged(result)
                });
            }
            Intent::SaveFile(desktop) => match viewer::connection_file(&desktop) {
                Ok((ext, content)) => {
                    let name = format!("{}.{ext}", desktop.name.replace(['/', '\\'], "_"));
                    let title = T::SaveFileWarning.get(lang).to_owned();
                    bg.spawn_blocking(move || {
                        let path = rfd::FileDialog::new().set_title(title).set_file_name(name).save_file();
                        Some(Msg::FileSaved(match path {
                            Some(path) => {
                                write_private(&path, &content).map(|()| Some(path)).map_err(|e| e.to_string())
                            }
                            None => Ok(None),
                        }))
                    });
                }
                Err(e) => self.on_viewer_started(desktop.name, Err(e)),
            },
        }
    }

    /// Opens `desktop` in its viewer.
    fn launch(&mut self, desktop: Desktop, bg: &Bg, viewers: &ViewerPrograms, kiosk: bool) {
        match viewer::plan(&desktop, viewers, kiosk) {
            Ok(launch) => {
                let (bg, name) = (bg.clone(), desktop.name);
                // A logout while the viewer starts closes it as soon as it exists.
                let generation = bg.session.generation();
                let id = desktop.id;
                bg.runtime.clone().spawn(async move {
                    match viewer::start(&launch).await {
                        Ok(mut child) => {
                            let started = Instant::now();
                            let pid = child.id();
                            if let Some(pid) = pid
                                && !bg.session.viewer_opened(generation, pid)
                            {
                                crate::leaving::terminate(pid);
                            }
                            bg.report(Msg::ViewerStarted { name: name.clone(), result: Ok(()) });
                            let exit = child.wait().await;
                            if let Some(pid) = pid {
                                bg.session.viewer_closed(pid);
                            }
                            tracing::info!(status = ?exit.status, stderr = %exit.stderr.trim(), "viewer closed");
                            let end = if exit.certificate_changed {
                                ViewerEnd::CertificateChanged
                            } else {
                                viewer_end(exit.status.as_ref().ok().copied(), &exit.stderr, started.elapsed())
                            };
                            bg.report(Msg::ViewerExited { id, name, end });
                        }
                        Err(e) => bg.report(Msg::ViewerStarted { name, result: Err(e) }),
                    }
                });
            }
            Err(e) => self.on_viewer_started(desktop.name, Err(e)),
        }
    }

    /// The list asked for on Connect: open the desktop if it still runs, with what
    /// the server says now (its ticket).
    pub fn on_fresh_for_connect(
        &mut self,
        id: &str,
        result: Result<DesktopList, ApiError>,
        bg: &Bg,
        viewers: &ViewerPrograms,
        kiosk: bool,
    ) -> Option<Command> {
        self.busy.remove(id);
        let unreachable = |reason: &str| describe(&ApiError::Unreachable(reason.to_owned()));
        let fresh = match self.take_answer(id, result, unreachable) {
            Ok(fresh) => fresh,
            Err(command) => return command,
        };
        match fresh {
            Some(desktop) if desktop.status == DesktopStatus::Active => self.launch(desktop, bg, viewers, kiosk),
            Some(desktop) => self.notice = Some((Said::with(T::NotRunningNow, &[&desktop.name]), true)),
            None => self.notice = Some((T::NoDesktops.into(), true)),
        }
        Some(Command::Reached)
    }

    /// A list asked for about desktop `id`: shown, with that desktop as the server has
    /// it now (`None`: gone). Failed: what the app is to do, the student told why
    /// (`unreachable` words it when the server is not reached, from the reason).
    fn take_answer(
        &mut self,
        id: &str,
        result: Result<DesktopList, ApiError>,
        unreachable: impl FnOnce(&str) -> Said,
    ) -> Result<Option<Desktop>, Option<Command>> {
        let list = match result {
            Ok(list) => list.desktop_list,
            Err(ApiError::Unauthorized) => return Err(Some(Command::LogOut(Some(T::SessionExpired.into())))),
            Err(ApiError::Unreachable(reason)) => {
                self.notice = Some((unreachable(&reason), true));
                return Err(Some(Command::Unreachable(reason)));
            }
            Err(other) => {
                self.notice = Some((describe(&other), true));
                return Err(None);
            }
        };
        let fresh = list.iter().find(|desktop| desktop.id == id).cloned();
        self.take_list(list);
        Ok(fresh)
    }

    /// Asks for the list at the next frame (the window has the keyboard again).
    pub fn refresh_soon(&mut self) {
        self.refresh_at(Instant::now());
    }

    /// The viewer of desktop `id` failed: whether the server answers, and whether the
    /// desktop still runs, tell a dropped network from a desktop gone or a viewer that
    /// never connected. The answer comes as [`Msg::AfterDrop`].
    pub fn on_viewer_failed(&mut self, id: String, name: String, early: bool, bg: &Bg) {
        self.session = None;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::AfterDrop { result: api.desktops(&token).await, id, name, early } });
    }

    /// What the server says after a viewer failed. Unreachable: the network or the
    /// server dropped, and the desktop is opened again once the server answers. The
    /// desktop still running: a viewer that had been showing it reconnects at once; one
    /// that failed within its first seconds never connected, and the student is told.
    /// The desktop stopped: the session ended (a kiosk logs out).
    pub fn on_after_drop(
        &mut self,
        id: String,
        name: String,
        early: bool,
        result: Result<DesktopList, ApiError>,
        (bg, viewers, kiosk): (&Bg, &ViewerPrograms, bool),
    ) -> Option<Command> {
        self.refresh_at(Instant::now() + RECONNECT_POLL);
        let fresh = match self.take_answer(&id, result, |_| Said::with(T::ConnectionLost, &[&name])) {
            Ok(fresh) => fresh,
            Err(command) => {
                // The server is not reached: the desktop opens again when it is.
                if matches!(command, Some(Command::Unreachable(_))) {
                    self.reconnect = Some(id);
                }
                return command;
            }
        };
        match fresh {
            Some(_) if early => self.notice = Some((Said::with(T::ViewerCouldNotConnect, &[&name]), true)),
            Some(desktop) if desktop.status == DesktopStatus::Active => {
                tracing::info!(desktop = %id, "the viewer dropped; reconnecting");
                self.notice = Some((Said::with(T::Reconnecting, &[&name]), false));
                self.launch(desktop, bg, viewers, kiosk);
            }
            _ if kiosk => return Some(Command::LogOut(None)),
            _ => self.notice = Some((Said::with(T::SessionEnded, &[&name]), false)),
        }
        Some(Command::Reached)
    }

    /// A desktop whose viewer dropped with the server is opened again, with what the
    /// server says now, once the list comes back.
    pub fn reconnect_if_due(&mut self, bg: &Bg, viewers: &ViewerPrograms, kiosk: bool) {
        let (Some(id), false) = (&self.reconnect, self.refreshing) else { return };
        let Some(desktop) = self.desktops.iter().flatten().find(|d| &d.id == id).cloned() else { return };
        if self.session.is_some() || self.next_refresh_failed {
            return;
        }
        self.reconnect = None;
        if desktop.status == DesktopStatus::Active {
            tracing::info!(desktop = %desktop.id, "the server answers again; reconnecting");
            self.notice = Some((Said::with(T::Reconnecting, &[&desktop.name]), false));
            self.launch(desktop, bg, viewers, kiosk);
        } else {
            self.notice = Some((Said::with(T::NotRunningNow, &[&desktop.name]), true));
        }
    }

    /// The viewer refused the desktop: its RDP certificate is not the one recorded.
    pub fn on_viewer_certificate_changed(&mut self, name: &str) {
        self.session = None;
        self.notice = Some((Said::with(T::DesktopCertificateChanged, &[name]), true));
        self.refresh_soon();
    }

    pub fn on_desktops(&mut self, result: Result<DesktopList, ApiError>) -> Option<Command> {
        self.refreshing = false;
        self.refresh_asked = false;
        self.next_refresh_failed = result.is_err();
        // Waiting to reconnect: the server is asked more often.
        if self.reconnect.is_some() {
            self.refresh_at(Instant::now() + RECONNECT_POLL);
        }
        if std::mem::take(&mut self.refresh_again) {
            self.refresh_at(Instant::now());
        } else if result.is_ok() {
            for id in self.settling.drain(..) {
                self.busy.remove(&id);
            }
        }
        match result {
            Ok(list) => {
                self.take_list(list.desktop_list);
                Some(Command::Reached)
            }
            // The token a password change just ended; the new one comes with its answer.
            Err(ApiError::Unauthorized) if self.changing_password() => None,
            Err(ApiError::Unauthorized) => Some(Command::LogOut(Some(T::SessionExpired.into()))),
            Err(ApiError::Unreachable(reason)) => Some(Command::Unreachable(reason)),
            Err(other) => Some(Command::ServerTrouble(describe(&other))),
        }
    }

    /// An answer of the background refresh: dropped if a refresh something asked for is
    /// under way or began since (its answer is as new or newer), or the token changed.
    pub fn on_polled(&mut self, epoch: u64, result: Result<DesktopList, ApiError>) -> Option<Command> {
        if self.refreshing || epoch != self.polled().epoch {
            return None;
        }
        self.on_desktops(result)
    }

    /// Shows `list`. A desktop seen going from another state to running has a guest
    /// still booting: it is shown as starting for a while. One that stops is not.
    fn take_list(&mut self, list: Vec<Desktop>) {
        let now = Instant::now();
        for desktop in &list {
            let before = self.desktops.iter().flatten().find(|d| d.id == desktop.id).map(|d| d.status);
            match desktop.status {
                DesktopStatus::Active => {
                    if before.is_some_and(|status| {
                        !matches!(status, DesktopStatus::Active | DesktopStatus::Paused | DesktopStatus::Suspended)
                    }) {
                        self.booting.entry(desktop.id.clone()).or_insert(now + self.boot_wait);
                    }
                }
                _ => {
                    self.booting.remove(&desktop.id);
                }
            }
        }
        self.polled().shown = Some(list.clone());
        self.desktops = Some(list);
    }

    /// The background refresh asks with the new token from now on, and what it asked
    /// with the old one is dropped (the old one may be ended already: a refusal for it
    /// is no reason to log out).
    fn new_token(&mut self) {
        let mut poll = self.polled();
        poll.token.clone_from(&self.token);
        poll.epoch += 1;
    }

    fn changing_password(&self) -> bool {
        self.password.as_ref().is_some_and(|dialog| dialog.busy.is_some())
    }

    pub fn on_renewed(&mut self, result: Result<TokenGrant, ApiError>) -> Option<Command> {
        self.renewing = false;
        match result {
            Ok(grant) => {
                self.token = grant.token.id.clone();
                self.new_token();
                self.renew_at = Instant::now() + renew_after(grant.expires_in);
                return Some(Command::Remember { user: self.user.clone(), token: grant.token.id });
            }
            Err(ApiError::Unauthorized) => return Some(Command::LogOut(Some(T::SessionExpired.into()))),
            Err(ApiError::Unreachable(reason)) => {
                self.renew_at = Instant::now() + Duration::from_secs(10);
                return Some(Command::Unreachable(reason));
            }
            Err(_) => self.renew_at = Instant::now() + Duration::from_secs(30),
        }
        None
    }

    pub fn on_action_done(&mut self, id: String, label: T, result: Result<(), ApiError>) -> Option<Command> {
        if result.is_ok() {
            // Busy until the list shows the new state.
            self.settling.push(id.clone());
            self.refresh_again |= self.refreshing;
            // A guest started or restarted boots for a while after the server says it runs.
            if matches!(label, T::Start | T::Reboot) {
                self.booting.insert(id.clone(), Instant::now() + self.boot_wait);
            }
        } else {
            self.busy.remove(&id);
        }
        let name = self.desktops.iter().flatten().find(|d| d.id == id).map(|d| d.name.clone()).unwrap_or_default();
        self.notice = Some(match result {
            Ok(()) => (Said::Text(T::ActionDone, vec![Said::Raw(name), label.into()]), false),
            Err(ApiError::Conflict(_)) => (T::ActionBusy.into(), true),
            Err(ApiError::Unauthorized) => return Some(Command::LogOut(Some(T::SessionExpired.into()))),
            Err(e) => (describe(&e), true),
        });
        self.refresh_at(Instant::now());
        None
    }

    pub fn on_password_changed(&mut self, result: Result<TokenGrant, ApiError>) -> Option<Command> {
        let dialog = self.password.as_mut()?;
        dialog.busy = None;
        match result {
            Ok(grant) => {
                self.password = None;
                self.notice = Some((T::PasswordChanged.into(), false));
                self.token = grant.token.id.clone();
                self.new_token();
                self.renew_at = Instant::now() + renew_after(grant.expires_in);
                self.refresh_at(Instant::now());
                return Some(Command::Remember { user: self.user.clone(), token: grant.token.id });
            }
            Err(ApiError::Unauthorized) => dialog.error = Some(T::WrongCurrentPassword.into()),
            Err(error @ ApiError::Invalid(_)) => dialog.error = Some(describe(&error)),
            Err(e) => dialog.error = Some(describe(&e)),
        }
        None
    }

    pub fn on_viewer_started(&mut self, name: String, result: Result<(), ViewerError>) {
        match result {
            Ok(()) => {
                self.session = Some(name);
                self.reconnect = None;
                self.notice = None;
            }
            Err(ViewerError::Missing(program)) => {
                self.notice = Some((Said::with(T::ViewerMissing, &[&program]), true));
            }
            Err(ViewerError::NoDisplay) => self.notice = Some((T::NoDisplay.into(), true)),
            Err(ViewerError::Failed(e)) => self.notice = Some((Said::with(T::ViewerFailed, &[&e]), true)),
        }
    }

    /// The viewer closed: say so, and show the desktop's state now.
    pub fn on_session_ended(&mut self, notice: Said) {
        self.session = None;
        self.notice = Some((notice, false));
        self.refresh_at(Instant::now());
    }

    pub fn on_file_saved(&mut self, result: Result<Option<PathBuf>, String>) {
        match result {
            Ok(Some(path)) => {
                self.notice = Some((Said::with(T::FileSaved, &[&path.display().to_string()]), false));
            }
            Ok(None) => {}
            Err(e) => self.notice = Some((Said::Raw(e), true)),
        }
    }
}

/// Starts the periodic refresh of the list in the background. It wakes the UI only
/// with an answer worth a frame: a list other than the one shown, an error, or any
/// answer while the UI waits for one (`eager`). An unchanged list, the usual answer,
/// costs the UI nothing.
fn start_polling(bg: &Bg, poll: Arc<Mutex<PollState>>) -> Repeating {
    let api = bg.api.clone();
    bg.repeat(DESKTOP_REFRESH, move || {
        let (api, poll) = (api.clone(), poll.clone());
        async move {
            let lock = || poll.lock().unwrap_or_else(PoisonError::into_inner);
            let (token, epoch, paused) = {
                let state = lock();
                (state.token.clone(), state.epoch, state.paused)
            };
            if paused {
                return (None, Some(DESKTOP_REFRESH));
            }
            let result = api.desktops(&token).await;
            let state = lock();
            let stale = state.epoch != epoch;
            let unchanged = !state.eager
                && matches!((&result, &state.shown), (Ok(list), Some(shown)) if list.desktop_list == *shown);
            let report = !stale && !unchanged;
            (report.then_some(Msg::DesktopsPolled { epoch, result }), Some(DESKTOP_REFRESH))
        }
    })
}

/// A tile's inner width, and its secondary buttons' width: every tile and button
/// the same, so none moves when a text changes.
const TILE_WIDTH: f32 = 380.0;
const SECONDARY_WIDTH: f32 = 116.0;

/// What a desktop's tile shows.
struct Tile<'a> {
    desktop: &'a Desktop,
    /// The action under way: its button's text, and when it began.
    busy: Option<&'a (T, Instant)>,
    /// Running, but its guest still boots.
    booting: bool,
    in_session: bool,
    kiosk: bool,
}

/// One desktop as a tile: its name and state, its OS and size, one primary Connect,
/// and the power actions set apart below it. **Its buttons never move**: every button
/// is always there, in the same place, enabled or not, and the progress line below
/// them keeps its height; so a second click lands where the first did, on a button
/// that is disabled while the first click's action runs and until the list shows its
/// outcome.
fn desktop_card(ui: &mut egui::Ui, lang: Lang, tile: Tile<'_>, focus: Option<&mut bool>) -> Option<Intent> {
    let Tile { desktop, busy, booting, in_session, kiosk } = tile;
    let mut intent = None;
    egui::Frame::new()
        .fill(look::CARD)
        .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
        .corner_radius(12)
        .inner_margin(20.0)
        .show(ui, |ui| {
            ui.set_width(TILE_WIDTH);
            // Top down inside, whatever the list around it lays out.
            ui.vertical(|ui| {
                ui.label(RichText::new(&desktop.name).size(24.0).strong());
                ui.horizontal(|ui| {
                    let (dot, _) = ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
                    let (color, text) = if booting {
                        (status_color(DesktopStatus::Build), T::StatusStarting.get(lang))
                    } else {
                        (status_color(desktop.status), status_label(lang, desktop.status))
                    };
                    ui.painter().circle_filled(dot.center(), 6.0, color);
                    ui.label(RichText::new(text).strong());
                });
                // Always one line, empty where the server does not say.
                ui.label(RichText::new(details(lang, desktop)).color(look::QUIET));
                ui.add_space(4.0);
                let idle = busy.is_none();
                let active = desktop.status == DesktopStatus::Active;
                let can_connect = active && viewer::pick_connection(desktop).is_some() && !in_session;
                let connect =
                    ui.add_enabled(idle && can_connect, look::primary(T::Connect.get(lang), ui.available_width()));
                if connect.clicked() {
                    intent = Some(Intent::Connect(desktop.clone()));
                }
                ui.separator();
                let button = |text: &str| {
                    egui::Button::new(RichText::new(text).size(15.0)).min_size(egui::vec2(SECONDARY_WIDTH, 30.0))
                };
                let wake_button = ui
                    .horizontal(|ui| {
                        let (wake, can_wake) = match desktop.status {
                            DesktopStatus::Suspended | DesktopStatus::Paused => (T::Resume, true),
                            DesktopStatus::Shutoff | DesktopStatus::Error => (T::Start, true),
                            _ => (T::Start, false),
                        };
                        let wake_button = ui.add_enabled(idle && can_wake, button(wake.get(lang)));
                        if wake_button.clicked() {
                            intent = Some(Intent::Action(desktop.id.clone(), DesktopAction::Resume, wake));
                        }
                        if ui.add_enabled(idle && active, button(T::Reboot.get(lang))).clicked() {
                            intent = Some(Intent::Ask(Confirm {
                                id: desktop.id.clone(),
                                name: desktop.name.clone(),
                                action: DesktopAction::Reboot,
                                label: T::Reboot,
                            }));
                        }
                        let can_stop = desktop.status != DesktopStatus::Shutoff;
                        if ui.add_enabled(idle && can_stop, button(T::Shutdown.get(lang))).clicked() {
                            intent = Some(Intent::Ask(Confirm {
                                id: desktop.id.clone(),
                                name: desktop.name.clone(),
                                action: DesktopAction::Shutdown,
                                label: T::Shutdown,
                            }));
                        }
                        (wake_button, can_wake)
                    })
                    .inner;
                if !kiosk && ui.add_enabled(can_connect, button(T::SaveFile.get(lang))).clicked() {
                    intent = Some(Intent::AskSaveFile(desktop.clone()));
                }
                // The keyboard starts on the first desktop's main action: Connect, or Start.
                if let Some(pending) = focus {
                    let (wake_button, can_wake) = wake_button;
                    if idle && can_connect {
                        focus_until_focused(&connect, pending);
                    } else if idle && can_wake {
                        focus_until_focused(&wake_button, pending);
                    } else {
                        *pending = false;
                    }
                }
                // The progress line: always its height, filled while an action runs.
                ui.horizontal(|ui| {
                    ui.set_min_height(ui.spacing().interact_size.y);
                    if let Some((label, since)) = busy {
                        busy_line(ui, *since, Some(&format!("{} {}", label.get(lang), T::Working.get(lang))));
                    }
                });
            });
        });
    intent
}

/// The desktop's OS (its image) and size (its flavor), as far as the server says.
fn details(lang: Lang, desktop: &Desktop) -> String {
    let mut parts = Vec::new();
    if let Some(image) = &desktop.image {
        parts.push(image.clone());
    }
    if let Some(size) = &desktop.size {
        let gib = |mib: u32| {
            let gib = f64::from(mib) / 1024.0;
            if gib.fract() == 0.0 { format!("{gib:.0}") } else { format!("{gib:.1}") }
        };
        parts.push(fill(
            T::DesktopSize.get(lang),
            &[&size.vcpus.to_string(), &gib(size.ram_mib), &size.disk_gib.to_string()],
        ));
    }
    parts.join(" · ")
}

fn status_label(lang: Lang, status: DesktopStatus) -> &'static str {
    match status {
        DesktopStatus::Active => T::StatusActive.get(lang),
        DesktopStatus::Shutoff => T::StatusShutoff.get(lang),
        DesktopStatus::Suspended => T::StatusSuspended.get(lang),
        DesktopStatus::Paused => T::StatusPaused.get(lang),
        DesktopStatus::Build => T::StatusBuild.get(lang),
        DesktopStatus::Reboot => T::StatusReboot.get(lang),
        DesktopStatus::Error => T::StatusError.get(lang),
    }
}

fn status_color(status: DesktopStatus) -> Color32 {
    match status {
        DesktopStatus::Active => Color32::from_rgb(60, 170, 90),
        DesktopStatus::Error => Color32::from_rgb(220, 70, 60),
        DesktopStatus::Shutoff => Color32::GRAY,
        _ => Color32::from_rgb(210, 160, 40),
    }
}

/// How a viewer that ran for `ran` ended: a clean exit (the student closed it) or a
/// signal (the client's own, at logout) is closed, unless its stderr says it lost the
/// connection; an error exit failed.
fn viewer_end(status: Option<std::process::ExitStatus>, stderr: &str, ran: Duration) -> ViewerEnd {
    let clean = status.is_some_and(|status| status.success() || status.code().is_none());
    if clean && !viewer::says_connection_lost(stderr) {
        ViewerEnd::Closed
    } else {
        ViewerEnd::Failed { early: ran < VIEWER_FAILS_WITHIN }
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())
}

/// Renew at four fifths of the lifetime, and at least two seconds before the end (the
/// server counts whole seconds), but not sooner than in a second.
fn renew_after(expires_in: u64) -> Duration {
    let at = expires_in.saturating_mul(800).min(expires_in.saturating_sub(2).saturating_mul(1000));
    Duration::from_millis(at.max(1000))
}

#[cfg(test)]
mod tests {
    use super::renew_after;
    use std::time::Duration;

    #[test]
    fn tokens_are_renewed_well_before_they_expire() {
        assert_eq!(renew_after(7200), Duration::from_secs(5760));
        assert_eq!(renew_after(60), Duration::from_secs(48));
        assert_eq!(renew_after(4), Duration::from_secs(2));
        assert_eq!(renew_after(0), Duration::from_secs(1));
    }
}
