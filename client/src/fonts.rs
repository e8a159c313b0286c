//! Chinese needs a CJK font, which egui does not ship. The first of the usual system
//! fonts that exists is added as a fallback behind egui's own fonts; `THINDESK_FONT`
//! names another file, and `assets/fonts/` (beside the binary's `share/thindesk`) is
//! looked at last.

use egui::epaint::text::{FontData, FontInsert, FontPriority, InsertFontFamily};
use std::path::PathBuf;

/// Known CJK fonts on Debian and friends, with the face index for Simplified Chinese.
const SYSTEM_FONTS: &[(&str, u32)] = &[
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
];

/// Every place to look, in order.
pub fn candidates() -> Vec<(PathBuf, u32)> {
    let mut paths = Vec::new();
    if let Some(path) = std::env::var_os("THINDESK_FONT") {
        paths.push((PathBuf::from(path), 0));
    }
    paths.extend(SYSTEM_FONTS.iter().map(|(path, index)| (PathBuf::from(path), *index)));
    let mut shipped = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin) = exe.parent()
    {
        shipped.push(bin.join("../share/thindesk/fonts"));
    }
    shipped.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/fonts")));
    for dir in shipped {
        for name in ["wqy-microhei.ttc", "DroidSansFallbackFull.ttf"] {
            paths.push((dir.join(name), 0));
        }
    }
    paths
}

/// Adds the first CJK font found. Returns its path, or `None` when there is none (the
/// Chinese texts then show as boxes, and the log says why).
pub fn install_cjk(ctx: &egui::Context) -> Option<PathBuf> {
    for (path, index) in candidates() {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let mut data = FontData::from_owned(bytes);
        data.index = index;
        ctx.add_font(FontInsert {
            name: "cjk".into(),
            data,
            families: vec![
                InsertFontFamily { family: egui::FontFamily::Proportional, priority: FontPriority::Lowest },
                InsertFontFamily { family: egui::FontFamily::Monospace, priority: FontPriority::Lowest },
            ],
        });
        tracing::debug!(font = %path.display(), "CJK font loaded");
        return Some(path);
    }
    tracing::warn!("no CJK font found: Chinese text cannot be drawn (install fonts-wqy-microhei or fonts-noto-cjk)");
    None
}
