//! The GUI as a state machine: one [`Screen`] at a time, routing each background
//! [`Msg`] to the screen it is for, and running what screens ask of the app
//! ([`Command`]). The screens themselves live in [`crate::screens`].
//!
//! **The UI thread never waits on I/O**: work runs through [`Bg`]. Timers (token
//! renewal, countdowns, kiosk idle, retries) are deadlines checked when a frame runs,
//! and the next one is asked for with `request_repaint_after`: an idle client draws
//! nothing. The periodic polls (the waiting terminal's, the desktop list's) are timed
//! in the background instead ([`Bg::repeat`]) and wake the UI only when their answer
//! changes what is shown: each frame costs ~13 ms of CPU under a software renderer.

use crate::api::{ApiClient, ApiError};
use crate::bg::{Bg, Msg, Repeating, ViewerEnd};
use crate::i18n::{Lang, Said, T, fill};
use crate::pinning::{Fingerprint, Pin, Untrusted};
use crate::screens::desktops::DesktopsView;
use crate::screens::login::{DemoHint, LoginForm};
use crate::screens::register::RegisterForm;
use crate::screens::{Command, describe, terminal_state, trust};
use crate::settings::{LAST_USER, Memory, Settings, TOKEN};
use crate::settings_window::SettingsWindow;
use crate::widgets::{busy_sign, right_aligned};
use egui::RichText;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use thindesk_shared::{Terminal, TerminalState};

/// How often a waiting terminal asks whether it was approved.
pub const WAITING_POLL: Duration = Duration::from_secs(3);
/// The longest wait between two tries to reach an unreachable server.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Everything the app is started with.
pub struct Setup {
    /// `host:port` of the management server (spoken to over HTTPS, its certificate
    /// pinned by `settings.server_fingerprint`).
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
    /// The demo's logins, shown on the login screen of `--demo`.
    pub demo_hint: Option<DemoHint>,
    /// When the process started, to log the time to the first frame.
    pub started: Instant,
}

/// Whole seconds left until `at`, rounded up (2.1 s left shows 3, then 2, then 1);
/// `None` once it is due.
pub fn countdown(at: Instant, now: Instant) -> Option<u64> {
    let left = at.checked_duration_since(now).filter(|left| !left.is_zero())?;
    Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
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
    /// Nothing is pinned: the server's fingerprint, to compare with the console's.
    FirstContact(Fingerprint),
    /// Another certificate than the pinned one: the client stops here.
    CertificateChanged {
        pinned: Fingerprint,
        presented: Fingerprint,
    },
}

/// The server could not be reached: say so, and try again with growing pauses.
struct Unreachable {
    reason: String,
    attempt: u32,
    retry_at: Instant,
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
    /// The waiting terminal's poll, in the background, while the waiting screen shows.
    waiting_poll: Option<Repeating>,
    probing: bool,
    /// When the lookup under way began, for its busy sign.
    probe_since: Option<Instant>,
    remembered_user: Option<String>,
    remembered_token: Option<String>,
    /// Said once when no keyring is available.
    keyring_notice: bool,
    settings_window: SettingsWindow,
    demo_hint: Option<DemoHint>,
    started: Instant,
    first_frame_logged: bool,
    kiosk_sized: bool,
    /// The zoom was set from the monitor's size.
    scaled: bool,
    logo: Option<egui::TextureHandle>,
    /// Whether the window had the keyboard last frame.
    window_focused: bool,
}

impl App {
    pub fn new(cc: &eframe::CreationContext<'_>, setup: Setup) -> Self {
        let ctx = cc.egui_ctx.clone();
        crate::fonts::install_cjk(&ctx);
        crate::look::install(&ctx);
        let api = ApiClient::new(&setup.server, Pin::new(setup.settings.server_fingerprint));
        let (bg, rx) = Bg::new(setup.runtime, api, ctx);
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
            waiting_poll: None,
            probing: false,
            probe_since: None,
            remembered_user: None,
            remembered_token: None,
            keyring_notice: false,
            settings_window: SettingsWindow::default(),
            demo_hint: setup.demo_hint,
            started: setup.started,
            first_frame_logged: false,
            kiosk_sized: false,
            scaled: false,
            logo: None,
            window_focused: true,
        };
        app.load_memory();
        app.load_logo();
        app
    }

    /// The signed-in session (token and viewers) this app hands over on logout.
    pub fn session(&self) -> crate::leaving::Session {
        self.bg.session.clone()
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

    fn desktops_view(&mut self) -> Option<&mut DesktopsView> {
        match &mut self.screen {
            Screen::Desktops(view) => Some(view),
            _ => None,
        }
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
    fn remember(&self, user: String, token: Option<String>) {
        if self.keyring_notice || self.kiosk() {
            return;
        }
        let memory = self.memory.clone();
        let keep_token = self.settings.remember_token && !self.kiosk();
        self.bg.spawn_blocking(move || {
            let _ = memory.set(LAST_USER, Some(&user));
            let token = if keep_token { token } else { None };
            let _ = memory.set(TOKEN, token.as_deref());
            None
        });
    }

    /// Reads and decodes the school's logo off the UI thread.
    fn load_logo(&self) {
        let Some(path) = self.settings.logo.clone() else { return };
        self.bg.spawn_blocking(move || {
            let decoded = image::open(&path).map_err(|e| format!("{}: {e}", path.display())).map(|image| {
                let image = image.into_rgba8();
                let size = [image.width() as usize, image.height() as usize];
                egui::ColorImage::from_rgba_unmultiplied(size, image.as_raw())
            });
            Some(Msg::Logo(decoded))
        });
    }

    /// What the top bar and the login screen are titled: the school's name, or the
    /// client's.
    fn title(&self) -> String {
        match &self.settings.school_name {
            Some(name) if !name.trim().is_empty() => name.clone(),
            _ => self.t(T::AppTitle).to_owned(),
        }
    }

    /// Asks every [`WAITING_POLL`], in the background, whether the terminal is still
    /// waiting as `shown`. An unchanged answer costs the UI nothing; any other (approved,
    /// rejected, moved, or an error) goes to the UI as the lookup's and ends the poll:
    /// its handling starts the next poll, or the unreachable backoff's retries.
    fn poll_waiting(&mut self, shown: Terminal) {
        self.next_probe = None;
        let (api, mac) = (self.bg.api.clone(), self.mac.clone());
        self.waiting_poll = Some(self.bg.repeat(WAITING_POLL, move || {
            let (api, mac, shown) = (api.clone(), mac.clone(), shown.clone());
            async move {
                let result = api.terminal(&mac).await;
                match result {
                    Ok(terminal) if terminal == shown => (None, Some(WAITING_POLL)),
                    other => (Some(Msg::Terminal(other)), None),
                }
            }
        }));
    }

    fn probe(&mut self) {
        self.probing = true;
        self.probe_since = Some(Instant::now());
        self.next_probe = None;
        let (api, mac) = (self.bg.api.clone(), self.mac.clone());
        self.bg.spawn(async move { Msg::Terminal(api.terminal(&mac).await) });
    }

    /// Notes a failure to reach the server and when to try again. Only the lookup's own
    /// failure (`probe`) moves the next try: other requests failing meanwhile (the
    /// desktop list's refresh every 5 s) would otherwise restart the countdown.
    fn unreachable(&mut self, reason: String, probe: bool) {
        if !probe && let Some(unreachable) = &mut self.unreachable {
            unreachable.reason = reason;
            return;
        }
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

    // ----- messages and commands -------------------------------------------------

    /// Hands a message to the screen it is for; an answer for a screen no longer shown
    /// is dropped.
    fn handle(&mut self, msg: Msg) {
        if let Some(untrusted) = msg.untrusted() {
            self.untrusted(untrusted.clone());
            return;
        }
        let command = match msg {
            Msg::Terminal(result) => {
                self.probing = false;
                self.on_terminal(result);
                None
            }
            Msg::Places(result) => {
                if let Screen::Register(form) = &mut self.screen {
                    form.on_places(result);
                }
                None
            }
            Msg::Registered(Ok(_)) => {
                // The lookup decides the next screen, with the place and seat to show.
                self.probe();
                None
            }
            Msg::Registered(Err(error)) => {
                if let Screen::Register(form) = &mut self.screen {
                    form.on_failed(&error);
                }
                match error {
                    ApiError::Unreachable(reason) => Some(Command::Unreachable(reason)),
                    _ => None,
                }
            }
            Msg::LoggedIn { user, resumed, result } => match &mut self.screen {
                Screen::Login(form) => form.on_logged_in(user, resumed, result),
                _ => None,
            },
            Msg::Renewed(result) => self.desktops_view().and_then(|view| view.on_renewed(result)),
            Msg::Desktops(result) => {
                let (bg, viewers, kiosk) = (self.bg.clone(), self.settings.viewers.clone(), self.kiosk());
                self.desktops_view().and_then(|view| {
                    let command = view.on_desktops(result);
                    view.reconnect_if_due(&bg, &viewers, kiosk);
                    command
                })
            }
            Msg::DesktopsPolled { epoch, result } => {
                let (bg, viewers, kiosk) = (self.bg.clone(), self.settings.viewers.clone(), self.kiosk());
                self.desktops_view().and_then(|view| {
                    let command = view.on_polled(epoch, result);
                    view.reconnect_if_due(&bg, &viewers, kiosk);
                    command
                })
            }
            Msg::FreshForConnect { id, result } => {
                let (bg, viewers, kiosk) = (self.bg.clone(), self.settings.viewers.clone(), self.kiosk());
                self.desktops_view().and_then(|view| view.on_fresh_for_connect(&id, result, &bg, &viewers, kiosk))
            }
            Msg::ActionDone { id, label, result } => {
                self.desktops_view().and_then(|view| view.on_action_done(id, label, result))
            }
            Msg::PasswordChanged(result) => {
                // The demo's hint no longer shows a password that changed.
                if result.is_ok()
                    && let (Some(hint), Screen::Desktops(view)) = (&mut self.demo_hint, &self.screen)
                {
                    for login in [&mut hint.student, &mut hint.admin] {
                        if login.user == view.user() {
                            login.password = None;
                        }
                    }
                }
                self.desktops_view().and_then(|view| view.on_password_changed(result))
            }
            Msg::ViewerStarted { name, result } => {
                if let Some(view) = self.desktops_view() {
                    view.on_viewer_started(name, result);
                }
                None
            }
            // A viewer of a session already handed over (logging out closes them).
            Msg::ViewerExited { .. } if !matches!(self.screen, Screen::Desktops(_)) => None,
            Msg::ViewerExited { name, end: ViewerEnd::CertificateChanged, .. } => {
                if let Some(view) = self.desktops_view() {
                    view.on_viewer_certificate_changed(&name);
                }
                None
            }
            Msg::ViewerExited { id, name, end: ViewerEnd::Failed { early } } => {
                let bg = self.bg.clone();
                if let Some(view) = self.desktops_view() {
                    view.on_viewer_failed(id, name, early, &bg);
                }
                None
            }
            Msg::AfterDrop { id, name, early, result } => {
                let (bg, viewers, kiosk) = (self.bg.clone(), self.settings.viewers.clone(), self.kiosk());
                self.desktops_view()
                    .and_then(|view| view.on_after_drop(id, name, early, result, (&bg, &viewers, kiosk)))
            }
            Msg::ViewerExited { name, end: ViewerEnd::Closed, .. } => {
                let notice = Said::with(T::SessionEnded, &[&name]);
                if self.kiosk() {
                    // The next student sees no trace of the last: not even a desktop's name.
                    Some(Command::LogOut(None))
                } else {
                    if let Some(view) = self.desktops_view() {
                        view.on_session_ended(notice);
                    }
                    None
                }
            }
            Msg::Remembered { user, token } => {
                match user {
                    Ok(user) => {
                        if let (Some(user), Screen::Login(form)) = (&user, &mut self.screen) {
                            form.offer_user(user);
                        }
                        self.remembered_user = user;
                        self.remembered_token = token;
                        self.try_remembered_token();
                    }
                    Err(reason) => {
                        tracing::info!(%reason, "no keyring: the user name will not be remembered");
                        self.keyring_notice = true;
                    }
                }
                None
            }
            Msg::FileSaved(result) => {
                if let Some(view) = self.desktops_view() {
                    view.on_file_saved(result);
                }
                None
            }
            Msg::Logo(Ok(image)) => {
                self.logo = Some(self.bg.ctx().load_texture("logo", image, egui::TextureOptions::LINEAR));
                None
            }
            Msg::Logo(Err(reason)) => {
                tracing::warn!(%reason, "the logo cannot be shown");
                None
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
                None
            }
        };
        if let Some(command) = command {
            self.run(command);
        }
    }

    /// Carries out what a screen asked for.
    fn run(&mut self, command: Command) {
        match command {
            Command::CheckAgain => {
                if !self.probing {
                    self.probe();
                }
            }
            Command::LoggedIn { user, grant } => {
                self.reachable();
                self.bg.session.signed_in(&self.bg.api, &grant.token.id);
                self.remember(user.clone(), Some(grant.token.id.clone()));
                let boot_wait = Duration::from_secs(self.settings.boot_wait_secs);
                self.screen = Screen::Desktops(Box::new(DesktopsView::open(&self.bg, user, grant, boot_wait)));
            }
            Command::Remember { user, token } => {
                self.bg.session.signed_in(&self.bg.api, &token);
                self.remember(user, Some(token));
            }
            Command::LogOut(notice) => self.log_out(notice),
            Command::Reached => self.reachable(),
            Command::Unreachable(reason) => self.unreachable(reason, false),
            Command::ServerTrouble(trouble) => self.server_trouble = Some(trouble),
            Command::Trust(fingerprint) => {
                tracing::info!(%fingerprint, "the server's certificate is trusted from now on");
                self.bg.api.pin().trust(fingerprint);
                self.settings.server_fingerprint = Some(fingerprint);
                self.save_settings();
                self.screen = Screen::Starting;
                self.probe();
            }
        }
    }

    /// The server's certificate is not the pinned one (or none is pinned yet). Nothing
    /// was sent; nothing is retried by itself. A session in progress is ended here,
    /// without sending its token anywhere: its viewers close, and the token lapses.
    fn untrusted(&mut self, untrusted: Untrusted) {
        self.probing = false;
        self.next_probe = None;
        self.unreachable = None;
        self.server_trouble = None;
        self.bg.session.hand_over().close_viewers();
        self.remembered_token = None;
        self.screen = match untrusted {
            Untrusted::FirstContact { presented } => Screen::FirstContact(presented),
            Untrusted::Changed { pinned, presented } => {
                tracing::error!(%pinned, %presented, "the server's certificate is not the pinned one: stopped");
                Screen::CertificateChanged { pinned, presented }
            }
        };
    }

    fn on_terminal(&mut self, result: Result<Terminal, ApiError>) {
        match result {
            Ok(terminal) => {
                self.reachable();
                let state = terminal.state;
                self.terminal = Some(terminal.clone());
                match (state, &self.screen) {
                    (TerminalState::Approved, Screen::Login(_) | Screen::Desktops(_)) => {}
                    (TerminalState::Approved, _) => self.show_login(None),
                    (TerminalState::Waiting, _) => {
                        self.screen = Screen::Waiting;
                        self.poll_waiting(terminal);
                    }
                    (TerminalState::Rejected, _) => self.screen = Screen::Rejected,
                }
            }
            Err(ApiError::TerminalNotFound) => {
                self.reachable();
                self.terminal = None;
                if !matches!(self.screen, Screen::Register(_)) {
                    self.screen = Screen::Register(RegisterForm::open(&self.bg));
                }
            }
            Err(ApiError::Unreachable(reason)) => self.unreachable(reason, true),
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
            Screen::Desktops(view) => view.user().to_owned(),
            Screen::Login(form) => form.user().to_owned(),
            _ => self.remembered_user.clone().unwrap_or_default(),
        };
        self.screen = Screen::Login(LoginForm::new(user, error));
        self.try_remembered_token();
    }

    /// A token kept from the last run (where allowed) logs in without a password.
    fn try_remembered_token(&mut self) {
        let Screen::Login(form) = &mut self.screen else { return };
        let Some(token) = self.remembered_token.take() else { return };
        let user = self.remembered_user.clone().unwrap_or_default();
        form.resume(&self.bg, user, token);
    }

    /// Hands the terminal over: every viewer this session opened is closed and its
    /// token revoked (the server then gives the user's running desktops new tickets),
    /// and the login screen comes back.
    fn log_out(&mut self, notice: Option<Said>) {
        let hand_over = self.bg.session.hand_over();
        hand_over.close_viewers();
        if let Some((api, token)) = hand_over.token {
            self.bg.runtime.spawn(async move {
                match api.log_out(&token).await {
                    Ok(()) => tracing::info!("logged out"),
                    // Expired or revoked already: nothing left to revoke.
                    Err(ApiError::Unauthorized) => {}
                    Err(error) => tracing::warn!(%error, "logging out failed"),
                }
            });
        }
        if let Screen::Desktops(view) = &self.screen {
            self.remember(view.user().to_owned(), None);
        }
        self.remembered_token = None;
        self.show_login(notice);
        if self.kiosk()
            && let Screen::Login(form) = &mut self.screen
        {
            form.forget_user();
        }
    }

    // ----- timers ----------------------------------------------------------------

    /// Runs what is due and returns when something is next due.
    fn tick(&mut self) -> Option<Instant> {
        let now = Instant::now();
        // The waiting terminal's poll ends with its screen.
        if !matches!(self.screen, Screen::Waiting) {
            self.waiting_poll = None;
        }
        if let Some(at) = self.next_probe
            && at <= now
            && !self.probing
        {
            self.probe();
        }
        let mut next = self.next_probe;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        // The countdown is drawn again when its number changes, not before.
        if let Some(unreachable) = &self.unreachable
            && let Some(secs) = countdown(unreachable.retry_at, now)
        {
            soonest(unreachable.retry_at - Duration::from_secs(secs - 1));
        }
        let idle = Duration::from_secs(self.settings.idle_logout_secs.max(1));
        let kiosk = self.kiosk();
        let mut idle_out = false;
        match &mut self.screen {
            Screen::Login(form) => {
                if let Some(at) = form.tick(now) {
                    soonest(at);
                }
            }
            Screen::Desktops(view) => {
                let troubled = self.unreachable.is_some() || self.server_trouble.is_some();
                soonest(view.tick(now, &self.bg, troubled));
                if kiosk && let Some(deadline) = view.idle_deadline(idle) {
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

    /// The title, and the controls at the right end in the order Tab takes them: who is
    /// signed in, Change password, Log out, Settings, the language.
    fn top_bar(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top").show(ui, |ui| {
            ui.horizontal(|ui| {
                // The login screen says the school's name large itself.
                let title = if matches!(self.screen, Screen::Login(_)) { String::new() } else { self.title() };
                ui.label(RichText::new(title).heading().color(crate::look::ACCENT).strong());
                right_aligned(ui, |ui| {
                    if let Screen::Desktops(view) = &mut self.screen {
                        ui.label(fill(T::SignedInAs.get(self.lang), &[view.user()]));
                        if ui.button(T::ChangePassword.get(self.lang)).clicked() {
                            view.ask_new_password();
                        }
                        if ui.button(T::LogOut.get(self.lang)).clicked() {
                            self.log_out(None);
                        }
                        ui.separator();
                    }
                    if !self.kiosk() && ui.button(self.t(T::Settings)).clicked() {
                        self.settings_window.open();
                    }
                    let other = self.lang.other();
                    if ui.button(other.native_name()).on_hover_text(self.t(T::Language)).clicked() {
                        self.lang = other;
                        self.settings.language = Some(other);
                        self.save_settings();
                    }
                });
            });
        });
    }

    /// The line that says whether the server can be reached. **Always there and always
    /// one line high**, so that what it says (or stops saying) never moves the page, and
    /// no button slides under the pointer.
    fn status_line(&mut self, ui: &mut egui::Ui) {
        let height = ui.spacing().interact_size.y + 2.0 * ui.spacing().item_spacing.y;
        egui::Panel::top("status").exact_size(height).show_separator_line(false).show(ui, |ui| {
            ui.horizontal_centered(|ui| {
                if let Some(unreachable) = &self.unreachable {
                    let server = self.bg.api.server();
                    // While the lookup is under way (a hung server keeps it for the
                    // request's whole timeout) there is no countdown: it says it is trying.
                    let reason = crate::screens::unreachable_reason(&unreachable.reason).show(self.lang);
                    let text = match countdown(unreachable.retry_at, Instant::now()) {
                        Some(secs) if !self.probing => {
                            fill(self.t(T::Unreachable), &[server, &reason, &secs.to_string()])
                        }
                        _ => fill(self.t(T::UnreachableTrying), &[server, &reason]),
                    };
                    if ui.add_enabled(!self.probing, egui::Button::new(self.t(T::Retry))).clicked() {
                        self.probe();
                    }
                    match self.probe_since {
                        Some(since) if self.probing => busy_sign(ui, since),
                        _ => {
                            ui.add_space(ui.spacing().interact_size.y);
                        }
                    }
                    let color = ui.visuals().error_fg_color;
                    ui.add(egui::Label::new(RichText::new(&text).color(color)).truncate()).on_hover_text(text);
                } else if let Some(trouble) = &self.server_trouble {
                    let text = trouble.show(self.lang);
                    let color = ui.visuals().warn_fg_color;
                    ui.add(egui::Label::new(RichText::new(&text).color(color)).truncate()).on_hover_text(text);
                }
            });
        });
    }

    fn bottom_bar(&self, ui: &mut egui::Ui) {
        egui::Panel::bottom("bottom").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                let small = |text: String| RichText::new(text).small().weak();
                ui.label(small(format!("{}: {}", self.t(T::ServerLabel), self.bg.api.server())));
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
        let title = self.title();
        let bg = &self.bg;
        let command = match &mut self.screen {
            Screen::Starting => {
                terminal_state::starting_ui(ui, lang, self.probe_since.filter(|_| self.unreachable.is_none()));
                None
            }
            Screen::Register(form) => {
                form.ui(ui, lang, bg, &self.mac);
                None
            }
            Screen::Waiting => terminal_state::waiting_ui(ui, lang, &seat),
            Screen::Rejected => terminal_state::rejected_ui(ui, lang, &seat),
            Screen::Login(form) => {
                form.ui(ui, lang, bg, &seat, (title, self.logo.as_ref()), self.demo_hint.as_ref());
                None
            }
            Screen::Desktops(view) => {
                view.ui(ui, lang, bg, self.settings.kiosk);
                None
            }
            Screen::FirstContact(presented) => trust::first_contact_ui(ui, lang, bg.api.server(), presented),
            Screen::CertificateChanged { pinned, presented } => {
                trust::changed_ui(ui, lang, bg.api.server(), pinned, presented)
            }
        };
        if let Some(command) = command {
            self.run(command);
        }
    }
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
        let zoom_at_start = ctx.zoom_factor();
        // Readable at two metres on any screen: the zoom follows the monitor's height.
        // A window (not a kiosk) grows with it, up to nine tenths of the monitor.
        if !self.scaled
            && let Some(monitor) = ctx.input(|i| i.viewport().monitor_size)
        {
            self.scaled = true;
            let native = ctx.native_pixels_per_point().unwrap_or(1.0);
            let before = ctx.zoom_factor();
            let zoom = crate::look::zoom_for(monitor * before, native);
            if (zoom - before).abs() > 0.01 {
                tracing::info!(zoom, native, ?monitor, "zoom from the monitor's size");
                ctx.set_zoom_factor(zoom);
                if !self.kiosk()
                    && let Some(inner) = ctx.input(|i| i.viewport().inner_rect)
                {
                    // The same points at the new zoom are a window `zoom / before` larger.
                    let most = monitor * before / zoom * 0.9;
                    ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(inner.size().min(most)));
                }
            }
        }
        // Fullscreen needs a window manager to honour it; kiosk terminals often run
        // none, so the window also covers the whole monitor itself.
        if self.kiosk()
            && !self.kiosk_sized
            && let Some(size) = ctx.input(|i| i.viewport().monitor_size)
        {
            self.kiosk_sized = true;
            // The monitor in the points of the zoom the command is carried out at.
            let size = size * zoom_at_start / ctx.zoom_factor();
            ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::pos2(0.0, 0.0)));
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size));
        }
        // Back to the window (from a viewer, say): what the list shows may be old.
        let focused = ctx.input(|i| i.focused);
        if focused
            && !std::mem::replace(&mut self.window_focused, focused)
            && let Some(view) = self.desktops_view()
        {
            view.refresh_soon();
        }
        self.window_focused = focused;
        while let Ok(msg) = self.rx.try_recv() {
            self.handle(msg);
        }
        let next = self.tick();
        self.top_bar(ui);
        self.status_line(ui);
        self.bottom_bar(ui);
        egui::CentralPanel::default().show(ui, |ui| self.draw_screen(ui));
        if !self.kiosk() && self.settings_window.show(&ctx, self.lang, &mut self.settings.viewers, &self.bg) {
            self.save_settings();
        }
        if let Some(next) = next {
            ctx.request_repaint_after(next.saturating_duration_since(Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::countdown;
    use std::time::{Duration, Instant};

    #[test]
    fn the_countdown_rounds_up_and_ends_at_the_deadline() {
        let now = Instant::now();
        let at = now + Duration::from_millis(2100);
        assert_eq!(countdown(at, now), Some(3));
        assert_eq!(countdown(at, now + Duration::from_millis(100)), Some(2));
        assert_eq!(countdown(at, now + Duration::from_millis(1099)), Some(2));
        assert_eq!(countdown(at, now + Duration::from_millis(1100)), Some(1));
        assert_eq!(countdown(at, now + Duration::from_millis(2099)), Some(1));
        assert_eq!(countdown(at, at), None);
        assert_eq!(countdown(at, at + Duration::from_secs(5)), None);
    }
}
