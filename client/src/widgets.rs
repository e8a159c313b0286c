//! Small widgets every screen uses, so forms look and read alike.

use crate::i18n::{Lang, Said};
use egui::{Align, Layout};

/// A centred column for forms.
pub fn card(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) {
    ui.vertical_centered(|ui| {
        ui.add_space(24.0);
        egui::Frame::group(ui.style()).inner_margin(20.0).show(ui, |ui| {
            ui.set_width(ui.available_width().min(480.0));
            ui.with_layout(Layout::top_down(Align::Min), add);
        });
    });
}

/// A labelled single-line text field; the label names it for screen readers and tests,
/// and gives it its id, so that it keeps the keyboard when the form above it changes
/// (the places of the registration form arriving).
pub fn field(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    password: bool,
    errors: Option<&Vec<String>>,
) -> egui::Response {
    let id = ui.label(label).id;
    let response = ui
        .add(egui::TextEdit::singleline(value).id_salt(label).password(password).desired_width(f32::INFINITY))
        .labelled_by(id);
    for error in errors.into_iter().flatten() {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    response
}

/// Asks for the keyboard for `response` until it has it once (a request made before
/// the window can take the keyboard, or while the form is still changing, is lost).
pub fn focus_until_focused(response: &egui::Response, pending: &mut bool) {
    if *pending {
        if response.has_focus() {
            *pending = false;
        } else {
            response.request_focus();
        }
    }
}

pub fn error_line(ui: &mut egui::Ui, lang: Lang, error: &Option<Said>) {
    if let Some(error) = error {
        ui.colored_label(ui.visuals().error_fg_color, error.show(lang));
    }
}
