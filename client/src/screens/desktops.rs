//! The signed-in user's desktops: the list (refreshed every few seconds), power
//! actions, connecting in a viewer, saving a connection file, changing the password,
//! and the token renewed before it expires.

mod dialogs;

use super::{Command, describe};
use crate::api::ApiError;
use crate::bg::{Bg, Msg};
use crate::i18n::{Lang, Said, T, fill};
use crate::viewer::{self, ViewerError, ViewerPrograms};
use dialogs::PasswordDialog;
use egui::{Color32, RichText};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thindesk_shared::{Desktop, DesktopAction, DesktopList, DesktopStatus, TokenGrant};

/// A viewer that ends with an error this soon after it started never showed the
/// desktop: it could not connect.
const VIEWER_FAILS_WITHIN: Duration = Duration::from_secs(30);

/// How often the desktop list is refreshed while it is shown.
pub const DESKTOP_REFRESH: Duration = Duration::from_secs(5);

pub struct DesktopsView {
    user: String,
    token: String,
    desktops: Option<Vec<Desktop>>,
    /// Desktops with an action under way, and the button's text.
    busy: HashMap<String, T>,
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
    pub fn open(bg: &Bg, user: String, grant: TokenGrant) -> Self {
        let now = Instant::now();
        let mut view = Self {
            user,
            token: grant.token.id,
            desktops: None,
            busy: HashMap::new(),
            confirm: None,
            settling: Vec::new(),
            refresh_again: false,
            dialog_wants_focus: false,
            save_file: None,
            notice: None,
            password: None,
            session: None,
            refreshing: false,
            next_refresh: now,
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
        self.next_refresh = Instant::now() + DESKTOP_REFRESH;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::Desktops(api.desktops(&token).await) });
    }

    fn renew(&mut self, bg: &Bg) {
        self.renewing = true;
        let (api, token) = (bg.api.clone(), self.token.clone());
        bg.spawn(async move { Msg::Renewed(api.renew(&token).await) });
    }

    /// Refreshes the list and renews the token when due; returns when one of them is
    /// next due.
    pub fn tick(&mut self, now: Instant, bg: &Bg) -> Instant {
        // A password change under way ends the token: wait for the new one.
        if self.changing_password() {
            // Its answer wakes the UI; until then nothing is due.
            return now + DESKTOP_REFRESH;
        }
        if self.next_refresh <= now && !self.refreshing {
            self.refresh(bg);
        }
        if self.renew_at <= now && !self.renewing {
            self.renew(bg);
        }
        self.next_refresh.min(self.renew_at)
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
            ui.set_min_height(2.0 * line + ui.spacing().item_spacing.y);
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
            None => {
                ui.spinner();
            }
            Some(desktops) if desktops.is_empty() => {
                ui.label(T::NoDesktops.get(lang));
            }
            Some(desktops) => {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for desktop in desktops {
                        let busy = self.busy.get(&desktop.id);
                        if let Some(i) = desktop_card(ui, lang, desktop, busy, self.session.is_some(), kiosk) {
                            intent = Some(i);
                        }
                    }
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
            Intent::Refresh => self.next_refresh = Instant::now(),
            Intent::Action(id, action, label) => {
                self.busy.insert(id.clone(), label);
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
                self.busy.insert(desktop.id.clone(), T::Connect);
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
                            tracing::info!(?exit, "viewer closed");
                            // An error soon after the start: it never showed the desktop.
                            let failed = !exit.status.is_ok_and(|status| status.success())
                                && started.elapsed() < VIEWER_FAILS_WITHIN;
                            let certificate_changed = exit.certificate_changed;
                            bg.report(Msg::ViewerExited { name, failed, certificate_changed });
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
        let list = match result {
            Ok(list) => list.desktop_list,
            Err(ApiError::Unauthorized) => return Some(Command::LogOut(Some(T::SessionExpired.into()))),
            Err(ApiError::Unreachable(reason)) => {
                self.notice = Some((describe(&ApiError::Unreachable(reason.clone())), true));
                return Some(Command::Unreachable(reason));
            }
            Err(other) => {
                self.notice = Some((describe(&other), true));
                return None;
            }
        };
        let fresh = list.iter().find(|desktop| desktop.id == id).cloned();
        self.desktops = Some(list);
        match fresh {
            Some(desktop) if desktop.status == DesktopStatus::Active => self.launch(desktop, bg, viewers, kiosk),
            Some(desktop) => self.notice = Some((Said::with(T::NotRunningNow, &[&desktop.name]), true)),
            None => self.notice = Some((T::NoDesktops.into(), true)),
        }
        Some(Command::Reached)
    }

    /// Asks for the list at the next frame (the window has the keyboard again).
    pub fn refresh_soon(&mut self) {
        self.next_refresh = Instant::now();
    }

    /// The viewer ended at once with an error: it could not connect.
    pub fn on_viewer_failed(&mut self, name: &str) {
        self.session = None;
        self.notice = Some((Said::with(T::ViewerCouldNotConnect, &[name]), true));
        self.next_refresh = Instant::now();
    }

    /// The viewer refused the desktop: its RDP certificate is not the one recorded.
    pub fn on_viewer_certificate_changed(&mut self, name: &str) {
        self.session = None;
        self.notice = Some((Said::with(T::DesktopCertificateChanged, &[name]), true));
        self.next_refresh = Instant::now();
    }

    pub fn on_desktops(&mut self, result: Result<DesktopList, ApiError>) -> Option<Command> {
        self.refreshing = false;
        if std::mem::take(&mut self.refresh_again) {
            self.next_refresh = Instant::now();
        } else if result.is_ok() {
            for id in self.settling.drain(..) {
                self.busy.remove(&id);
            }
        }
        match result {
            Ok(list) => {
                self.desktops = Some(list.desktop_list);
                Some(Command::Reached)
            }
            // The token a password change just ended; the new one comes with its answer.
            Err(ApiError::Unauthorized) if self.changing_password() => None,
            Err(ApiError::Unauthorized) => Some(Command::LogOut(Some(T::SessionExpired.into()))),
            Err(ApiError::Unreachable(reason)) => Some(Command::Unreachable(reason)),
            Err(other) => Some(Command::ServerTrouble(describe(&other))),
        }
    }

    fn changing_password(&self) -> bool {
        self.password.as_ref().is_some_and(|dialog| dialog.busy)
    }

    pub fn on_renewed(&mut self, result: Result<TokenGrant, ApiError>) -> Option<Command> {
        self.renewing = false;
        match result {
            Ok(grant) => {
                self.token = grant.token.id.clone();
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
        self.next_refresh = Instant::now();
        None
    }

    pub fn on_password_changed(&mut self, result: Result<TokenGrant, ApiError>) -> Option<Command> {
        let dialog = self.password.as_mut()?;
        dialog.busy = false;
        match result {
            Ok(grant) => {
                self.password = None;
                self.notice = Some((T::PasswordChanged.into(), false));
                self.token = grant.token.id.clone();
                self.renew_at = Instant::now() + renew_after(grant.expires_in);
                self.next_refresh = Instant::now();
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
        self.next_refresh = Instant::now();
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

/// The widest of the card's buttons, so that none moves when another's text changes.
const BUTTON_WIDTH: f32 = 120.0;

/// One desktop. **Its buttons never move**: every button is always there, in the same
/// place, enabled or not, and the progress line below them keeps its height; so a
/// second click lands where the first did, on a button that is disabled while the
/// first click's action runs and until the list shows its outcome.
fn desktop_card(
    ui: &mut egui::Ui,
    lang: Lang,
    desktop: &Desktop,
    busy: Option<&T>,
    in_session: bool,
    kiosk: bool,
) -> Option<Intent> {
    let mut intent = None;
    egui::Frame::group(ui.style()).inner_margin(12.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(&desktop.name).heading());
            let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter().circle_filled(dot.center(), 5.0, status_color(desktop.status));
            ui.label(status_label(lang, desktop.status));
        });
        let button = |text: RichText| egui::Button::new(text).min_size(egui::vec2(BUTTON_WIDTH, 0.0));
        ui.horizontal(|ui| {
            let idle = busy.is_none();
            let active = desktop.status == DesktopStatus::Active;
            let can_connect = active && viewer::pick_connection(desktop).is_some() && !in_session;
            let connect_text = RichText::new(T::Connect.get(lang));
            let connect_text = if idle && can_connect { connect_text.strong() } else { connect_text };
            if ui.add_enabled(idle && can_connect, button(connect_text)).clicked() {
                intent = Some(Intent::Connect(desktop.clone()));
            }
            ui.add_space(16.0);
            let (wake, can_wake) = match desktop.status {
                DesktopStatus::Suspended | DesktopStatus::Paused => (T::Resume, true),
                DesktopStatus::Shutoff | DesktopStatus::Error => (T::Start, true),
                _ => (T::Start, false),
            };
            if ui.add_enabled(idle && can_wake, button(wake.get(lang).into())).clicked() {
                intent = Some(Intent::Action(desktop.id.clone(), DesktopAction::Resume, wake));
            }
            if ui.add_enabled(idle && active, button(T::Reboot.get(lang).into())).clicked() {
                intent = Some(Intent::Ask(Confirm {
                    id: desktop.id.clone(),
                    name: desktop.name.clone(),
                    action: DesktopAction::Reboot,
                    label: T::Reboot,
                }));
            }
            let can_stop = desktop.status != DesktopStatus::Shutoff;
            if ui.add_enabled(idle && can_stop, button(T::Shutdown.get(lang).into())).clicked() {
                intent = Some(Intent::Ask(Confirm {
                    id: desktop.id.clone(),
                    name: desktop.name.clone(),
                    action: DesktopAction::Shutdown,
                    label: T::Shutdown,
                }));
            }
            if !kiosk && ui.add_enabled(can_connect, button(T::SaveFile.get(lang).into())).clicked() {
                intent = Some(Intent::AskSaveFile(desktop.clone()));
            }
        });
        // The progress line: always its height, filled while an action runs.
        ui.horizontal(|ui| {
            ui.set_min_height(ui.spacing().interact_size.y);
            if let Some(label) = busy {
                ui.spinner();
                ui.label(format!("{} {}", label.get(lang), T::Working.get(lang)));
            }
        });
    });
    intent
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
