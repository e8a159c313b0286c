//! The GUI: one [`Screen`] at a time, background work reporting back as [`Msg`]s.
//!
//! **The UI thread never waits on I/O**: work runs through [`Bg`]. Timers (polls,
//! token renewal, countdowns, kiosk idle) are deadlines checked when a frame runs, and
//! the next one is asked for with `request_repaint_after`: an idle client draws nothing.

use crate::api::{ApiClient, ApiError, FieldErrors};
use crate::bg::{Bg, Msg};
use crate::i18n::{Lang, Said, T, fill};
use crate::settings::{LAST_USER, Memory, Settings, TOKEN};
use crate::viewer::{self, ViewerError};
use crate::widgets::{card, error_line, field};
use egui::{Align, Color32, Layout, RichText};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use thindesk_shared::{Desktop, DesktopAction, DesktopList, DesktopStatus, Place, Terminal, TerminalState, TokenGrant};

/// How often a waiting terminal asks whether it was approved.
pub const WAITING_POLL: Duration = Duration::from_secs(3);
/// How often the desktop list is refreshed while it is shown.
pub const DESKTOP_REFRESH: Duration = Duration::from_secs(5);
/// The longest wait between two tries to reach an unreachable server.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Everything the app is started with.
pub struct Setup {
    /// `http://host:port` of the management server.
    pub server: String,
    /// This terminal's MAC address.
    pub mac: String,
    pub settings: Settings,
    /// Where settings changed in the GUI are saved; `None`: not saved.
    pub settings_path: Option<PathBuf>,
    pub memory: Memory,
    /// Background work runs here.
    pub runtime: tokio::runtime::Handle,
    pub lang: Lang,
    /// Shown on the login screen of `--demo`.
    pub demo_hint: Option<String>,
    /// When the process started, to log the time to the first frame.
    pub started: Instant,
}

/// The screen the user is on.
pub enum Screen {
    /// Asking the server about this terminal.
    Starting,
    Register(RegisterForm),
    Waiting,
    Rejected,
    Login(LoginForm),
    Desktops(Box<DesktopsView>),
}

#[derive(Default)]
pub struct RegisterForm {
    /// `None` while loading.
    places: Option<Vec<Place>>,
    place: String,
    seat: String,
    as_admin: bool,
    admin_name: String,
    admin_password: String,
    busy: bool,
    field_errors: FieldErrors,
    error: Option<Said>,
}

#[derive(Default)]
pub struct LoginForm {
    user: String,
    password: String,
    busy: bool,
    error: Option<Said>,
    throttled_until: Option<Instant>,
}

pub struct DesktopsView {
    user: String,
    token: String,
    desktops: Option<Vec<Desktop>>,
    /// Desktops with an action under way, and the button's text.
    busy: HashMap<String, T>,
    confirm_shutdown: Option<(String, String)>,
    save_file: Option<Desktop>,
    notice: Option<(Said, bool)>,
    password: Option<PasswordDialog>,
    /// The desktop open in a viewer.
    session: Option<String>,
    refreshing: bool,
    next_refresh: Instant,
    renew_at: Instant,
    renewing: bool,
    last_activity: Instant,
}

impl DesktopsView {
    fn refresh(&mut self, bg: &Bg) {
        self.refreshing = true;
        self.next_refresh = Instant::now() + DESKTOP_REFRESH;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::Desktops(api.desktops(&token).await) });
    }

    fn renew(&mut self, bg: &Bg) {
        self.renewing = true;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::Renewed(api.renew(&token).await) });
    }
}

#[derive(Default)]
struct PasswordDialog {
    new: String,
    repeat: String,
    busy: bool,
    error: Option<Said>,
}

/// The server could not be reached: say so, and try again with growing pauses.
struct Unreachable {
    reason: String,
    attempt: u32,
    retry_at: Instant,
}

#[derive(Default)]
struct SettingsDialog {
    open: bool,
}

pub struct App {
    bg: Bg,
    rx: Receiver<Msg>,
    mac: String,
    settings: Settings,
    settings_path: Option<PathBuf>,
    memory: Memory,
    lang: Lang,
    screen: Screen,
    terminal: Option<Terminal>,
    unreachable: Option<Unreachable>,
    /// A server fault (5xx) that is not the user's to fix.
    server_trouble: Option<Said>,
    next_probe: Option<Instant>,
    probing: bool,
    remembered_user: Option<String>,
    remembered_token: Option<String>,
    /// Said once when no keyring is available.
    keyring_notice: bool,
    settings_dialog: SettingsDialog,
    demo_hint: Option<String>,
    started: Instant,
    first_frame_logged: bool,
    kiosk_sized: bool,
}

impl App {
    pub fn new(cc: &eframe::CreationContext<'_>, setup: Setup) -> Self {
        let ctx = cc.egui_ctx.clone();
        crate::fonts::install_cjk(&ctx);
        ctx.all_styles_mut(|style| {
            use egui::{FontId, TextStyle};
            style.text_styles.insert(TextStyle::Body, FontId::proportional(16.0));
            style.text_styles.insert(TextStyle::Button, FontId::proportional(16.0));
            style.text_styles.insert(TextStyle::Heading, FontId::proportional(24.0));
            style.text_styles.insert(TextStyle::Small, FontId::proportional(13.0));
            style.spacing.button_padding = egui::vec2(10.0, 5.0);
            style.spacing.item_spacing = egui::vec2(8.0, 8.0);
        });
        let (bg, rx) = Bg::new(setup.runtime, ApiClient::new(&setup.server), ctx);
        let app = Self {
            bg,
            rx,
            mac: setup.mac,
            settings: setup.settings,
            settings_path: setup.settings_path,
            memory: setup.memory,
            lang: setup.lang,
            screen: Screen::Starting,
            terminal: None,
            unreachable: None,
            server_trouble: None,
            next_probe: Some(Instant::now()),
            probing: false,
            remembered_user: None,
            remembered_token: None,
            keyring_notice: false,
            settings_dialog: SettingsDialog::default(),
            demo_hint: setup.demo_hint,
            started: setup.started,
            first_frame_logged: false,
            kiosk_sized: false,
        };
        app.load_memory();
        app
    }

    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    fn t(&self, text: T) -> &'static str {
        text.get(self.lang)
    }

    fn kiosk(&self) -> bool {
        self.settings.kiosk
    }

    // ----- background work -------------------------------------------------------

    fn load_memory(&self) {
        if self.kiosk() {
            return;
        }
        let memory = self.memory.clone();
        let want_token = self.settings.remember_token && !self.kiosk();
        self.bg.spawn_blocking(move || {
            let user = memory.get(LAST_USER).map_err(|e| e.to_string());
            let token = if want_token && user.is_ok() { memory.get(TOKEN).ok().flatten() } else { None };
            Some(Msg::Remembered { user, token })
        });
    }

    /// Keeps the user name (and the token, where allowed). A kiosk keeps nothing: the
    /// next student must not see who sat there before.
    fn remember(&self, user: Option<String>, token: Option<String>) {
        if self.keyring_notice || self.kiosk() {
            return;
        }
        let memory = self.memory.clone();
        let keep_token = self.settings.remember_token && !self.kiosk();
        self.bg.spawn_blocking(move || {
            if let Some(user) = user {
                let _ = memory.set(LAST_USER, Some(&user));
            }
            let token = if keep_token { token } else { None };
            let _ = memory.set(TOKEN, token.as_deref());
            None
        });
    }

    fn probe(&mut self) {
        self.probing = true;
        self.next_probe = None;
        let (api, mac) = (self.bg.api.clone(), self.mac.clone());
        self.bg.spawn(async move { Msg::Terminal(api.terminal(&mac).await) });
    }

    fn load_places(&self) {
        let api = self.bg.api.clone();
        self.bg.spawn(async move { Msg::Places(api.places().await) });
    }

    /// Notes a failure to reach the server and when to try again.
    fn unreachable(&mut self, reason: String) {
        let attempt = self.unreachable.as_ref().map_or(0, |u| u.attempt + 1);
        let backoff = Duration::from_secs(1u64 << attempt.min(5)).min(MAX_BACKOFF);
        let retry_at = Instant::now() + backoff;
        self.unreachable = Some(Unreachable { reason, attempt, retry_at });
        self.next_probe = Some(retry_at);
    }

    fn reachable(&mut self) {
        self.unreachable = None;
        self.server_trouble = None;
    }

    // ----- messages --------------------------------------------------------------

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Terminal(result) => {
                self.probing = false;
                self.on_terminal(result);
            }
            Msg::Places(result) => {
                if let Screen::Register(form) = &mut self.screen {
                    match result {
                        Ok(places) => {
                            if form.place.is_empty()
                                && let Some(first) = places.first()
                            {
                                form.place = first.name.clone();
                            }
                            form.places = Some(places);
                        }
                        Err(e) => {
                            form.places = Some(Vec::new());
                            form.error = Some(describe(&e));
                        }
                    }
                }
            }
            Msg::Registered(result) => self.on_registered(result),
            Msg::LoggedIn { user, resumed, result } => self.on_logged_in(user, resumed, result),
            Msg::Renewed(result) => self.on_renewed(result),
            Msg::Desktops(result) => self.on_desktops(result),
            Msg::ActionDone { id, label, result } => self.on_action_done(id, label, result),
            Msg::PasswordChanged(result) => self.on_password_changed(result),
            Msg::ViewerStarted { name, result } => {
                if let Screen::Desktops(view) = &mut self.screen {
                    match result {
                        Ok(()) => {
                            view.session = Some(name);
                            view.notice = None;
                        }
                        Err(ViewerError::Missing(program)) => {
                            view.notice = Some((Said::with(T::ViewerMissing, &[&program]), true));
                        }
                        Err(ViewerError::NoDisplay) => view.notice = Some((T::NoDisplay.into(), true)),
                        Err(ViewerError::Failed(e)) => {
                            view.notice = Some((Said::with(T::ViewerFailed, &[&e]), true));
                        }
                    }
                }
            }
            Msg::ViewerExited { name } => {
                let text = Said::with(T::SessionEnded, &[&name]);
                if self.kiosk() {
                    self.log_out(Some(text));
                } else if let Screen::Desktops(view) = &mut self.screen {
                    view.session = None;
                    view.notice = Some((text, false));
                    view.next_refresh = Instant::now();
                }
            }
            Msg::Remembered { user, token } => match user {
                Ok(user) => {
                    if let (Some(user), Screen::Login(form)) = (&user, &mut self.screen)
                        && form.user.is_empty()
                    {
                        form.user = user.clone();
                    }
                    self.remembered_user = user;
                    self.remembered_token = token;
                    self.try_remembered_token();
                }
                Err(reason) => {
                    tracing::info!(%reason, "no keyring: the user name will not be remembered");
                    self.keyring_notice = true;
                }
            },
            Msg::FileSaved(result) => {
                if let Screen::Desktops(view) = &mut self.screen {
                    match result {
                        Ok(Some(path)) => {
                            view.notice = Some((Said::with(T::FileSaved, &[&path.display().to_string()]), false));
                        }
                        Ok(None) => {}
                        Err(e) => view.notice = Some((Said::Raw(e), true)),
                    }
                }
            }
            Msg::ProgramChosen { rdp, path } => {
                if let Some(path) = path {
                    let path = path.display().to_string();
                    if rdp {
                        self.settings.viewers.rdp = path;
                    } else {
                        self.settings.viewers.spice = path;
                    }
                }
            }
        }
    }

    fn on_terminal(&mut self, result: Result<Terminal, ApiError>) {
        match result {
            Ok(terminal) => {
                self.reachable();
                let state = terminal.state;
                self.terminal = Some(terminal);
                match (state, &self.screen) {
                    (TerminalState::Approved, Screen::Login(_) | Screen::Desktops(_)) => {}
                    (TerminalState::Approved, _) => self.show_login(None),
                    (TerminalState::Waiting, Screen::Waiting) => self.next_probe = Some(Instant::now() + WAITING_POLL),
                    (TerminalState::Waiting, _) => {
                        self.screen = Screen::Waiting;
                        self.next_probe = Some(Instant::now() + WAITING_POLL);
                    }
                    (TerminalState::Rejected, _) => self.screen = Screen::Rejected,
                }
            }
            Err(ApiError::TerminalNotFound) => {
                self.reachable();
                self.terminal = None;
                if !matches!(self.screen, Screen::Register(_)) {
                    self.screen = Screen::Register(RegisterForm::default());
                    self.load_places();
                }
            }
            Err(ApiError::Unreachable(reason)) => self.unreachable(reason),
            Err(other) => {
                self.unreachable = None;
                self.server_trouble = Some(describe(&other));
                let attempt = 3;
                self.next_probe = Some(Instant::now() + Duration::from_secs(1 << attempt));
            }
        }
    }

    fn show_login(&mut self, error: Option<Said>) {
        let user = match &self.screen {
            Screen::Desktops(view) => view.user.clone(),
            Screen::Login(form) => form.user.clone(),
            _ => self.remembered_user.clone().unwrap_or_default(),
        };
        self.screen = Screen::Login(LoginForm { user, error, ..LoginForm::default() });
        self.try_remembered_token();
    }

    /// A token kept from the last run (where allowed) logs in without a password.
    fn try_remembered_token(&mut self) {
        let Screen::Login(form) = &mut self.screen else { return };
        let Some(token) = self.remembered_token.take() else { return };
        form.busy = true;
        let user = self.remembered_user.clone().unwrap_or_default();
        let api = self.bg.api.clone();
        self.bg.spawn(async move { Msg::LoggedIn { user, resumed: true, result: api.renew(&token).await } });
    }

    fn on_registered(&mut self, result: Result<TerminalState, ApiError>) {
        match result {
            Ok(_) => {
                // The lookup decides the next screen, with the place and seat to show.
                self.probe();
            }
            Err(ApiError::Unreachable(reason)) => {
                if let Screen::Register(form) = &mut self.screen {
                    form.busy = false;
                }
                self.unreachable(reason);
            }
            Err(error) => {
                let Screen::Register(form) = &mut self.screen else { return };
                form.busy = false;
                form.field_errors.clear();
                form.error = None;
                match error {
                    ApiError::Invalid(errors) => form.field_errors = errors,
                    ApiError::TerminalExisted => form.error = Some(T::TerminalExisted.into()),
                    ApiError::SeatTaken => form.error = Some(T::SeatTaken.into()),
                    ApiError::Unauthorized => form.error = Some(T::AdminRefused.into()),
                    ApiError::Forbidden => form.error = Some(T::NotAdmin.into()),
                    ApiError::Throttled(secs) => {
                        form.error = Some(Said::with(T::Throttled, &[&secs.to_string()]));
                    }
                    other => form.error = Some(describe(&other)),
                }
            }
        }
    }

    fn on_logged_in(&mut self, user: String, resumed: bool, result: Result<TokenGrant, ApiError>) {
        let Screen::Login(form) = &mut self.screen else { return };
        form.busy = false;
        match result {
            Ok(grant) => {
                self.reachable();
                self.remember(Some(user.clone()), Some(grant.token.id.clone()));
                let now = Instant::now();
                let mut view = Box::new(DesktopsView {
                    user,
                    token: grant.token.id,
                    desktops: None,
                    busy: HashMap::new(),
                    confirm_shutdown: None,
                    save_file: None,
                    notice: None,
                    password: None,
                    session: None,
                    refreshing: false,
                    next_refresh: now,
                    renew_at: now + renew_after(grant.expires_in),
                    renewing: false,
                    last_activity: now,
                });
                view.refresh(&self.bg);
                self.screen = Screen::Desktops(view);
            }
            Err(_) if resumed => {}
            Err(ApiError::Unauthorized) => {
                form.password.clear();
                form.error = Some(T::WrongPassword.into());
            }
            Err(ApiError::Throttled(secs)) => {
                form.throttled_until = Some(Instant::now() + Duration::from_secs(secs));
                form.error = None;
            }
            Err(ApiError::Unreachable(reason)) => {
                form.error = None;
                self.unreachable(reason);
            }
            Err(other) => form.error = Some(describe(&other)),
        }
    }

    fn on_renewed(&mut self, result: Result<TokenGrant, ApiError>) {
        let Screen::Desktops(view) = &mut self.screen else { return };
        view.renewing = false;
        match result {
            Ok(grant) => {
                view.token = grant.token.id.clone();
                view.renew_at = Instant::now() + renew_after(grant.expires_in);
                let user = view.user.clone();
                self.remember(Some(user), Some(grant.token.id));
            }
            Err(ApiError::Unauthorized) => self.log_out(Some(T::SessionExpired.into())),
            Err(ApiError::Unreachable(reason)) => {
                view.renew_at = Instant::now() + Duration::from_secs(10);
                self.unreachable(reason);
            }
            Err(_) => view.renew_at = Instant::now() + Duration::from_secs(30),
        }
    }

    fn on_desktops(&mut self, result: Result<DesktopList, ApiError>) {
        let Screen::Desktops(view) = &mut self.screen else { return };
        view.refreshing = false;
        match result {
            Ok(list) => {
                view.desktops = Some(list.desktop_list);
                self.reachable();
            }
            Err(ApiError::Unauthorized) => self.log_out(Some(T::SessionExpired.into())),
            Err(ApiError::Unreachable(reason)) => self.unreachable(reason),
            Err(other) => self.server_trouble = Some(describe(&other)),
        }
    }

    fn on_action_done(&mut self, id: String, label: T, result: Result<(), ApiError>) {
        let Screen::Desktops(view) = &mut self.screen else { return };
        view.busy.remove(&id);
        let name = view.desktops.iter().flatten().find(|d| d.id == id).map(|d| d.name.clone()).unwrap_or_default();
        view.notice = Some(match result {
            Ok(()) => (Said::Text(T::ActionDone, vec![Said::Raw(name), label.into()]), false),
            Err(ApiError::Conflict(_)) => (T::ActionBusy.into(), true),
            Err(ApiError::Unauthorized) => {
                self.log_out(Some(T::SessionExpired.into()));
                return;
            }
            Err(e) => (describe(&e), true),
        });
        view.next_refresh = Instant::now();
    }

    fn on_password_changed(&mut self, result: Result<(), ApiError>) {
        let Screen::Desktops(view) = &mut self.screen else { return };
        let Some(dialog) = &mut view.password else { return };
        dialog.busy = false;
        match result {
            Ok(()) => {
                view.password = None;
                view.notice = Some((T::PasswordChanged.into(), false));
            }
            Err(ApiError::Invalid(errors)) => {
                dialog.error = Some(Said::Raw(errors.values().flatten().cloned().collect::<Vec<_>>().join("; ")));
            }
            Err(e) => dialog.error = Some(describe(&e)),
        }
    }

    fn log_out(&mut self, notice: Option<Said>) {
        if let Screen::Desktops(view) = &self.screen {
            let user = view.user.clone();
            self.remember(Some(user), None);
        }
        self.remembered_token = None;
        self.show_login(notice);
        if let Screen::Login(form) = &mut self.screen
            && self.settings.kiosk
        {
            // A kiosk forgets who sat here.
            form.user.clear();
        }
    }

    // ----- timers ----------------------------------------------------------------

    /// Runs what is due and returns when something is next due.
    fn tick(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if let Some(at) = self.next_probe
            && at <= now
            && !self.probing
        {
            self.probe();
        }
        let mut next = self.next_probe;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        if self.unreachable.is_some() {
            soonest(now + Duration::from_secs(1));
        }
        let idle = Duration::from_secs(self.settings.idle_logout_secs.max(1));
        let kiosk = self.kiosk();
        let mut idle_out = false;
        match &mut self.screen {
            Screen::Login(form) => {
                if let Some(until) = form.throttled_until {
                    if until <= now {
                        form.throttled_until = None;
                    } else {
                        soonest(now + Duration::from_secs(1).min(until - now));
                    }
                }
            }
            Screen::Desktops(view) => {
                if view.next_refresh <= now && !view.refreshing {
                    view.refresh(&self.bg);
                }
                if view.renew_at <= now && !view.renewing {
                    view.renew(&self.bg);
                }
                soonest(view.next_refresh);
                soonest(view.renew_at);
                if kiosk && view.session.is_none() {
                    let deadline = view.last_activity + idle;
                    if deadline <= now {
                        idle_out = true;
                    } else {
                        soonest(deadline);
                    }
                }
            }
            _ => {}
        }
        if idle_out {
            self.log_out(None);
        }
        next
    }

    // ----- drawing ---------------------------------------------------------------

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(self.t(T::AppTitle));
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    let other = self.lang.other();
                    if ui.button(other.native_name()).on_hover_text(self.t(T::Language)).clicked() {
                        self.lang = other;
                        self.settings.language = Some(other);
                        self.save_settings();
                    }
                    if !self.kiosk() && ui.button(self.t(T::Settings)).clicked() {
                        self.settings_dialog.open = true;
                    }
                    if let Screen::Desktops(view) = &mut self.screen {
                        if ui.button(T::LogOut.get(self.lang)).clicked() {
                            self.log_out(None);
                            return;
                        }
                        if ui.button(T::ChangePassword.get(self.lang)).clicked() {
                            view.password = Some(PasswordDialog::default());
                        }
                        ui.label(fill(T::SignedInAs.get(self.lang), &[&view.user]));
                    }
                });
            });
            if let Some(unreachable) = &self.unreachable {
                let secs = unreachable.retry_at.saturating_duration_since(Instant::now()).as_secs() + 1;
                let text = fill(
                    self.t(T::Unreachable),
                    &[self.bg.api.base().trim_end_matches("/api/v1.0"), &unreachable.reason, &secs.to_string()],
                );
                ui.horizontal(|ui| {
                    ui.colored_label(ui.visuals().error_fg_color, text);
                    if ui.button(self.t(T::Retry)).clicked() && !self.probing {
                        self.probe();
                    }
                });
            }
            if let Some(trouble) = &self.server_trouble {
                ui.colored_label(ui.visuals().warn_fg_color, trouble.show(self.lang));
            }
        });
    }

    fn bottom_bar(&self, ui: &mut egui::Ui) {
        egui::Panel::bottom("bottom").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                let small = |text: String| RichText::new(text).small().weak();
                ui.label(small(format!(
                    "{}: {}",
                    self.t(T::ServerLabel),
                    self.bg.api.base().trim_end_matches("/api/v1.0")
                )));
                ui.label(small(format!("{}: {}", self.t(T::TerminalLabel), self.mac)));
                if self.keyring_notice {
                    ui.label(small(self.t(T::NotRemembering).into()));
                }
                if self.kiosk() {
                    ui.label(small(self.t(T::KioskNote).into()));
                }
            });
        });
    }

    /// Writes the settings file in the background.
    fn save_settings(&self) {
        let Some(path) = self.settings_path.clone() else { return };
        let settings = self.settings.clone();
        self.bg.spawn_blocking(move || {
            if let Err(e) = settings.save(&path) {
                tracing::warn!(error = %e, "settings not saved");
            }
            None
        });
    }

    fn draw_screen(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        let seat = self.terminal.as_ref().map(|t| (t.place.clone(), t.seat_number.clone())).unwrap_or_default();
        let mut command = None;
        match &mut self.screen {
            Screen::Starting => {
                card(ui, |ui| {
                    ui.horizontal(|ui| {
                        if self.unreachable.is_none() {
                            ui.spinner();
                        }
                        ui.label(T::Starting.get(lang));
                    });
                });
            }
            Screen::Register(form) => command = register_screen(ui, lang, form),
            Screen::Waiting => {
                card(ui, |ui| {
                    ui.heading(T::WaitingTitle.get(lang));
                    ui.label(fill(T::WaitingBody.get(lang), &[&seat.0, &seat.1]));
                    if ui.button(T::CheckAgain.get(lang)).clicked() {
                        command = Some(Command::Probe);
                    }
                });
            }
            Screen::Rejected => {
                card(ui, |ui| {
                    ui.heading(T::RejectedTitle.get(lang));
                    ui.colored_label(ui.visuals().error_fg_color, fill(T::RejectedBody.get(lang), &[&seat.0, &seat.1]));
                    if ui.button(T::CheckAgain.get(lang)).clicked() {
                        command = Some(Command::Probe);
                    }
                });
            }
            Screen::Login(form) => command = login_screen(ui, lang, form, &seat, self.demo_hint.as_deref()),
            Screen::Desktops(view) => command = desktops_screen(ui, lang, view, self.settings.kiosk),
        }
        if let Some(command) = command {
            self.run(command);
        }
    }

    /// Carries out what a widget asked for, after drawing.
    fn run(&mut self, command: Command) {
        match command {
            Command::Probe => {
                if !self.probing {
                    self.probe();
                }
            }
            Command::Register => {
                let Screen::Register(form) = &mut self.screen else { return };
                form.busy = true;
                form.error = None;
                form.field_errors.clear();
                let (api, mac) = (self.bg.api.clone(), self.mac.clone());
                let (place, seat) = (form.place.clone(), form.seat.trim().to_owned());
                let admin = form.as_admin.then(|| (form.admin_name.trim().to_owned(), form.admin_password.clone()));
                self.bg.spawn(async move {
                    let admin = admin.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
                    Msg::Registered(api.register(&place, &seat, &mac, admin).await.map(|r| r.terminal_state))
                });
            }
            Command::LogIn => {
                let Screen::Login(form) = &mut self.screen else { return };
                form.busy = true;
                form.error = None;
                let (api, user, password) = (self.bg.api.clone(), form.user.trim().to_owned(), form.password.clone());
                form.password.clear();
                self.bg.spawn(async move {
                    let result = api.token(&user, &password).await;
                    Msg::LoggedIn { user, resumed: false, result }
                });
            }
            Command::Refresh => {
                if let Screen::Desktops(view) = &mut self.screen {
                    view.next_refresh = Instant::now();
                }
            }
            Command::Action(id, action, label) => {
                let Screen::Desktops(view) = &mut self.screen else { return };
                view.busy.insert(id.clone(), label);
                view.notice = None;
                let (api, token) = (self.bg.api.clone(), view.token.clone());
                self.bg.spawn(async move {
                    let result = api.action(&token, &id, action).await;
                    Msg::ActionDone { id, label, result }
                });
            }
            Command::Connect(desktop) => {
                let launch = viewer::plan(&desktop, &self.settings.viewers, self.settings.kiosk);
                let name = desktop.name.clone();
                match launch {
                    Ok(launch) => {
                        let bg = self.bg.clone();
                        self.bg.runtime.spawn(async move {
                            match viewer::start(&launch).await {
                                Ok(mut child) => {
                                    bg.report(Msg::ViewerStarted { name: name.clone(), result: Ok(()) });
                                    let status = child.wait().await;
                                    tracing::info!(?status, "viewer closed");
                                    bg.report(Msg::ViewerExited { name });
                                }
                                Err(e) => bg.report(Msg::ViewerStarted { name, result: Err(e) }),
                            }
                        });
                    }
                    Err(e) => self.handle(Msg::ViewerStarted { name, result: Err(e) }),
                }
            }
            Command::AskShutdown(id, name) => {
                if let Screen::Desktops(view) = &mut self.screen {
                    view.confirm_shutdown = Some((id, name));
                }
            }
            Command::AskSaveFile(desktop) => {
                if let Screen::Desktops(view) = &mut self.screen {
                    view.save_file = Some(desktop);
                }
            }
            Command::ChangePassword(password) => {
                let Screen::Desktops(view) = &mut self.screen else { return };
                let (api, token) = (self.bg.api.clone(), view.token.clone());
                self.bg.spawn(async move { Msg::PasswordChanged(api.reset_password(&token, &password).await) });
            }
            Command::SaveFile(desktop) => match viewer::connection_file(&desktop) {
                Ok((ext, content)) => {
                    let name = format!("{}.{ext}", desktop.name.replace(['/', '\\'], "_"));
                    let title = T::SaveFileWarning.get(self.lang).to_owned();
                    self.bg.spawn_blocking(move || {
                        let path = rfd::FileDialog::new().set_title(title).set_file_name(name).save_file();
                        Some(Msg::FileSaved(match path {
                            Some(path) => {
                                write_private(&path, &content).map(|()| Some(path)).map_err(|e| e.to_string())
                            }
                            None => Ok(None),
                        }))
                    });
                }
                Err(e) => self.handle(Msg::ViewerStarted { name: desktop.name, result: Err(e) }),
            },
            Command::ChooseProgram { rdp } => {
                self.bg.spawn_blocking(move || {
                    let path = rfd::FileDialog::new().set_directory("/usr/bin").pick_file();
                    Some(Msg::ProgramChosen { rdp, path })
                });
            }
        }
    }

    fn settings_window(&mut self, ctx: &egui::Context) {
        if !self.settings_dialog.open || self.kiosk() {
            return;
        }
        let lang = self.lang;
        let mut open = true;
        let mut command = None;
        let mut save = false;
        egui::Window::new(T::Settings.get(lang))
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(480.0)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                for (rdp, label) in [(false, T::SpiceViewer), (true, T::RdpViewer)] {
                    let id = ui.label(label.get(lang)).id;
                    let value = if rdp { &mut self.settings.viewers.rdp } else { &mut self.settings.viewers.spice };
                    ui.horizontal(|ui| {
                        ui.add(egui::TextEdit::singleline(value).desired_width(340.0)).labelled_by(id);
                        if ui.button(T::Choose.get(lang)).on_hover_text(label.get(lang)).clicked() {
                            command = Some(Command::ChooseProgram { rdp });
                        }
                    });
                }
                ui.separator();
                if ui.button(T::Save.get(lang)).clicked() {
                    save = true;
                }
            });
        if save {
            self.save_settings();
            open = false;
        }
        self.settings_dialog.open = open;
        if let Some(command) = command {
            self.run(command);
        }
    }
}

/// What a screen's widgets ask for; run after drawing.
enum Command {
    Probe,
    Register,
    LogIn,
    Refresh,
    /// Desktop id, what to ask the server, the button's text.
    Action(String, DesktopAction, T),
    Connect(Desktop),
    AskShutdown(String, String),
    AskSaveFile(Desktop),
    ChangePassword(String),
    SaveFile(Desktop),
    ChooseProgram {
        rdp: bool,
    },
}

/// Renew at four fifths of the lifetime, and at least two seconds before the end (the
/// server counts whole seconds), but not sooner than in a second.
fn renew_after(expires_in: u64) -> Duration {
    let at = expires_in.saturating_mul(800).min(expires_in.saturating_sub(2).saturating_mul(1000));
    Duration::from_millis(at.max(1000))
}

fn describe(error: &ApiError) -> Said {
    match error {
        ApiError::Unauthorized => T::WrongPassword.into(),
        ApiError::Throttled(secs) => Said::with(T::Throttled, &[&secs.to_string()]),
        ApiError::Server(message) => Said::with(T::ServerTrouble, &[message]),
        ApiError::Invalid(errors) => Said::Raw(
            errors
                .iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Said::Raw(other.to_string()),
    }
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

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())
}

fn register_screen(ui: &mut egui::Ui, lang: Lang, form: &mut RegisterForm) -> Option<Command> {
    let mut command = None;
    card(ui, |ui| {
        ui.heading(T::RegisterTitle.get(lang));
        ui.label(T::RegisterIntro.get(lang));
        ui.separator();
        ui.label(RichText::new(T::Place.get(lang)).strong());
        match &form.places {
            None => {
                ui.spinner();
            }
            Some(places) if places.is_empty() => {
                ui.colored_label(ui.visuals().warn_fg_color, T::NoPlaces.get(lang));
            }
            Some(places) => {
                egui::ScrollArea::vertical().max_height(160.0).show(ui, |ui| {
                    for place in places {
                        let text = if place.address.is_empty() {
                            place.name.clone()
                        } else {
                            format!("{} ({})", place.name, place.address)
                        };
                        ui.radio_value(&mut form.place, place.name.clone(), text);
                    }
                });
            }
        }
        for error in form.field_errors.get("place").into_iter().flatten() {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        field(ui, T::SeatNumber.get(lang), &mut form.seat, false, form.field_errors.get("seat_number"));
        ui.checkbox(&mut form.as_admin, T::AsAdmin.get(lang));
        if form.as_admin {
            field(ui, T::AdminName.get(lang), &mut form.admin_name, false, None);
            field(ui, T::AdminPassword.get(lang), &mut form.admin_password, true, None);
        }
        for (field, errors) in &form.field_errors {
            if field != "place" && field != "seat_number" {
                ui.colored_label(ui.visuals().error_fg_color, format!("{field}: {}", errors.join(", ")));
            }
        }
        error_line(ui, lang, &form.error);
        ui.horizontal(|ui| {
            let ready = !form.busy && form.places.is_some();
            if ui.add_enabled(ready, egui::Button::new(T::Register.get(lang))).clicked() {
                command = Some(Command::Register);
            }
            if form.busy {
                ui.spinner();
                ui.label(T::Registering.get(lang));
            }
        });
    });
    command
}

fn login_screen(
    ui: &mut egui::Ui,
    lang: Lang,
    form: &mut LoginForm,
    seat: &(String, String),
    demo_hint: Option<&str>,
) -> Option<Command> {
    let mut command = None;
    card(ui, |ui| {
        ui.heading(T::LoginTitle.get(lang));
        ui.label(RichText::new(fill(T::SeatInfo.get(lang), &[&seat.0, &seat.1])).weak());
        ui.separator();
        field(ui, T::UserName.get(lang), &mut form.user, false, None);
        let password = field(ui, T::Password.get(lang), &mut form.password, true, None);
        let enter = password.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let wait = form.throttled_until.map(|until| until.saturating_duration_since(Instant::now()));
        if let Some(wait) = wait {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ui.colored_label(ui.visuals().error_fg_color, fill(T::Throttled.get(lang), &[&secs.to_string()]));
        }
        error_line(ui, lang, &form.error);
        ui.horizontal(|ui| {
            let ready = !form.busy && wait.is_none() && !form.user.trim().is_empty() && !form.password.is_empty();
            let clicked = ui.add_enabled(ready, egui::Button::new(T::LogIn.get(lang))).clicked();
            if ready && (clicked || enter) {
                command = Some(Command::LogIn);
            }
            if form.busy {
                ui.spinner();
                ui.label(T::LoggingIn.get(lang));
            }
        });
        if let Some(hint) = demo_hint {
            ui.separator();
            ui.label(RichText::new(hint).small().weak());
        }
    });
    command
}

fn desktops_screen(ui: &mut egui::Ui, lang: Lang, view: &mut DesktopsView, kiosk: bool) -> Option<Command> {
    let mut command = None;
    if ui.input(|i| !i.events.is_empty()) {
        view.last_activity = Instant::now();
    }
    ui.horizontal(|ui| {
        ui.heading(T::DesktopsTitle.get(lang));
        if ui.add_enabled(!view.refreshing, egui::Button::new(T::Refresh.get(lang))).clicked() {
            command = Some(Command::Refresh);
        }
    });
    if let Some(name) = &view.session {
        egui::Frame::group(ui.style()).fill(ui.visuals().extreme_bg_color).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(fill(T::SessionOpen.get(lang), &[name])).strong());
            ui.label(T::SessionHint.get(lang));
        });
    }
    if let Some((notice, is_error)) = &view.notice {
        let color = if *is_error { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
        ui.colored_label(color, notice.show(lang));
    }
    match &view.desktops {
        None => {
            ui.spinner();
        }
        Some(desktops) if desktops.is_empty() => {
            ui.label(T::NoDesktops.get(lang));
        }
        Some(desktops) => {
            egui::ScrollArea::vertical().show(ui, |ui| {
                for desktop in desktops {
                    if let Some(c) =
                        desktop_card(ui, lang, desktop, view.busy.get(&desktop.id), view.session.is_some(), kiosk)
                    {
                        command = Some(c);
                    }
                }
            });
        }
    }
    if let Some(c) = dialogs(ui.ctx(), lang, view) {
        command = Some(c);
    }
    command
}

fn desktop_card(
    ui: &mut egui::Ui,
    lang: Lang,
    desktop: &Desktop,
    busy: Option<&T>,
    in_session: bool,
    kiosk: bool,
) -> Option<Command> {
    let mut command = None;
    egui::Frame::group(ui.style()).inner_margin(12.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(&desktop.name).heading());
            let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter().circle_filled(dot.center(), 5.0, status_color(desktop.status));
            ui.label(status_label(lang, desktop.status));
        });
        ui.horizontal_wrapped(|ui| {
            let idle = busy.is_none();
            let active = desktop.status == DesktopStatus::Active;
            let can_connect = active && viewer::pick_connection(desktop).is_some() && !in_session;
            let connect_text = RichText::new(T::Connect.get(lang));
            let connect_text = if idle && can_connect { connect_text.strong() } else { connect_text };
            if ui.add_enabled(idle && can_connect, egui::Button::new(connect_text)).clicked() {
                command = Some(Command::Connect(desktop.clone()));
            }
            let wake = match desktop.status {
                DesktopStatus::Suspended | DesktopStatus::Paused => Some((T::Resume, DesktopAction::Resume)),
                DesktopStatus::Shutoff | DesktopStatus::Error => Some((T::Start, DesktopAction::Resume)),
                _ => None,
            };
            if let Some((label, action)) = wake
                && ui.add_enabled(idle, egui::Button::new(label.get(lang))).clicked()
            {
                command = Some(Command::Action(desktop.id.clone(), action, label));
            }
            if ui.add_enabled(idle && active, egui::Button::new(T::Reboot.get(lang))).clicked() {
                command = Some(Command::Action(desktop.id.clone(), DesktopAction::Reboot, T::Reboot));
            }
            let can_stop = desktop.status != DesktopStatus::Shutoff;
            if ui.add_enabled(idle && can_stop, egui::Button::new(T::Shutdown.get(lang))).clicked() {
                command = Some(Command::AskShutdown(desktop.id.clone(), desktop.name.clone()));
            }
            if !kiosk && ui.add_enabled(can_connect, egui::Button::new(T::SaveFile.get(lang))).clicked() {
                command = Some(Command::AskSaveFile(desktop.clone()));
            }
            if let Some(label) = busy {
                ui.spinner();
                ui.label(format!("{} {}", label.get(lang), T::Working.get(lang)));
            }
        });
    });
    command
}

/// The shutdown confirmation, the connection-file warning and the password dialog.
fn dialogs(ctx: &egui::Context, lang: Lang, view: &mut DesktopsView) -> Option<Command> {
    let mut command = None;
    if let Some((id, name)) = view.confirm_shutdown.clone() {
        let mut close = false;
        egui::Modal::new(egui::Id::unique("confirm-shutdown")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading(T::Shutdown.get(lang));
            ui.label(fill(T::ConfirmShutdown.get(lang), &[&name]));
            ui.horizontal(|ui| {
                let yes = egui::Button::new(RichText::new(T::Shutdown.get(lang)).color(ui.visuals().error_fg_color));
                if ui.add(yes).clicked() {
                    command = Some(Command::Action(id.clone(), DesktopAction::Shutdown, T::Shutdown));
                    close = true;
                }
                if ui.button(T::Cancel.get(lang)).clicked() {
                    close = true;
                }
            });
        });
        if close {
            view.confirm_shutdown = None;
        }
    }
    if let Some(desktop) = view.save_file.clone() {
        let mut close = false;
        egui::Modal::new(egui::Id::unique("save-file")).show(ctx, |ui| {
            ui.set_max_width(460.0);
            ui.heading(T::SaveFile.get(lang));
            ui.colored_label(ui.visuals().warn_fg_color, T::SaveFileWarning.get(lang));
            ui.horizontal(|ui| {
                if ui.button(T::Save.get(lang)).clicked() {
                    command = Some(Command::SaveFile(desktop.clone()));
                    close = true;
                }
                if ui.button(T::Cancel.get(lang)).clicked() {
                    close = true;
                }
            });
        });
        if close {
            view.save_file = None;
        }
    }
    if let Some(dialog) = &mut view.password {
        let mut close = false;
        egui::Modal::new(egui::Id::unique("change-password")).show(ctx, |ui| {
            ui.set_width(360.0);
            ui.heading(T::ChangePassword.get(lang));
            field(ui, T::NewPassword.get(lang), &mut dialog.new, true, None);
            field(ui, T::RepeatPassword.get(lang), &mut dialog.repeat, true, None);
            error_line(ui, lang, &dialog.error);
            ui.horizontal(|ui| {
                let ready = !dialog.busy && !dialog.new.is_empty();
                if ui.add_enabled(ready, egui::Button::new(T::Save.get(lang))).clicked() {
                    if dialog.new == dialog.repeat {
                        dialog.busy = true;
                        dialog.error = None;
                        command = Some(Command::ChangePassword(dialog.new.clone()));
                    } else {
                        dialog.error = Some(T::PasswordsDiffer.into());
                    }
                }
                if ui.button(T::Cancel.get(lang)).clicked() {
                    close = true;
                }
                if dialog.busy {
                    ui.spinner();
                }
            });
        });
        if close {
            view.password = None;
        }
    }
    command
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if !self.first_frame_logged {
            self.first_frame_logged = true;
            tracing::info!(elapsed_ms = self.started.elapsed().as_millis() as u64, "first frame");
        }
        // A kiosk cannot be closed by a student: the window manager's close is refused.
        if self.kiosk() && ctx.input(|i| i.viewport().close_requested()) {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
        }
        // Fullscreen needs a window manager to honour it; kiosk terminals often run
        // none, so the window also covers the whole monitor itself.
        if self.kiosk()
            && !self.kiosk_sized
            && let Some(size) = ctx.input(|i| i.viewport().monitor_size)
        {
            self.kiosk_sized = true;
            ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::pos2(0.0, 0.0)));
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size));
        }
        while let Ok(msg) = self.rx.try_recv() {
            self.handle(msg);
        }
        let next = self.tick();
        self.top_bar(ui);
        self.bottom_bar(ui);
        egui::CentralPanel::default().show(ui, |ui| self.draw_screen(ui));
        self.settings_window(&ctx);
        if let Some(next) = next {
            ctx.request_repaint_after(next.saturating_duration_since(Instant::now()));
        }
    }
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
