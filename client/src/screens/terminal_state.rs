//! The screens that only say where this terminal stands: being looked up, waiting for
//! an administrator's approval, rejected. They hold no state of their own.

use super::Command;
use crate::i18n::{Lang, T, fill};
use crate::widgets::card;

/// Shown until the server has said whether it knows this terminal; no spinner while
/// the server cannot be reached (the top bar says so).
pub fn starting_ui(ui: &mut egui::Ui, lang: Lang, reaching: bool) {
    card(ui, |ui| {
        ui.horizontal(|ui| {
            if reaching {
                ui.spinner();
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
        if ui.button(T::CheckAgain.get(lang)).clicked() {
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
        if ui.button(T::CheckAgain.get(lang)).clicked() {
            command = Some(Command::CheckAgain);
        }
    });
    command
}
