//! The screens that only say where this terminal stands: being looked up, waiting for
//! an administrator's approval, rejected. They hold no state of their own.

use super::Command;
use crate::i18n::{Lang, T, fill};
use crate::widgets::{busy_sign, card};
use std::time::Instant;

/// Shown until the server has said whether it knows this terminal; no spinner while
/// the server cannot be reached (the status line says so); the spinner shows once the
/// lookup has taken 300 ms.
pub fn starting_ui(ui: &mut egui::Ui, lang: Lang, reaching: Option<Instant>) {
    card(ui, |ui| {
        ui.horizontal(|ui| {
            if let Some(since) = reaching {
                busy_sign(ui, since);
            }
            ui.label(T::Starting.get(lang));
        });
    });
}

/// `seat` is the place and seat number the terminal registered with.
pub fn waiting_ui(ui: &mut egui::Ui, lang: Lang, seat: &(String, String)) -> Option<Command> {
    let mut command = None;
    card(ui, |ui| {
        ui.heading(T::WaitingTitle.get(lang));
        ui.label(fill(T::WaitingBody.get(lang), &[&seat.0, &seat.1]));
        if check_again(ui, lang) {
            command = Some(Command::CheckAgain);
        }
    });
    command
}

pub fn rejected_ui(ui: &mut egui::Ui, lang: Lang, seat: &(String, String)) -> Option<Command> {
    let mut command = None;
    card(ui, |ui| {
        ui.heading(T::RejectedTitle.get(lang));
        ui.colored_label(ui.visuals().error_fg_color, fill(T::RejectedBody.get(lang), &[&seat.0, &seat.1]));
        if check_again(ui, lang) {
            command = Some(Command::CheckAgain);
        }
    });
    command
}

/// The screen's one button; it has the keyboard whenever nothing else has, so Enter
/// presses it.
fn check_again(ui: &mut egui::Ui, lang: Lang) -> bool {
    let button = ui.button(T::CheckAgain.get(lang));
    // Only in a window that has the keyboard (egui takes it from one that has not).
    if ui.input(|i| i.focused) && ui.memory(|m| m.focused().is_none()) {
        button.request_focus();
    }
    button.clicked()
}
