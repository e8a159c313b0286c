//! Registration of an unknown terminal: a place from the server's list, a seat number,
//! and optionally an administrator's login to be approved at once.

use super::{describe, field_error};
use crate::api::{ApiError, FieldErrors};
use crate::bg::{Bg, Msg};
use crate::i18n::{Lang, Said, T};
use crate::widgets::{busy_line, busy_sign, card, error_line, field, focus_until_focused};
use egui::RichText;
use std::time::Instant;
use thindesk_shared::Place;

pub struct RegisterForm {
    /// `None` while loading.
    places: Option<Vec<Place>>,
    place: String,
    seat: String,
    as_admin: bool,
    admin_name: String,
    admin_password: String,
    /// When the registration under way began.
    busy: Option<Instant>,
    field_errors: FieldErrors,
    error: Option<Said>,
    /// The keyboard is still to be put on the seat field.
    want_focus: bool,
    /// When the places were asked for.
    opened: Instant,
}

impl RegisterForm {
    /// An empty form, asking the server for its places.
    pub fn open(bg: &Bg) -> Self {
        let api = bg.api.clone();
        bg.spawn(async move { Msg::Places(api.places().await) });
        Self {
            places: None,
            place: String::new(),
            seat: String::new(),
            as_admin: false,
            admin_name: String::new(),
            admin_password: String::new(),
            busy: None,
            field_errors: FieldErrors::new(),
            error: None,
            want_focus: true,
            opened: Instant::now(),
        }
    }

    /// `mac` is this terminal's, the one registered.
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, bg: &Bg, mac: &str) {
        let mut submit = false;
        card(ui, |ui| {
            ui.heading(T::RegisterTitle.get(lang));
            ui.label(T::RegisterIntro.get(lang));
            ui.separator();
            ui.label(RichText::new(T::Place.get(lang)).strong());
            match &self.places {
                None => busy_sign(ui, self.opened),
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
                            ui.radio_value(&mut self.place, place.name.clone(), text);
                        }
                    });
                }
            }
            let said = |field: &str| -> Vec<String> {
                self.field_errors.get(field).into_iter().flatten().map(|m| field_error(field, m).show(lang)).collect()
            };
            let (place_errors, seat_errors) = (said("place"), said("seat_number"));
            for error in &place_errors {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
            let seat_errors = (!seat_errors.is_empty()).then_some(&seat_errors);
            let seat = field(ui, T::SeatNumber.get(lang), &mut self.seat, false, seat_errors);
            focus_until_focused(&seat, &mut self.want_focus);
            let mut enter = seat.lost_focus();
            ui.checkbox(&mut self.as_admin, T::AsAdmin.get(lang));
            if self.as_admin {
                enter |= field(ui, T::AdminName.get(lang), &mut self.admin_name, false, None).lost_focus();
                enter |= field(ui, T::AdminPassword.get(lang), &mut self.admin_password, true, None).lost_focus();
            }
            let enter = enter && ui.input(|i| i.key_pressed(egui::Key::Enter));
            for (field, errors) in &self.field_errors {
                if field != "place" && field != "seat_number" {
                    for error in errors {
                        ui.colored_label(ui.visuals().error_fg_color, field_error(field, error).show(lang));
                    }
                }
            }
            error_line(ui, lang, &self.error);
            ui.horizontal(|ui| {
                let ready = self.busy.is_none() && self.places.is_some();
                let clicked = ui.add_enabled(ready, egui::Button::new(T::Register.get(lang))).clicked();
                if ready && (clicked || enter) {
                    submit = true;
                }
                if let Some(since) = self.busy {
                    busy_line(ui, since, Some(T::Registering.get(lang)));
                }
            });
        });
        if submit {
            self.submit(bg, mac);
        }
    }

    fn submit(&mut self, bg: &Bg, mac: &str) {
        self.busy = Some(Instant::now());
        self.error = None;
        self.field_errors.clear();
        let (api, mac) = (bg.api.clone(), mac.to_owned());
        let (place, seat) = (self.place.clone(), self.seat.trim().to_owned());
        let admin = self.as_admin.then(|| (self.admin_name.trim().to_owned(), self.admin_password.clone()));
        bg.spawn(async move {
            let admin = admin.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            Msg::Registered(api.register(&place, &seat, &mac, admin).await.map(|r| r.terminal_state))
        });
    }

    pub fn on_places(&mut self, result: Result<Vec<Place>, ApiError>) {
        match result {
            Ok(places) => {
                if self.place.is_empty()
                    && let Some(first) = places.first()
                {
                    self.place = first.name.clone();
                }
                self.places = Some(places);
            }
            Err(e) => {
                self.places = Some(Vec::new());
                self.error = Some(describe(&e));
            }
        }
    }

    /// The registration failed: the form is the user's again, saying why. An
    /// unreachable server is the top bar's to say, and the form keeps what it showed.
    pub fn on_failed(&mut self, error: &ApiError) {
        self.busy = None;
        if matches!(error, ApiError::Unreachable(_)) {
            return;
        }
        self.field_errors.clear();
        self.error = None;
        match error {
            ApiError::Invalid(errors) => self.field_errors = errors.clone(),
            ApiError::TerminalExisted => self.error = Some(T::TerminalExisted.into()),
            ApiError::SeatTaken => self.error = Some(T::SeatTaken.into()),
            ApiError::Unauthorized => self.error = Some(T::AdminRefused.into()),
            ApiError::Forbidden => self.error = Some(T::NotAdmin.into()),
            ApiError::Throttled(secs) => self.error = Some(Said::with(T::Throttled, &[&secs.to_string()])),
            other => self.error = Some(describe(other)),
        }
    }
}
