//! The login form of an approved terminal, with the server's throttle counted down.

use super::{Command, describe};
use crate::api::ApiError;
use crate::bg::{Bg, Msg};
use crate::i18n::{Lang, Said, T, fill};
use crate::widgets::{busy_line, card, error_line, field, focus_until_focused};
use egui::RichText;
use std::time::{Duration, Instant};
use thindesk_shared::TokenGrant;

/// The demo's logins, for its login screen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DemoHint {
    pub student: DemoLogin,
    pub admin: DemoLogin,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DemoLogin {
    pub user: String,
    /// `None` once changed in this client: only its user knows it then.
    pub password: Option<String>,
}

impl DemoHint {
    pub fn show(&self, lang: Lang) -> String {
        let password =
            |login: &DemoLogin| login.password.clone().unwrap_or_else(|| T::PasswordYouChose.get(lang).into());
        fill(
            T::DemoHint.get(lang),
            &[&self.student.user, &password(&self.student), &self.admin.user, &password(&self.admin)],
        )
    }
}

#[derive(Default)]
pub struct LoginForm {
    user: String,
    password: String,
    /// When the login under way began.
    busy: Option<Instant>,
    error: Option<Said>,
    throttled_until: Option<Instant>,
    /// Put the keyboard on the first field to fill in the next frame.
    want_focus: bool,
}

impl LoginForm {
    /// The form with `user` filled in, saying `error` if there is one.
    pub fn new(user: String, error: Option<Said>) -> Self {
        Self { user, error, want_focus: true, ..Self::default() }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Offers the remembered user name, unless the user already typed one.
    pub fn offer_user(&mut self, user: &str) {
        if self.user.is_empty() {
            self.user = user.to_owned();
        }
    }

    /// A kiosk forgets who sat here.
    pub fn forget_user(&mut self) {
        self.user.clear();
    }

    /// `seat` is the terminal's place and seat number; `demo_hint` the demo's logins.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        lang: Lang,
        bg: &Bg,
        seat: &(String, String),
        (school, logo): (String, Option<&egui::TextureHandle>),
        demo_hint: Option<&DemoHint>,
    ) {
        let mut submit = false;
        card(ui, |ui| {
            // The school first, large and calm; then what to do.
            ui.vertical_centered(|ui| {
                if let Some(logo) = logo {
                    ui.add(egui::Image::new(logo).max_height(96.0).max_width(320.0));
                }
                ui.label(RichText::new(school).size(34.0).strong().color(crate::look::ACCENT));
                ui.label(RichText::new(fill(T::SeatInfo.get(lang), &[&seat.0, &seat.1])).color(crate::look::QUIET));
            });
            ui.add_space(8.0);
            ui.heading(T::LoginTitle.get(lang));
            let user = field(ui, T::UserName.get(lang), &mut self.user, false, None);
            let password = field(ui, T::Password.get(lang), &mut self.password, true, None);
            let first_empty = if self.user.trim().is_empty() { &user } else { &password };
            focus_until_focused(first_empty, &mut self.want_focus);
            let pressed_enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
            // Enter in the name field goes on to the password, or logs in when it is filled.
            if pressed_enter && user.lost_focus() && self.password.is_empty() {
                password.request_focus();
            }
            let enter = pressed_enter && (password.lost_focus() || user.lost_focus());
            let wait = self.throttled_until.map(|until| until.saturating_duration_since(Instant::now()));
            ui.add_space(4.0);
            let ready =
                self.busy.is_none() && wait.is_none() && !self.user.trim().is_empty() && !self.password.is_empty();
            let log_in = crate::look::primary(T::LogIn.get(lang), ui.available_width());
            if ui.add_enabled(ready, log_in).clicked() || (ready && enter) {
                submit = true;
            }
            // What happened, below the button and always two lines high: nothing above
            // it moves when it speaks.
            ui.allocate_ui(egui::vec2(ui.available_width(), 0.0), |ui| {
                ui.set_min_height(2.0 * ui.spacing().interact_size.y);
                if let Some(wait) = wait {
                    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    ui.colored_label(ui.visuals().error_fg_color, fill(T::Throttled.get(lang), &[&secs.to_string()]));
                }
                error_line(ui, lang, &self.error);
                if let Some(since) = self.busy {
                    ui.horizontal(|ui| busy_line(ui, since, Some(T::LoggingIn.get(lang))));
                }
            });
            if let Some(hint) = demo_hint {
                ui.separator();
                ui.label(RichText::new(hint.show(lang)).small().weak());
            }
        });
        if submit {
            self.submit(bg);
        }
    }

    fn submit(&mut self, bg: &Bg) {
        self.busy = Some(Instant::now());
        self.error = None;
        let (api, user, password) = (bg.api.clone(), self.user.trim().to_owned(), self.password.clone());
        self.password.clear();
        bg.spawn(async move {
            let result = api.token(&user, &password).await;
            Msg::LoggedIn { user, resumed: false, result }
        });
    }

    /// Logs `user` in with a token kept from the last run, without a password.
    pub fn resume(&mut self, bg: &Bg, user: String, token: String) {
        self.busy = Some(Instant::now());
        let api = bg.api.clone();
        bg.spawn(async move { Msg::LoggedIn { user, resumed: true, result: api.renew(&token).await } });
    }

    /// A kept token that no longer works is no news to the user: the form stays quiet.
    pub fn on_logged_in(
        &mut self,
        user: String,
        resumed: bool,
        result: Result<TokenGrant, ApiError>,
    ) -> Option<Command> {
        self.busy = None;
        match result {
            Ok(grant) => return Some(Command::LoggedIn { user, grant }),
            Err(_) if resumed => {}
            Err(ApiError::Unauthorized) => {
                self.password.clear();
                self.error = Some(T::WrongPassword.into());
                self.want_focus = true;
            }
            Err(ApiError::Throttled(secs)) => {
                self.throttled_until = Some(Instant::now() + Duration::from_secs(secs));
                self.error = None;
            }
            Err(ApiError::Unreachable(reason)) => {
                self.error = None;
                return Some(Command::Unreachable(reason));
            }
            Err(other) => self.error = Some(describe(&other)),
        }
        None
    }

    /// Ends the throttle once it is over; returns when the countdown next changes.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        let until = self.throttled_until?;
        if until <= now {
            self.throttled_until = None;
            None
        } else {
            Some(now + Duration::from_secs(1).min(until - now))
        }
    }
}
