//! The one font charts use, embedded so that rendering needs no system fonts or fontconfig.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name charts ask for; the embedded font is registered under it.
pub(super) const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process). `false` when the font data
/// cannot be parsed, which would be a broken build.
pub(super) fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use plotters::style::{FontDesc, IntoFont};

    #[test]
    fn the_embedded_font_registers_and_measures_text() {
        assert!(super::register());
        let font: FontDesc = (super::FAMILY, 20.0).into_font();
        let (w_short, _) = font.box_size("ab").unwrap();
        let (w_long, h) = font.box_size("abcdefgh").unwrap();
        assert!(w_long > 3 * w_short && h > 0, "{w_short} {w_long} {h}");
    }
}
