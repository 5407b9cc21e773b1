//! `macrolake chart` on a lake built from the snapshot: PNG and SVG output, and errors that
//! write nothing.

use std::collections::HashSet;
use std::path::Path;

use super::common::*;

fn cli(lake: &Path, args: &[&str]) -> (i32, String, String) {
    run(bin(repo()).arg("--lake").arg(lake).args(args))
}

/// Width, height and RGB(A) pixels of a PNG file.
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

/// How many pixels have this colour (within `tolerance` per channel).
fn count_colour(pixels: &[[u8; 3]], rgb: [u8; 3], tolerance: u8) -> usize {
    pixels
        .iter()
        .filter(|p| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= tolerance))
        .count()
}

#[test]
fn chart_renders_png_and_svg_and_errors_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());

    let png_path = dir.path().join("out/chart.png");
    let (code, out, err) = cli(
        &lake,
        &[
            "chart",
            "--from",
            "2025-06-01",
            "--to",
            "2026-06-05",
            "--out",
            png_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // The mart runs past the range asked for (to the newest day any input is known).
    assert!(
        out.contains("2025-06-01 to 2026-06-05") && out.contains("divergence span"),
        "{out}"
    );
    let size = std::fs::metadata(&png_path).unwrap().len();
    assert!(size > 20_000, "{size} bytes");
    let (w, h, pixels) = decode_png(&png_path);
    assert_eq!((w, h), (1200, 600));
    let distinct: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(distinct.len() > 100, "{} colours", distinct.len());
    let non_white = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(
        non_white > pixels.len() / 20,
        "{non_white} non-white pixels"
    );
    // The three lines in their colours, and the divergence shading (red at 14% on white): far
    // more pixels than their legend swatches (20x3 and 20x14) have.
    for (name, rgb, tolerance, at_least) in [
        ("net liquidity line", [31, 119, 180], 0, 1000),
        ("bitcoin line", [242, 142, 20], 0, 1000),
        ("Russell 2000 line", [44, 160, 44], 0, 700),
        ("divergence shading", [249, 225, 225], 2, 5000),
    ] {
        let n = count_colour(&pixels, rgb, tolerance);
        assert!(n >= at_least, "{name}: {n} pixels");
    }

    // Dual axis at another size.
    let dual = dir.path().join("out/dual.png");
    let (code, out, err) = cli(
        &lake,
        &[
            "chart",
            "--mode",
            "dual-axis",
            "--width",
            "800",
            "--height",
            "500",
            "--out",
            dual.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let (w, h, pixels) = decode_png(&dual);
    assert_eq!((w, h), (800, 500));
    assert!(
        count_colour(&pixels, [242, 142, 20], 0) > 500,
        "bitcoin line"
    );

    // SVG: the title as text, the series as polylines; default range = the year to the newest day
    // on which every line has a value.
    let svg_path = dir.path().join("out/chart.svg");
    let (code, out, err) = cli(&lake, &["chart", "--out", svg_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains("Net liquidity vs bitcoin vs Russell 2000, 2025-06-10 to 2026-06-10"),
        "{}",
        &svg[..500.min(svg.len())]
    );
    assert!(
        svg.matches("<polyline").count() >= 3,
        "series drawn as polylines"
    );
    assert!(svg.contains("Divergence: one of BTC / RUT"));

    // Errors: exit 1, a clear message, the existing file untouched, nothing new written.
    std::fs::write(&png_path, b"previous").unwrap();
    let (code, _, err) = cli(
        &lake,
        &[
            "chart",
            "--from",
            "2001-01-01",
            "--to",
            "2001-12-31",
            "--out",
            png_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "no net liquidity, bitcoin or Russell 2000 values from 2001-01-01 to 2001-12-31"
        ) && err.contains("it has days from 2002-12-19 to 2026-06-10"),
        "{err}"
    );
    assert_eq!(std::fs::read(&png_path).unwrap(), b"previous");

    let jpg = dir.path().join("out/chart.jpg");
    let (code, _, err) = cli(&lake, &["chart", "--out", jpg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("name the file .png or .svg"), "{err}");
    assert!(!jpg.exists());

    let reversed = dir.path().join("out/reversed.png");
    let (code, _, err) = cli(
        &lake,
        &[
            "chart",
            "--from",
            "2026-01-01",
            "--to",
            "2025-01-01",
            "--out",
            reversed.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--from 2026-01-01 is after --to 2025-01-01"),
        "{err}"
    );
    assert!(!reversed.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
