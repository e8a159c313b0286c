//! Small widgets every screen uses, so forms look and read alike.

use crate::i18n::{Lang, Said};
use egui::{Align, Layout};
use std::time::{Duration, Instant};

/// How long a wait goes without a busy sign: shorter ones would only flicker.
pub const BUSY_SIGN_AFTER: Duration = Duration::from_millis(300);

/// A centred white card for forms, a little above the middle of the page.
pub fn card(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) {
    ui.vertical_centered(|ui| {
        ui.add_space((ui.available_height() * 0.08).max(12.0));
        egui::Frame::new()
            .fill(crate::look::CARD)
            .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
            .corner_radius(12)
            .inner_margin(32.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width().min(520.0));
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
///
/// Only while the window has the keyboard: egui takes the focus away from a window
/// that has none, and asking again every frame would draw frames for nothing.
pub fn focus_until_focused(response: &egui::Response, pending: &mut bool) {
    if *pending && response.ctx.input(|i| i.focused) {
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

/// Widgets at the right end of a horizontal row, added (so drawn and tabbed through)
/// left to right: egui's right-to-left layout would make Tab go from right to left.
/// The group's width is measured as it is drawn; a frame whose width changed (another
/// language, another screen) is drawn again before it is shown.
pub fn right_aligned<R>(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    let id = ui.scope_id().with("right-aligned-width");
    let width: f32 = ui.data(|d| d.get_temp(id)).unwrap_or(0.0);
    ui.add_space((ui.available_width() - width).max(0.0));
    let inner = ui.horizontal(add);
    let used = inner.response.rect.width();
    if (used - width).abs() > 0.5 {
        ui.data_mut(|d| d.insert_temp(id, used));
        ui.ctx().request_discard("the right-aligned group changed width");
    }
    inner.inner
}

/// The busy sign of a wait that began at `since`: nothing for its first
/// [`BUSY_SIGN_AFTER`] (a repaint is asked for then), a spinner after. The space is
/// kept either way, so nothing beside it moves when it appears.
pub fn busy_sign(ui: &mut egui::Ui, since: Instant) {
    busy_line(ui, since, None);
}

/// [`busy_sign`] with the words of what is being waited for beside it, shown with it.
pub fn busy_line(ui: &mut egui::Ui, since: Instant, text: Option<&str>) {
    let waited = since.elapsed();
    let size = ui.spacing().interact_size.y;
    if waited >= BUSY_SIGN_AFTER {
        ui.add(egui::Spinner::new().size(size));
        if let Some(text) = text {
            ui.label(text);
        }
    } else {
        ui.allocate_space(egui::vec2(size, size));
        ui.ctx().request_repaint_after(BUSY_SIGN_AFTER - waited);
    }
}
