//! The student-facing look: a light, calm theme with one accent colour, and sizes
//! readable from two metres, scaled from the monitor (a 1366×768 terminal and a 4K
//! screen show the same layout, the 4K one 2.4 times as large).

use egui::{Color32, CornerRadius, FontId, Stroke, TextStyle, Vec2};

/// The one accent: primary buttons, focus, selection.
pub const ACCENT: Color32 = Color32::from_rgb(37, 99, 175);
/// Text on the accent.
pub const ON_ACCENT: Color32 = Color32::WHITE;
/// The page behind the cards and tiles.
pub const PAGE: Color32 = Color32::from_rgb(240, 243, 247);
/// Cards, tiles and dialogs.
pub const CARD: Color32 = Color32::WHITE;
/// Quiet text: hints, the seat, the OS and size of a desktop.
pub const QUIET: Color32 = Color32::from_rgb(96, 105, 118);

/// Physical pixels of screen height the layout is drawn for at zoom 1 (a 1366×768 or
/// 1280×800 terminal); a taller screen is zoomed in proportion.
const DESIGN_HEIGHT: f32 = 900.0;

/// The light theme and the text sizes, for every theme egui may pick.
pub fn install(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Light);
    ctx.style_mut_of(egui::Theme::Light, |style| {
        style.text_styles.insert(TextStyle::Body, FontId::proportional(18.0));
        style.text_styles.insert(TextStyle::Button, FontId::proportional(18.0));
        style.text_styles.insert(TextStyle::Heading, FontId::proportional(28.0));
        style.text_styles.insert(TextStyle::Small, FontId::proportional(14.0));
        style.text_styles.insert(TextStyle::Monospace, FontId::monospace(16.0));
        style.spacing.button_padding = egui::vec2(14.0, 8.0);
        style.spacing.item_spacing = egui::vec2(10.0, 10.0);
        style.spacing.interact_size.y = 36.0;
        let v = &mut style.visuals;
        v.panel_fill = PAGE;
        v.window_fill = CARD;
        // Text fields: a faint fill and a visible edge on the white cards.
        v.extreme_bg_color = Color32::from_rgb(250, 251, 253);
        v.widgets.inactive.bg_stroke = Stroke::new(1.0, Color32::from_rgb(184, 192, 204));
        v.faint_bg_color = Color32::from_rgb(232, 237, 243);
        v.window_corner_radius = CornerRadius::same(12);
        v.window_stroke = Stroke::new(1.0, Color32::from_rgb(214, 220, 228));
        v.selection.bg_fill = Color32::from_rgb(200, 218, 240);
        v.selection.stroke = Stroke::new(2.0, ACCENT);
        v.hyperlink_color = ACCENT;
        // A steady text cursor: a blinking one redraws the window twice a second for as
        // long as a field has the keyboard (the login screen, all day on a terminal).
        v.text_cursor.blink = false;
        v.error_fg_color = Color32::from_rgb(180, 40, 40);
        v.warn_fg_color = Color32::from_rgb(150, 95, 0);
        for widget in [&mut v.widgets.inactive, &mut v.widgets.hovered, &mut v.widgets.active] {
            widget.corner_radius = CornerRadius::same(8);
        }
        v.widgets.inactive.weak_bg_fill = Color32::from_rgb(228, 233, 240);
        v.widgets.inactive.bg_fill = Color32::from_rgb(228, 233, 240);
        v.widgets.hovered.weak_bg_fill = Color32::from_rgb(214, 224, 236);
        v.widgets.hovered.bg_stroke = Stroke::new(1.0, ACCENT);
        // Pressed, and the button that has the keyboard: the accent, lightly.
        v.widgets.active.weak_bg_fill = Color32::from_rgb(200, 218, 240);
        v.widgets.active.bg_fill = Color32::from_rgb(200, 218, 240);
        v.widgets.active.bg_stroke = Stroke::new(2.0, ACCENT);
        v.widgets.active.fg_stroke = Stroke::new(1.5, Color32::from_rgb(20, 40, 70));
        v.widgets.noninteractive.corner_radius = CornerRadius::same(8);
        v.widgets.noninteractive.bg_stroke = Stroke::new(1.0, Color32::from_rgb(220, 225, 232));
    });
}

/// The zoom that makes a monitor of `monitor` points (at `native` physical pixels a
/// point) show the layout as large, relative to its height, as a 900-pixel-high
/// screen does at zoom 1; never smaller than that, never more than 3 times.
pub fn zoom_for(monitor: Vec2, native: f32) -> f32 {
    let pixels = monitor.y * native;
    let wanted = (pixels / DESIGN_HEIGHT).clamp(1.0, 3.0);
    // The native scale (a desktop's own HiDPI setting) already does part of it.
    (wanted / native.max(0.25)).max(1.0 / native.max(0.25)).clamp(0.5, 3.0)
}

/// The primary button: filled with the accent, as wide as `width`, its text centred.
pub fn primary(text: &str, width: f32) -> egui::Button<'static> {
    let text = egui::RichText::new(text).color(ON_ACCENT).strong();
    // Centred: room that grows on either side of the text.
    egui::Button::new((egui::Atom::grow(), text, egui::Atom::grow()))
        .fill(ACCENT)
        .min_size(egui::vec2(width, 44.0))
        .corner_radius(8)
}

#[cfg(test)]
mod tests {
    use super::zoom_for;
    use egui::vec2;

    #[test]
    fn the_zoom_follows_the_monitor_height() {
        // A classroom terminal: as designed.
        assert_eq!(zoom_for(vec2(1366.0, 768.0), 1.0), 1.0);
        assert_eq!(zoom_for(vec2(1280.0, 800.0), 1.0), 1.0);
        // Full HD and 4K without a desktop scale: larger in proportion.
        assert!((zoom_for(vec2(1920.0, 1080.0), 1.0) - 1.2).abs() < 1e-3);
        assert!((zoom_for(vec2(3840.0, 2160.0), 1.0) - 2.4).abs() < 1e-3);
        // 4K with the desktop's own 2× scale: only what is still missing.
        assert!((zoom_for(vec2(1920.0, 1080.0), 2.0) - 1.2).abs() < 1e-3);
        // Never past 3×.
        assert_eq!(zoom_for(vec2(7680.0, 4320.0), 1.0), 3.0);
    }
}
