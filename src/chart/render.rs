//! Drawing the chart with plotters, into a PNG or an SVG held in memory.

use chrono::{Duration, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{ValueAxis, date_ticks, thin};
use super::font::FAMILY;
use super::{ChartData, ChartMode, ImageFormat};

const LIQUIDITY: RGBColor = RGBColor(31, 119, 180);
const BITCOIN: RGBColor = RGBColor(242, 142, 20);
const RUSSELL: RGBColor = RGBColor(44, 160, 44);
const DIVERGENCE: RGBColor = RGBColor(214, 39, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);

/// Which y axis a line is drawn against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Left,
    Right,
}

/// One series ready to draw: its runs of consecutive values (a NULL breaks the line).
struct Line {
    label: String,
    color: RGBColor,
    axis: Axis,
    segments: Vec<Vec<(NaiveDate, f64)>>,
}

/// Renders the chart and returns the file's bytes.
pub(super) fn render(
    data: &ChartData,
    from: NaiveDate,
    to: NaiveDate,
    mode: ChartMode,
    format: ImageFormat,
    (width, height): (u32, u32),
) -> Result<Vec<u8>, String> {
    match format {
        ImageFormat::Png => {
            let mut pixels = vec![255u8; width as usize * height as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
                draw(&root, data, from, to, mode, true)?;
                root.present().map_err(|e| e.to_string())?;
            }
            encode_png(&pixels, width, height)
        }
        ImageFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                draw(&root, data, from, to, mode, false)?;
                root.present().map_err(|e| e.to_string())?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// RGB pixels to a PNG file's bytes.
fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Each value divided by the first non-zero value and times 100.
fn rebase(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let base = values.iter().flatten().copied().find(|v| *v != 0.0);
    values.iter().map(|v| Some(100.0 * (*v)? / base?)).collect()
}

/// Runs of consecutive values.
fn segments(dates: &[NaiveDate], values: &[Option<f64>]) -> Vec<Vec<(NaiveDate, f64)>> {
    let mut out: Vec<Vec<(NaiveDate, f64)>> = Vec::new();
    let mut open = false;
    for (date, value) in dates.iter().zip(values) {
        match value {
            Some(v) if open => out.last_mut().into_iter().for_each(|s| s.push((*date, *v))),
            Some(v) => {
                out.push(vec![(*date, *v)]);
                open = true;
            }
            None => open = false,
        }
    }
    out
}

/// A legend label, noting where the series' data starts late or stops early.
fn label(name: &str, dates: &[NaiveDate], values: &[Option<f64>]) -> String {
    let with_values: Vec<NaiveDate> = dates
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_some())
        .map(|(d, _)| *d)
        .collect();
    let (Some(first), Some(last), Some(start), Some(end)) = (
        with_values.first(),
        with_values.last(),
        dates.first(),
        dates.last(),
    ) else {
        return format!("{name} (no data in this range)");
    };
    let mut notes = Vec::new();
    if *first - *start > Duration::days(5) {
        notes.push(format!("from {first}"));
    }
    if *end - *last > Duration::days(5) {
        notes.push(format!("data ends {last}"));
    }
    if notes.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", notes.join(", "))
    }
}

/// The font size, at most `size`, at which `text` fits in `width` pixels (at least 10).
fn fitting_size<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: f64,
    width: u32,
) -> Result<f64, String> {
    let style = (FAMILY, size).into_font().into_text_style(area);
    let (text_width, _) = area
        .estimate_text_size(text, &style)
        .map_err(|e| e.to_string())?;
    Ok(if text_width > width && text_width > 0 {
        (size * f64::from(width) / f64::from(text_width)).max(10.0)
    } else {
        size
    })
}

/// Height of one legend row, pixels.
const LEGEND_ROW: u32 = 22;
/// Width of a legend swatch and the gaps around it, pixels.
const SWATCH: u32 = 20;
const GAP: u32 = 8;
const ENTRY_GAP: u32 = 28;

/// What a legend entry shows before its text.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// A line in this colour.
    Line(RGBColor),
    /// The divergence shading.
    Shade,
}

/// One legend entry placed in a row.
struct LegendEntry {
    text: String,
    mark: Mark,
    /// Swatch, gap and text, pixels.
    width: u32,
}

/// The legend entries laid out in rows that fit the width.
fn legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Mark)],
) -> Result<Vec<Vec<LegendEntry>>, String> {
    let font = (FAMILY, 13).into_font();
    let available = area.dim_in_pixel().0.saturating_sub(80);
    let mut rows: Vec<Vec<LegendEntry>> = vec![Vec::new()];
    let mut used = 0;
    for (text, mark) in entries {
        let (text_width, _) = area
            .estimate_text_size(text, &font.clone().into_text_style(area))
            .map_err(|e| e.to_string())?;
        let width = SWATCH + GAP + text_width;
        let row_width = |used: u32| {
            if used == 0 {
                width
            } else {
                used + ENTRY_GAP + width
            }
        };
        if used > 0 && row_width(used) > available {
            rows.push(Vec::new());
            used = 0;
        }
        used = row_width(used);
        rows.last_mut().into_iter().for_each(|r| {
            r.push(LegendEntry {
                text: text.clone(),
                mark: *mark,
                width,
            })
        });
    }
    Ok(rows)
}

/// Draws the legend rows centred in `area`.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[Vec<LegendEntry>],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let font = (FAMILY, 13).into_font();
    let width = area.dim_in_pixel().0;
    for (i, row) in rows.iter().enumerate() {
        let total: u32 = row.iter().map(|e| e.width).sum::<u32>()
            + ENTRY_GAP * (row.len().saturating_sub(1) as u32);
        let mut x = (width.saturating_sub(total) / 2) as i32;
        let y = (i as u32 * LEGEND_ROW + LEGEND_ROW / 2) as i32;
        for LegendEntry { text, mark, width } in row {
            let swatch = SWATCH as i32;
            match mark {
                Mark::Line(color) => area
                    .draw(&PathElement::new(
                        vec![(x, y), (x + swatch, y)],
                        color.stroke_width(3),
                    ))
                    .map_err(err)?,
                Mark::Shade => area
                    .draw(&Rectangle::new(
                        [(x, y - 7), (x + swatch, y + 7)],
                        DIVERGENCE.mix(0.14).filled(),
                    ))
                    .map_err(err)?,
            }
            let style = font
                .clone()
                .into_text_style(area)
                .pos(Pos::new(HPos::Left, VPos::Center));
            area.draw(&Text::new(
                text.clone(),
                (x + swatch + GAP as i32, y),
                style,
            ))
            .map_err(err)?;
            x += (*width + ENTRY_GAP) as i32;
        }
    }
    Ok(())
}

/// The three lines in `mode` (rebased, or liquidity in $ trillion on the left axis) and the
/// legend's entries.
fn lines_and_legend(data: &ChartData, mode: ChartMode) -> ([Line; 3], Vec<(String, Mark)>) {
    let dates = &data.dates;
    let liquidity = match mode {
        ChartMode::Normalised => rebase(&data.net_liquidity_musd),
        ChartMode::DualAxis => data
            .net_liquidity_musd
            .iter()
            .map(|v| v.map(|m| m / 1e6))
            .collect(),
    };
    let asset_axis = match mode {
        ChartMode::Normalised => Axis::Left,
        ChartMode::DualAxis => Axis::Right,
    };
    let lines = [
        Line {
            label: label(
                "Net liquidity (Fed assets − TGA − ON RRP)",
                dates,
                &data.net_liquidity_musd,
            ),
            color: LIQUIDITY,
            axis: Axis::Left,
            segments: segments(dates, &liquidity),
        },
        Line {
            label: label("Bitcoin (BTC-USD)", dates, &data.btc_close),
            color: BITCOIN,
            axis: asset_axis,
            segments: segments(dates, &rebase(&data.btc_close)),
        },
        Line {
            label: label(
                "Russell 2000 (^RUT/IWM chain-linked)",
                dates,
                &data.rut_close,
            ),
            color: RUSSELL,
            axis: asset_axis,
            segments: segments(dates, &rebase(&data.rut_close)),
        },
    ];
    let mut legend: Vec<(String, Mark)> = lines
        .iter()
        .map(|l| (l.label.clone(), Mark::Line(l.color)))
        .collect();
    legend.push((
        if data.divergence_spans().is_empty() {
            "Divergence: none in this range".to_string()
        } else {
            "Divergence: one of BTC / RUT near its high, the other > 20% below".to_string()
        },
        Mark::Shade,
    ));
    (lines, legend)
}

/// Draws the whole chart on `root`.
///
/// Long on purpose: plotters' chart context with a secondary axis is a generic type (backend
/// and two coordinate systems) that helpers would have to spell out in full, so the axes, the
/// shading and the lines are drawn here in order.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    from: NaiveDate,
    to: NaiveDate,
    mode: ChartMode,
    split_strokes: bool,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (lines, legend) = lines_and_legend(data, mode);
    let dates = &data.dates;
    let (width, full_height) = root.dim_in_pixel();
    let rows = legend_rows(root, &legend)?;
    let legend_height = rows.len() as u32 * LEGEND_ROW + 8;
    let (plot_area, legend_area) = root.split_vertically(full_height - legend_height);
    let height = full_height - legend_height;
    let x_end = to + Duration::days(1);
    let ticks = date_ticks(from, to, (width as usize / 120).max(2));
    let x = || (from..x_end).with_key_points(ticks.clone());
    let dual = mode == ChartMode::DualAxis;
    let max_y_ticks = (height as usize / 50).max(3);
    let values = |axis: Axis| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l.axis == axis)
            .flat_map(|l| l.segments.iter().flatten().map(|(_, v)| *v))
            .collect()
    };
    // Rebased series may grow a hundredfold over a long range: a log scale keeps them readable.
    let left = ValueAxis::new(&values(Axis::Left), !dual, max_y_ticks);
    let right = ValueAxis::new(&values(Axis::Right), true, max_y_ticks);
    let scale_note = |axis: &ValueAxis| if axis.log { ", log scale" } else { "" };
    let left_desc = if dual {
        "Net liquidity ($ trillion)".to_string()
    } else {
        format!("Index: first value in range = 100{}", scale_note(&left))
    };
    let right_desc = format!(
        "Bitcoin, Russell 2000 (first value in range = 100{})",
        scale_note(&right)
    );

    let title = format!("Net liquidity vs bitcoin vs Russell 2000, {from} to {to}");
    let title_size = fitting_size(root, &title, 24.0, width.saturating_sub(40))?;
    let right_area: u32 = if dual { 78 } else { 16 };
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, (FAMILY, title_size).into_font())
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .right_y_label_area_size(right_area)
        .build_cartesian_2d(x(), left.clone())
        .map_err(err)?
        .set_secondary_coord(x(), right.clone());

    let label_font = (FAMILY, 13).into_font();
    let desc_font = (FAMILY, 15).into_font();
    let left_label = |v: &f64| left.label(*v);
    let right_label = |v: &f64| right.label(*v);
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_desc_style(desc_font.clone())
        .label_style(label_font.clone())
        .x_desc("Date")
        .y_desc(left_desc)
        .x_label_formatter(&|d: &NaiveDate| d.format("%Y-%m-%d").to_string())
        .y_label_formatter(&left_label)
        .draw()
        .map_err(err)?;
    if dual {
        chart
            .configure_secondary_axes()
            .axis_desc_style(desc_font)
            .label_style(label_font)
            .y_desc(right_desc)
            .y_label_formatter(&right_label)
            .draw()
            .map_err(err)?;
    }

    // Divergence first, so the lines are drawn over the shading.
    let spans = data.divergence_spans();
    let shade = DIVERGENCE.mix(0.14).filled();
    chart
        .draw_series(spans.iter().map(|(a, b)| {
            let end = (*b + Duration::days(1)).min(x_end);
            Rectangle::new([(*a, left.lo), (end, left.hi)], shade)
        }))
        .map_err(err)?;

    // Days per pixel of plot width: more than two, and each segment is thinned to its extremes.
    let plot_pixels = (width as usize)
        .saturating_sub(78 + right_area as usize + 32)
        .max(1);
    let per = dates.len().div_ceil(plot_pixels);
    for line in &lines {
        let style = line.color.stroke_width(2);
        let axis = if line.axis == Axis::Left {
            &left
        } else {
            &right
        };
        let paths = line.segments.iter().flat_map(|s| {
            let points = thin(s, per)
                .into_iter()
                .map(|(d, v)| (d, axis.plot(v)))
                .collect::<Vec<_>>();
            // The bitmap backend fills a wide path as one polygon, which leaves holes where a
            // jagged line doubles back; one path per step has none. SVG draws real polylines.
            if split_strokes && points.len() > 2 {
                points
                    .windows(2)
                    .map(|w| PathElement::new(w.to_vec(), style))
                    .collect::<Vec<_>>()
            } else {
                vec![PathElement::new(points, style)]
            }
        });
        match line.axis {
            Axis::Left => chart.draw_series(paths).map_err(err)?,
            Axis::Right => chart.draw_secondary_series(paths).map_err(err)?,
        };
    }

    draw_legend(&legend_area, &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn rebasing_divides_by_the_first_non_zero_value() {
        assert_eq!(
            rebase(&[None, Some(0.0), Some(50.0), None, Some(75.0)]),
            vec![None, Some(0.0), Some(100.0), None, Some(150.0)]
        );
        assert_eq!(rebase(&[None, None]), vec![None, None]);
    }

    #[test]
    fn nulls_break_lines_into_segments() {
        let dates: Vec<NaiveDate> = (1..=5).map(|d| day(&format!("2026-03-0{d}"))).collect();
        let got = segments(&dates, &[Some(1.0), Some(2.0), None, None, Some(5.0)]);
        assert_eq!(
            got,
            vec![
                vec![(dates[0], 1.0), (dates[1], 2.0)],
                vec![(dates[4], 5.0)]
            ]
        );
    }

    #[test]
    fn labels_say_where_a_series_stops_early() {
        let dates: Vec<NaiveDate> = (1..=20).map(|d| day(&format!("2026-03-{d:02}"))).collect();
        let mut values = vec![Some(1.0); 20];
        assert_eq!(label("RUT", &dates, &values), "RUT");
        values[10..].fill(None);
        assert_eq!(label("RUT", &dates, &values), "RUT (data ends 2026-03-10)");
        assert_eq!(
            label("RUT", &dates, &[None; 20]),
            "RUT (no data in this range)"
        );
    }
}
