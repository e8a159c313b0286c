//! The desktop list's modal dialogs: the power confirmations (Reboot, Shut down), the
//! connection-file warning and the password change.
//!
//! Every dialog: Escape (or a click beside it) closes it as Cancel does, Enter does
//! what its first button does, and the keyboard starts on that button (or on the first
//! field).

use super::{DesktopsView, Intent};
use crate::i18n::{Lang, Said, T, fill};
use crate::widgets::{busy_sign, error_line, field, focus_until_focused};
use egui::RichText;
use std::time::Instant;
use thindesk_shared::DesktopAction;

pub(super) struct PasswordDialog {
    current: String,
    new: String,
    repeat: String,
    /// When the change under way began.
    pub(super) busy: Option<Instant>,
    pub(super) error: Option<Said>,
    /// The keyboard is still to be put on the first field.
    want_focus: bool,
}

impl Default for PasswordDialog {
    fn default() -> Self {
        Self {
            current: String::new(),
            new: String::new(),
            repeat: String::new(),
            busy: None,
            error: None,
            want_focus: true,
        }
    }
}

/// Draws whichever dialogs are open; a choice made in one closes it.
pub(super) fn show(ctx: &egui::Context, lang: Lang, view: &mut DesktopsView) -> Option<Intent> {
    let mut intent = None;
    if let Some(confirm) = view.confirm.clone() {
        let mut close = false;
        let text = match confirm.action {
            DesktopAction::Reboot => T::ConfirmReboot,
            _ => T::ConfirmShutdown,
        };
        let modal = egui::Modal::new(egui::Id::unique("confirm-power")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading(confirm.label.get(lang));
            ui.label(fill(text.get(lang), &[&confirm.name]));
            ui.horizontal(|ui| {
                let yes = egui::Button::new(RichText::new(confirm.label.get(lang)).color(ui.visuals().error_fg_color));
                let yes = ui.add(yes);
                focus_until_focused(&yes, &mut view.dialog_wants_focus);
                if yes.clicked() {
                    intent = Some(Intent::Action(confirm.id.clone(), confirm.action, confirm.label));
                    close = true;
                }
                if ui.button(T::Cancel.get(lang)).clicked() {
                    close = true;
                }
            });
        });
        if close || modal.should_close() {
            view.confirm = None;
        }
    }
    if let Some(desktop) = view.save_file.clone() {
        let mut close = false;
        let modal = egui::Modal::new(egui::Id::unique("save-file")).show(ctx, |ui| {
            ui.set_max_width(460.0);
            ui.heading(T::SaveFile.get(lang));
            ui.colored_label(ui.visuals().warn_fg_color, T::SaveFileWarning.get(lang));
            ui.horizontal(|ui| {
                let save = ui.button(T::Save.get(lang));
                focus_until_focused(&save, &mut view.dialog_wants_focus);
                if save.clicked() {
                    intent = Some(Intent::SaveFile(desktop.clone()));
                    close = true;
                }
                if ui.button(T::Cancel.get(lang)).clicked() {
                    close = true;
                }
            });
        });
        if close || modal.should_close() {
            view.save_file = None;
        }
    }
    if let Some(dialog) = &mut view.password {
        let mut close = false;
        let modal = egui::Modal::new(egui::Id::unique("change-password")).show(ctx, |ui| {
            ui.set_width(360.0);
            ui.heading(T::ChangePassword.get(lang));
            let current = field(ui, T::CurrentPassword.get(lang), &mut dialog.current, true, None);
            focus_until_focused(&current, &mut dialog.want_focus);
            let new = field(ui, T::NewPassword.get(lang), &mut dialog.new, true, None);
            let repeat = field(ui, T::RepeatPassword.get(lang), &mut dialog.repeat, true, None);
            let enter = ui.input(|i| i.key_pressed(egui::Key::Enter))
                && (current.lost_focus() || new.lost_focus() || repeat.lost_focus());
            error_line(ui, lang, &dialog.error);
            ui.horizontal(|ui| {
                let ready = dialog.busy.is_none() && !dialog.current.is_empty() && !dialog.new.is_empty();
                let save = ui.add_enabled(ready, egui::Button::new(T::Save.get(lang))).clicked();
                if ready && (save || enter) {
                    if dialog.new == dialog.repeat {
                        dialog.busy = Some(Instant::now());
                        dialog.error = None;
                        intent =
                            Some(Intent::ChangePassword { current: dialog.current.clone(), new: dialog.new.clone() });
                    } else {
                        dialog.error = Some(T::PasswordsDiffer.into());
                        repeat.request_focus();
                    }
                }
                if ui.add_enabled(dialog.busy.is_none(), egui::Button::new(T::Cancel.get(lang))).clicked() {
                    close = true;
                }
                // Its space always kept, so nothing moves when it turns.
                if let Some(since) = dialog.busy {
                    busy_sign(ui, since);
                }
            });
        });
        if close || (modal.should_close() && dialog.busy.is_none()) {
            view.password = None;
        }
    }
    intent
}
