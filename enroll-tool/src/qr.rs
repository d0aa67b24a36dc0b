//! QR codes of the otpauth:// URI: drawn in the terminal with Unicode half
//! blocks (two module rows per text line, so modules come out square and the
//! code fits an 80-column terminal) or plain ASCII, and written as SVG or PNG.
//!
//! The code holds the TOTP secret, so everything rendered from it is kept in
//! zeroizing buffers. (The encoder's own working buffers are not wiped: they
//! live inside the `qrcode` crate.)

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::cli::{QrFileFormat, QrStyle};
use crate::error::CliError;

/// Columns the terminal drawing must fit in.
pub const TERMINAL_COLUMNS: usize = 80;
/// Spaces before each line of the terminal drawing.
const INDENT: usize = 2;
/// The quiet zone the QR specification asks for, in modules.
pub const QUIET_ZONE: usize = 4;
/// Pixels per module in PNG files.
const PNG_SCALE: usize = 8;

/// The modules of a QR code: `true` is dark.
pub struct QrMatrix {
    width: usize,
    dark: Zeroizing<Vec<bool>>,
}

impl QrMatrix {
    /// Encode `text` with error-correction level `level`.
    pub fn encode(text: &str, level: EcLevel) -> Result<QrMatrix, CliError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), level)
            .map_err(|err| CliError::System(format!("cannot make a QR code of the URI: {err}")))?;
        let dark = Zeroizing::new(
            code.to_colors()
                .into_iter()
                .map(|color| color == Color::Dark)
                .collect(),
        );
        Ok(QrMatrix {
            width: code.width(),
            dark,
        })
    }

    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Is the module at (x, y) dark? Coordinates include a quiet zone of
    /// `quiet` modules (light) around the code.
    fn dark_at(&self, x: usize, y: usize, quiet: usize) -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(quiet), y.checked_sub(quiet)) else {
            return false;
        };
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }
}

/// A drawing for the terminal.
pub struct TerminalQr {
    /// The lines, each ending in a newline.
    pub text: Zeroizing<String>,
    /// Its width in columns (indent included).
    pub columns: usize,
}

/// Draw `uri` for the terminal in `style`; `None` for [`QrStyle::None`].
///
/// The Unicode styles pick the densest encoding that fits
/// [`TERMINAL_COLUMNS`]: error correction M with the full quiet zone, then
/// L, then L with a 2-module quiet zone (enough for phone scanners, and the
/// terminal's background around it is of the quiet zone's colour in the
/// matching style).
pub fn draw_for_terminal(uri: &str, style: QrStyle) -> Result<Option<TerminalQr>, CliError> {
    let ascii = match style {
        QrStyle::None => return Ok(None),
        QrStyle::Dark | QrStyle::Light => false,
        QrStyle::AsciiDark | QrStyle::AsciiLight => true,
    };
    let columns_per_module = if ascii { 2 } else { 1 };
    let candidates = [
        (EcLevel::M, QUIET_ZONE),
        (EcLevel::L, QUIET_ZONE),
        (EcLevel::L, 2),
    ];
    let mut chosen = None;
    for (level, quiet) in candidates {
        let matrix = QrMatrix::encode(uri, level)?;
        let columns = INDENT + (matrix.width() + 2 * quiet) * columns_per_module;
        let fits = columns <= TERMINAL_COLUMNS;
        chosen = Some((matrix, quiet));
        if fits {
            break;
        }
    }
    let Some((matrix, quiet)) = chosen else {
        return Ok(None);
    };
    Ok(Some(render(&matrix, quiet, style)))
}

/// Draw `matrix` with a quiet zone of `quiet` modules in `style`.
pub fn render(matrix: &QrMatrix, quiet: usize, style: QrStyle) -> TerminalQr {
    let side = matrix.width() + 2 * quiet;
    // On a dark background the terminal's foreground is light: draw the
    // light modules. On a light background draw the dark ones.
    let drawn_is_dark = matches!(style, QrStyle::Light | QrStyle::AsciiLight);
    let drawn = |x: usize, y: usize| y < side && matrix.dark_at(x, y, quiet) == drawn_is_dark;
    let mut text = Zeroizing::new(String::with_capacity((side + INDENT + 1) * side * 3));
    let ascii = matches!(style, QrStyle::AsciiDark | QrStyle::AsciiLight);
    let columns = if ascii {
        for y in 0..side {
            text.push_str(&" ".repeat(INDENT));
            for x in 0..side {
                text.push_str(if drawn(x, y) { "##" } else { "  " });
            }
            text.push('\n');
        }
        INDENT + 2 * side
    } else {
        for y in (0..side).step_by(2) {
            text.push_str(&" ".repeat(INDENT));
            for x in 0..side {
                text.push(match (drawn(x, y), drawn(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            text.push('\n');
        }
        INDENT + side
    };
    TerminalQr { text, columns }
}

/// The file contents of the QR code of `uri` in `format`.
pub fn file_contents(uri: &str, format: QrFileFormat) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let matrix = QrMatrix::encode(uri, EcLevel::M)?;
    match format {
        QrFileFormat::Svg => Ok(svg(&matrix)),
        QrFileFormat::Png => png(&matrix),
    }
}

fn svg(matrix: &QrMatrix) -> Zeroizing<Vec<u8>> {
    let side = matrix.width() + 2 * QUIET_ZONE;
    let mut path = Zeroizing::new(String::with_capacity(side * side * 8));
    for y in 0..side {
        let mut x = 0;
        while x < side {
            if !matrix.dark_at(x, y, QUIET_ZONE) {
                x += 1;
                continue;
            }
            let start = x;
            while x < side && matrix.dark_at(x, y, QUIET_ZONE) {
                x += 1;
            }
            let _ = write!(path, "M{start} {y}h{}v1h-{}z", x - start, x - start);
        }
    }
    let pixels = side * PNG_SCALE;
    let mut document = Zeroizing::new(String::with_capacity(path.len() + 512));
    let _ = write!(
        document,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{pixels}\" \
         height=\"{pixels}\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\n\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#ffffff\"/>\n\
         <path fill=\"#000000\" d=\"{}\"/>\n\
         </svg>\n",
        path.as_str()
    );
    Zeroizing::new(document.as_bytes().to_vec())
}

fn png(matrix: &QrMatrix) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let side = matrix.width() + 2 * QUIET_ZONE;
    let pixels = side * PNG_SCALE;
    let mut image = Zeroizing::new(vec![0xffu8; pixels * pixels]);
    for y in 0..pixels {
        for x in 0..pixels {
            if matrix.dark_at(x / PNG_SCALE, y / PNG_SCALE, QUIET_ZONE) {
                image[y * pixels + x] = 0;
            }
        }
    }
    let failed = |err: png::EncodingError| {
        CliError::System(format!("cannot encode the QR code as PNG: {err}"))
    };
    let mut out = Zeroizing::new(Vec::new());
    {
        let size = u32::try_from(pixels)
            .map_err(|_| CliError::System("the QR code is too large for a PNG file".into()))?;
        let mut encoder = png::Encoder::new(&mut *out, size, size);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(&image).map_err(failed)?;
        writer.finish().map_err(failed)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/host.example.org:alice%40host.example.org?\
                       secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=host.example.org\
                       &algorithm=SHA1&digits=6&period=30";

    /// Read a terminal drawing back into module rows (true = dark).
    fn parse(text: &str, style: QrStyle) -> Vec<Vec<bool>> {
        let drawn_is_dark = matches!(style, QrStyle::Light | QrStyle::AsciiLight);
        let mut rows = Vec::new();
        for line in text.lines() {
            let line = &line[INDENT..];
            if matches!(style, QrStyle::AsciiDark | QrStyle::AsciiLight) {
                let chars: Vec<char> = line.chars().collect();
                rows.push(
                    chars
                        .chunks(2)
                        .map(|pair| (pair[0] == '#') == drawn_is_dark)
                        .collect(),
                );
            } else {
                let (mut top, mut bottom) = (Vec::new(), Vec::new());
                for c in line.chars() {
                    let (t, b) = match c {
                        '█' => (true, true),
                        '▀' => (true, false),
                        '▄' => (false, true),
                        _ => (false, false),
                    };
                    top.push(t == drawn_is_dark);
                    bottom.push(b == drawn_is_dark);
                }
                rows.push(top);
                rows.push(bottom);
            }
        }
        rows
    }

    #[test]
    fn every_style_draws_the_exact_modules_and_fits() {
        let matrix = QrMatrix::encode(URI, EcLevel::M).unwrap();
        for style in [
            QrStyle::Dark,
            QrStyle::Light,
            QrStyle::AsciiDark,
            QrStyle::AsciiLight,
        ] {
            let drawing = render(&matrix, QUIET_ZONE, style);
            let rows = parse(&drawing.text, style);
            let side = matrix.width() + 2 * QUIET_ZONE;
            for (y, row) in rows.iter().enumerate().take(side) {
                for (x, module) in row.iter().enumerate().take(side) {
                    assert_eq!(
                        *module,
                        matrix.dark_at(x, y, QUIET_ZONE),
                        "{style:?} at {x},{y}"
                    );
                }
            }
            for line in drawing.text.lines() {
                assert_eq!(line.chars().count(), drawing.columns, "{style:?}");
            }
        }
        let drawing = draw_for_terminal(URI, QrStyle::Dark).unwrap().unwrap();
        assert!(drawing.columns <= TERMINAL_COLUMNS, "{}", drawing.columns);
        assert!(draw_for_terminal(URI, QrStyle::None).unwrap().is_none());
    }

    #[test]
    fn long_uris_fall_back_to_denser_encodings() {
        let long = format!("{URI}&x={}", "a".repeat(120));
        let drawing = draw_for_terminal(&long, QrStyle::Dark).unwrap().unwrap();
        assert!(drawing.columns <= TERMINAL_COLUMNS, "{}", drawing.columns);
    }

    #[test]
    fn files_have_the_right_format() {
        let svg = file_contents(URI, QrFileFormat::Svg).unwrap();
        let svg = std::str::from_utf8(&svg).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
        let png = file_contents(URI, QrFileFormat::Png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
