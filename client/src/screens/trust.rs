//! The screens about the server's certificate: first contact, where the person at the
//! terminal compares the fingerprint with the console's before anything is sent; and
//! a changed certificate, which stops the client until an administrator looks.

use super::Command;
use crate::i18n::{Lang, T, fill};
use crate::pinning::Fingerprint;
use crate::widgets::card;
use egui::RichText;

/// `AB:CD:…` in two lines of sixteen bytes, large and in a fixed-width face: read
/// aloud or compared by eye against the console.
fn fingerprint(ui: &mut egui::Ui, label: T, lang: Lang, value: &Fingerprint) {
    ui.label(label.get(lang));
    let text = value.to_string();
    let (first, second) = text.split_at(text.len() / 2 + 1);
    let line = |text: &str| RichText::new(text.trim_matches(':')).monospace().size(17.0).strong();
    ui.label(line(first));
    ui.label(line(second));
}

/// Nothing is pinned yet. Trusting pins the certificate for good (saved in the
/// settings file); checking again asks the server anew.
pub fn first_contact_ui(ui: &mut egui::Ui, lang: Lang, server: &str, presented: &Fingerprint) -> Option<Command> {
    let mut command = None;
    card(ui, |ui| {
        ui.heading(T::TrustTitle.get(lang));
        ui.label(fill(T::TrustBody.get(lang), &[server]));
        ui.add_space(8.0);
        fingerprint(ui, T::FingerprintLabel, lang, presented);
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button(T::TrustButton.get(lang)).clicked() {
                command = Some(Command::Trust(*presented));
            }
            if ui.button(T::CheckAgain.get(lang)).clicked() {
                command = Some(Command::CheckAgain);
            }
        });
    });
    command
}

/// Something other than the pinned server answered. Never retried by itself; the
/// administrator changes the pin in the settings file if the certificate was replaced.
pub fn changed_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    server: &str,
    pinned: &Fingerprint,
    presented: &Fingerprint,
) -> Option<Command> {
    let mut command = None;
    card(ui, |ui| {
        ui.heading(RichText::new(T::ChangedTitle.get(lang)).color(ui.visuals().error_fg_color));
        ui.label(fill(T::ChangedBody.get(lang), &[server]));
        ui.add_space(8.0);
        fingerprint(ui, T::PinnedLabel, lang, pinned);
        fingerprint(ui, T::PresentedLabel, lang, presented);
        ui.add_space(8.0);
        ui.label(T::ChangedAdmin.get(lang));
        if ui.button(T::CheckAgain.get(lang)).clicked() {
            command = Some(Command::CheckAgain);
        }
    });
    command
}
