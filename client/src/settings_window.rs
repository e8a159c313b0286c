//! The settings window, over whichever screen is shown: the viewer programs, typed or
//! chosen in a file dialog. A kiosk has none.

use crate::bg::{Bg, Msg};
use crate::i18n::{Lang, T};
use crate::viewer::ViewerPrograms;

#[derive(Default)]
pub struct SettingsWindow {
    open: bool,
}

impl SettingsWindow {
    pub fn open(&mut self) {
        self.open = true;
    }

    /// Draws the window if it is open; returns whether the user saved (the window then
    /// closes, and the caller writes the settings).
    pub fn show(&mut self, ctx: &egui::Context, lang: Lang, viewers: &mut ViewerPrograms, bg: &Bg) -> bool {
        if !self.open {
            return false;
        }
        let mut open = true;
        let mut save = false;
        // Escape closes it as its ✕ does; Enter in a field saves.
        if ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.open = false;
            return false;
        }
        egui::Window::new(T::Settings.get(lang))
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(480.0)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                for (rdp, label) in [(false, T::SpiceViewer), (true, T::RdpViewer)] {
                    let id = ui.label(label.get(lang)).id;
                    let value = if rdp { &mut viewers.rdp } else { &mut viewers.spice };
                    ui.horizontal(|ui| {
                        let field = ui.add(egui::TextEdit::singleline(value).desired_width(340.0)).labelled_by(id);
                        save |= field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                        if ui.button(T::Choose.get(lang)).on_hover_text(label.get(lang)).clicked() {
                            choose_program(bg, rdp);
                        }
                    });
                }
                ui.separator();
                save |= ui.button(T::Save.get(lang)).clicked();
            });
        self.open = open && !save;
        save
    }
}

/// Asks for a viewer program in a file dialog; the answer comes as a message, since
/// the dialog blocks its thread until the user picks.
fn choose_program(bg: &Bg, rdp: bool) {
    bg.spawn_blocking(move || {
        let path = rfd::FileDialog::new().set_directory("/usr/bin").pick_file();
        Some(Msg::ProgramChosen { rdp, path })
    });
}
