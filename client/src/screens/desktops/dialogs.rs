//! The desktop list's modal dialogs: the shutdown confirmation, the connection-file
//! warning and the password change.

use super::{DesktopsView, Intent};
use crate::i18n::{Lang, Said, T, fill};
use crate::widgets::{error_line, field};
use egui::RichText;
use thindesk_shared::DesktopAction;

#[derive(Default)]
pub(super) struct PasswordDialog {
    current: String,
    new: String,
    repeat: String,
    pub(super) busy: bool,
    pub(super) error: Option<Said>,
}

/// Draws whichever dialogs are open; a choice made in one closes it.
pub(super) fn show(ctx: &egui::Context, lang: Lang, view: &mut DesktopsView) -> Option<Intent> {
    let mut intent = None;
    if let Some((id, name)) = view.confirm_shutdown.clone() {
        let mut close = false;
        egui::Modal::new(egui::Id::unique("confirm-shutdown")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading(T::Shutdown.get(lang));
            ui.label(fill(T::ConfirmShutdown.get(lang), &[&name]));
            ui.horizontal(|ui| {
                let yes = egui::Button::new(RichText::new(T::Shutdown.get(lang)).color(ui.visuals().error_fg_color));
                if ui.add(yes).clicked() {
                    intent = Some(Intent::Action(id.clone(), DesktopAction::Shutdown, T::Shutdown));
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
                    intent = Some(Intent::SaveFile(desktop.clone()));
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
            field(ui, T::CurrentPassword.get(lang), &mut dialog.current, true, None);
            field(ui, T::NewPassword.get(lang), &mut dialog.new, true, None);
            field(ui, T::RepeatPassword.get(lang), &mut dialog.repeat, true, None);
            error_line(ui, lang, &dialog.error);
            ui.horizontal(|ui| {
                let ready = !dialog.busy && !dialog.current.is_empty() && !dialog.new.is_empty();
                if ui.add_enabled(ready, egui::Button::new(T::Save.get(lang))).clicked() {
                    if dialog.new == dialog.repeat {
                        dialog.busy = true;
                        dialog.error = None;
                        intent =
                            Some(Intent::ChangePassword { current: dialog.current.clone(), new: dialog.new.clone() });
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
    intent
}
