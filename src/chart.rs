//! Charts of a `bedrock_spend` answer, drawn in-process as PNG.
//!
//! [`plan`] turns the structured answer into what is drawn (pure, unit-tested):
//! spend over time stacked by the largest groups when the answer has several
//! time buckets, else a ranked horizontal bar chart. The untagged group is
//! always its own series in a colour no named group gets, and the "others"
//! row (groups beyond `top_n`, plus groups the chart itself folds to stay
//! readable) is always drawn. [`render`] draws the plan with `plotters` on an
//! RGB bitmap, with text from the DejaVu Sans compiled into the binary (no
//! system font lookup), and encodes it as PNG with [`encode_png`].
//!
//! The plan is returned beside the image ([`ChartSummary`]) so that callers
//! can see, and tests can check, exactly which groups and figures were drawn.

use std::collections::BTreeMap;
use std::sync::Once;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontTransform,
};

use crate::usecases::spend::{SpendOutput, SpendRowOut};

/// DejaVu Sans 2.37 (Bitstream Vera licence; see assets/fonts/).
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Named series drawn in a stacked chart before the rest fold into "others".
pub const MAX_SERIES: usize = 8;
/// Named bars drawn in a ranked chart before the rest fold into "others".
pub const MAX_BARS: usize = 15;

/// Width of every chart, in pixels.
pub const WIDTH: u32 = 1000;

/// Named series colours (Tableau 10 without its red and grey, which mean
/// "untagged" and "others" here).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
];
const UNTAGGED: RGBColor = RGBColor(0xD6, 0x27, 0x28);
const OTHERS: RGBColor = RGBColor(0xB0, 0xB0, 0xB0);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);

pub use crate::usecases::spend::{ChartGroup, ChartSummary};

/// A rendered chart.
pub struct Chart {
    pub png: Vec<u8>,
    pub summary: ChartSummary,
}

fn round4(x: f64) -> f64 {
    let r = (x * 10_000.0).round() / 10_000.0;
    if r == 0.0 { 0.0 } else { r }
}

/// The x position of a row: its bucket, or its `day`/`month` key when the
/// answer has one bucket but groups by day or month.
fn time_key(o: &SpendOutput) -> Option<TimeAxis> {
    let buckets: std::collections::BTreeSet<&str> =
        o.rows.iter().map(|r| r.bucket.as_str()).collect();
    if buckets.len() > 1 {
        return Some(TimeAxis::Bucket);
    }
    for key in ["day", "month"] {
        if o.group_by.iter().any(|k| k == key) {
            let values: std::collections::BTreeSet<&str> = o
                .rows
                .iter()
                .filter(|r| !r.others)
                .filter_map(|r| r.keys.get(key).map(String::as_str))
                .collect();
            if values.len() > 1 {
                return Some(TimeAxis::Key(key.to_string()));
            }
        }
    }
    None
}

enum TimeAxis {
    Bucket,
    Key(String),
}

/// The label of a row's group: its key values in `group_by` order, without the time key.
fn label_of(o: &SpendOutput, r: &SpendRowOut, skip: Option<&str>) -> String {
    if r.others {
        return "others".into();
    }
    let parts: Vec<&str> = o
        .group_by
        .iter()
        .filter(|k| Some(k.as_str()) != skip)
        .map(|k| r.keys.get(k).map(String::as_str).unwrap_or(""))
        .collect();
    if parts.is_empty() {
        "total".into()
    } else {
        parts.join(" | ")
    }
}

#[derive(Default)]
struct Series {
    amount: f64,
    untagged: bool,
    others: bool,
    by_x: BTreeMap<String, f64>,
}

/// Decide what to draw (pure): the kind, the x buckets and the groups with their figures.
/// `bytes`, `width` and `height` are filled in by [`render`].
pub fn plan(o: &SpendOutput) -> ChartSummary {
    let axis = time_key(o);
    let skip = match &axis {
        Some(TimeAxis::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    let mut xs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for r in &o.rows {
        let label = label_of(o, r, skip);
        let x = match &axis {
            Some(TimeAxis::Bucket) | None => r.bucket.clone(),
            Some(TimeAxis::Key(k)) => r.keys.get(k).cloned().unwrap_or_else(|| r.bucket.clone()),
        };
        xs.insert(x.clone());
        let s = series.entry(label).or_default();
        s.amount += r.amount;
        s.untagged |= r.untagged;
        s.others |= r.others;
        *s.by_x.entry(x).or_default() += r.amount;
    }
    let limit = if axis.is_some() { MAX_SERIES } else { MAX_BARS };
    let mut named: Vec<(String, Series)> = Vec::new();
    let mut untagged: Vec<(String, Series)> = Vec::new();
    let mut others = Series {
        others: true,
        ..Series::default()
    };
    let mut has_others = false;
    let mut folded = Vec::new();
    for (label, s) in series {
        if s.others {
            has_others = true;
            others.amount += s.amount;
            for (x, v) in s.by_x {
                *others.by_x.entry(x).or_default() += v;
            }
        } else if s.untagged {
            untagged.push((label, s));
        } else {
            named.push((label, s));
        }
    }
    named.sort_by(|a, b| {
        b.1.amount
            .abs()
            .total_cmp(&a.1.amount.abs())
            .then_with(|| a.0.cmp(&b.0))
    });
    // Untagged groups never fold; named ones beyond the limit do.
    let room = limit.saturating_sub(untagged.len()).max(1);
    if named.len() > room {
        for (label, s) in named.split_off(room) {
            has_others = true;
            folded.push(label);
            others.amount += s.amount;
            for (x, v) in s.by_x {
                *others.by_x.entry(x).or_default() += v;
            }
        }
    }
    let mut kept: Vec<(String, Series)> = named;
    if axis.is_some() {
        // Stacked bottom to top: named by size, then untagged, then others.
        kept.extend(untagged);
    } else {
        // Bars top to bottom by amount; untagged ranks where its amount puts it.
        kept.extend(untagged);
        kept.sort_by(|a, b| {
            b.1.amount
                .abs()
                .total_cmp(&a.1.amount.abs())
                .then_with(|| a.0.cmp(&b.0))
        });
    }
    if has_others {
        kept.push(("others".into(), others));
    }
    let buckets: Vec<String> = if axis.is_some() {
        xs.into_iter().collect()
    } else {
        Vec::new()
    };
    let groups: Vec<ChartGroup> = kept
        .into_iter()
        .map(|(label, s)| ChartGroup {
            values: buckets
                .iter()
                .map(|b| round4(s.by_x.get(b).copied().unwrap_or(0.0)))
                .collect(),
            folded: if s.others {
                std::mem::take(&mut folded)
            } else {
                Vec::new()
            },
            label,
            amount: round4(s.amount),
            untagged: s.untagged,
            others: s.others,
        })
        .collect();
    ChartSummary {
        kind: if axis.is_some() {
            "stacked_over_time"
        } else {
            "ranked_bars"
        }
        .into(),
        mime_type: "image/png".into(),
        width: WIDTH,
        height: 0,
        bytes: 0,
        currency: o.currency.clone(),
        total: round4(groups.iter().map(|g| g.amount).sum()),
        time_unit: match &axis {
            Some(TimeAxis::Key(k)) => Some(k.clone()),
            Some(TimeAxis::Bucket) if o.granularity == "daily" => Some("day".into()),
            Some(TimeAxis::Bucket) => Some("month".into()),
            None => None,
        },
        buckets,
        groups,
    }
}

/// Draw the answer as a PNG.
pub fn render(o: &SpendOutput) -> Result<Chart, String> {
    let mut summary = plan(o);
    let (w, h) = (WIDTH, height_for(&summary));
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        register_font();
        let root = Typeset(BitMapBackend::with_buffer(&mut rgb, (w, h))).into_drawing_area();
        draw(&root, o, &summary).map_err(|e| format!("cannot draw the chart: {e}"))?;
        root.present()
            .map_err(|e| format!("cannot draw the chart: {e}"))?;
    }
    let png = encode_png(&rgb, w, h).map_err(|e| format!("cannot encode the chart: {e}"))?;
    summary.width = w;
    summary.height = h;
    summary.bytes = png.len();
    Ok(Chart { png, summary })
}

fn height_for(s: &ChartSummary) -> u32 {
    if s.kind == "stacked_over_time" {
        560
    } else {
        (120 + 34 * s.groups.len() as u32).max(260)
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TrueType font; a failure would only leave labels undrawn.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

fn colour(g: &ChartGroup, i: usize, ranked: bool) -> RGBColor {
    if g.untagged {
        UNTAGGED
    } else if g.others {
        OTHERS
    } else if ranked {
        PALETTE[0]
    } else {
        PALETTE[i % PALETTE.len()]
    }
}

/// A label that fits `max` characters: `arn:aws:iam::123456789012:role/X` reads
/// `123456789012:role/X`, or `role/X` when that is still too long; then each
/// part of a multi-key label is cut at its end with "…".
pub fn display_label(label: &str, max: usize) -> String {
    let parts: Vec<&str> = label.split(" | ").collect();
    let strip = |p: &str| -> String {
        p.strip_prefix("arn:aws:iam::")
            .or_else(|| p.strip_prefix("arn:aws:sts::"))
            .unwrap_or(p)
            .to_string()
    };
    let short: Vec<String> = parts.iter().map(|p| strip(p)).collect();
    if short.join(" | ").chars().count() <= max {
        return short.join(" | ");
    }
    // Parts that fit an equal share keep their length; the others share what is left and
    // are cut in their middle (`domain::label::shorten`: account, kind and tail kept).
    let n = short.len();
    let budget = max.saturating_sub(3 * (n - 1));
    let share = budget / n;
    let small: usize = short
        .iter()
        .map(|s| s.chars().count())
        .filter(|l| *l <= share)
        .sum();
    let long = short
        .iter()
        .filter(|s| s.chars().count() > share)
        .count()
        .max(1);
    let room = (budget.saturating_sub(small) / long).max(2);
    parts
        .iter()
        .zip(&short)
        .map(|(p, s)| {
            if s.chars().count() <= share {
                s.clone()
            } else {
                crate::domain::label::shorten(p, room)
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// [`display_label`] for a set of labels: two different groups never get the same text.
pub fn display_labels(labels: &[&str], max: usize) -> Vec<String> {
    crate::domain::label::distinct_by(labels, max, display_label)
}

/// Money on an axis: `$1,234` (USD) or `1,234 EUR`; cents only for small scales.
pub fn axis_money(v: f64, currency: &str, cents: bool) -> String {
    let s = crate::domain::label::fmt_money(v);
    let s = if cents {
        s
    } else {
        s.trim_end_matches(".00").to_string()
    };
    if currency == "USD" {
        match s.strip_prefix('-') {
            Some(rest) => format!("-${rest}"),
            None => format!("${s}"),
        }
    } else {
        format!("{s} {currency}")
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    o: &SpendOutput,
    s: &ChartSummary,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let title = format!(
        "Bedrock spend by {}, {} to {} (end exclusive)",
        if o.group_by.is_empty() {
            "total".to_string()
        } else {
            o.group_by.join(", ")
        },
        o.period.start,
        o.period.end
    );
    let sub = format!(
        "total {} · {} {} · source {}{}",
        axis_money(s.total, &s.currency, true),
        o.metric,
        o.granularity,
        o.source,
        if o.estimated { " · estimated" } else { "" }
    );
    let key = match (
        s.groups.iter().any(|g| g.untagged),
        s.groups.iter().any(|g| g.others),
    ) {
        (true, true) => " · red: untagged, grey: others",
        (true, false) => " · red: untagged",
        (false, true) => " · grey: others",
        (false, false) => "",
    };
    let sub = if s.kind == "ranked_bars" {
        format!("{sub}{key}")
    } else {
        sub
    };
    let root = root.margin(12, 8, 12, 16);
    let area = root.titled(&title, (FAMILY, 20).into_font().color(&INK))?;
    let area = area.titled(&sub, (FAMILY, 14).into_font().color(&RGBColor(90, 90, 90)))?;
    if s.groups.is_empty() {
        area.draw(&Text::new(
            format!("No Bedrock spend in {} to {}", o.period.start, o.period.end),
            (20, 40),
            (FAMILY, 16).into_font().color(&INK),
        ))?;
        return Ok(());
    }
    if s.kind == "stacked_over_time" {
        draw_stacked(&area, s)
    } else {
        draw_ranked(&area, s)
    }
}

fn draw_stacked<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &ChartSummary) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let legend_w = 270;
    let (w, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(w.saturating_sub(legend_w));
    let n = s.buckets.len();
    // Stack positives up from zero and negatives (credits in a row) down from it.
    let mut top = vec![0.0f64; n];
    let mut bottom = vec![0.0f64; n];
    let mut rects = Vec::new();
    for (gi, g) in s.groups.iter().enumerate() {
        for (i, v) in g.values.iter().enumerate() {
            let (y0, y1) = if *v >= 0.0 {
                let y0 = top[i];
                top[i] += v;
                (y0, top[i])
            } else {
                let y0 = bottom[i];
                bottom[i] += v;
                (bottom[i], y0)
            };
            if y1 > y0 {
                rects.push((gi, i, y0, y1));
            }
        }
    }
    let y_max = top.iter().copied().fold(0.0, f64::max);
    let y_min = bottom.iter().copied().fold(0.0, f64::min);
    let span = (y_max - y_min).max(0.01);
    let (y_lo, y_hi) = (
        if y_min < 0.0 {
            y_min - span * 0.05
        } else {
            0.0
        },
        y_max + span * 0.08,
    );
    let cents = span < 20.0;
    let unit = s.time_unit.as_deref().unwrap_or("bucket");
    let (daily, monthly) = (unit == "day", unit == "month");
    let labels: Vec<String> = s
        .buckets
        .iter()
        .map(|b| {
            if monthly {
                b.chars().take(7).collect()
            } else if b.len() == 10 {
                b[5..].to_string()
            } else {
                b.clone()
            }
        })
        .collect();
    let currency = s.currency.clone();
    let y_fmt = move |v: &f64| axis_money(*v, &currency, cents);
    let x_fmt = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(&plot)
        .margin_top(8)
        .margin_right(12)
        .x_label_area_size(44)
        .y_label_area_size(90)
        .build_cartesian_2d((0..(n as i32 - 1)).into_segmented(), y_lo..y_hi)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .axis_style(INK)
        .y_desc(format!(
            "{} per {}",
            s.currency,
            if daily {
                "day"
            } else if monthly {
                "month"
            } else {
                "bucket"
            }
        ))
        .x_desc(if daily {
            "day (MM-DD)"
        } else if monthly {
            "month"
        } else {
            "bucket"
        })
        .x_labels(n.min(16))
        .y_labels(8)
        .label_style((FAMILY, 13).into_font().color(&INK))
        .axis_desc_style((FAMILY, 14).into_font().color(&INK))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()?;
    let (plot_w, _) = chart.plotting_area().dim_in_pixel();
    let gap = ((plot_w as f64 / n as f64) * 0.12).round().max(1.0) as u32;
    chart.draw_series(rects.into_iter().map(|(gi, i, y0, y1)| {
        let c = colour(&s.groups[gi], gi, false);
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i as i32), y0),
                (SegmentValue::Exact(i as i32 + 1), y1),
            ],
            c.filled(),
        );
        r.set_margin(0, 0, gap, gap);
        r
    }))?;
    // Legend, top of the stack first, with each group's total.
    let legend = legend.margin(10, 0, 8, 0);
    legend.draw(&Text::new(
        "group (total)",
        (0, 0),
        (FAMILY, 13).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    let names = display_labels(
        &s.groups
            .iter()
            .map(|g| g.label.as_str())
            .collect::<Vec<_>>(),
        22,
    );
    for (row, (gi, g)) in s.groups.iter().enumerate().rev().enumerate() {
        let y = 24 + row as i32 * 24;
        let c = colour(g, gi, false);
        legend.draw(&Rectangle::new([(0, y), (14, y + 14)], c.filled()))?;
        let name = names[gi].clone();
        legend.draw(&Text::new(
            name,
            (20, y + 7),
            (FAMILY, 13)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        legend.draw(&Text::new(
            axis_money(g.amount, &s.currency, true),
            (250, y + 7),
            (FAMILY, 13)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    Ok(())
}

fn draw_ranked<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &ChartSummary) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let k = s.groups.len();
    let labels = display_labels(
        &s.groups
            .iter()
            .map(|g| g.label.as_str())
            .collect::<Vec<_>>(),
        44,
    );
    let label_w = labels
        .iter()
        .map(|l| {
            area.estimate_text_size(l, &TextStyle::from((FAMILY, 13).into_font()))
                .map(|d| d.0)
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(60)
        .clamp(60, 380)
        + 16;
    let max = s.groups.iter().map(|g| g.amount).fold(0.0, f64::max);
    let min = s.groups.iter().map(|g| g.amount).fold(0.0, f64::min);
    let span = (max - min).max(0.01);
    // Room at the right for the value printed after each bar.
    let (x_lo, x_hi) = (
        if min < 0.0 { min - span * 0.05 } else { 0.0 },
        max + span * 0.22,
    );
    let cents = span < 20.0;
    let currency = s.currency.clone();
    let x_fmt = move |v: &f64| axis_money(*v, &currency, cents);
    // Index 0 is the bottom row: the top bar (largest) is index k-1.
    let y_fmt = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if (*i as usize) < k => labels[k - 1 - *i as usize].clone(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .margin_top(8)
        .margin_right(16)
        .x_label_area_size(44)
        .y_label_area_size(label_w)
        .build_cartesian_2d(x_lo..x_hi, (0..(k as i32 - 1).max(0)).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .axis_style(INK)
        .x_desc(format!("{} ({})", s.currency, "period total"))
        .x_labels(8)
        .y_labels(k + 1)
        .label_style((FAMILY, 13).into_font().color(&INK))
        .axis_desc_style((FAMILY, 14).into_font().color(&INK))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()?;
    let (_, plot_h) = chart.plotting_area().dim_in_pixel();
    let rows = if k > 1 { k } else { 2 };
    let gap = ((plot_h as f64 / rows as f64) * 0.18).round().max(1.0) as u32;
    chart.draw_series(s.groups.iter().enumerate().map(|(rank, g)| {
        let i = (k - 1 - rank) as i32;
        let c = colour(g, rank, true);
        let (a, b) = if g.amount >= 0.0 {
            (0.0, g.amount)
        } else {
            (g.amount, 0.0)
        };
        let mut r = Rectangle::new(
            [(a, SegmentValue::Exact(i)), (b, SegmentValue::Exact(i + 1))],
            c.filled(),
        );
        r.set_margin(gap, gap, 0, 0);
        r
    }))?;
    let total = s.total;
    chart.draw_series(s.groups.iter().enumerate().map(|(rank, g)| {
        let i = (k - 1 - rank) as i32;
        let share = if total != 0.0 {
            format!(" ({:.1}%)", g.amount / total * 100.0)
        } else {
            String::new()
        };
        Text::new(
            format!("{}{share}", axis_money(g.amount, &s.currency, true)),
            (g.amount.max(0.0) + span * 0.01, SegmentValue::CenterOf(i)),
            (FAMILY, 13)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    Ok(())
}

/// A drawing backend that sets text itself (glyph bearings and kerning from
/// the bundled font) and hands every other primitive to the bitmap backend.
struct Typeset<DB>(DB);

fn font() -> &'static FontRef<'static> {
    static F: std::sync::OnceLock<FontRef<'static>> = std::sync::OnceLock::new();
    F.get_or_init(|| FontRef::try_from_slice(FONT).expect("the bundled DejaVu Sans parses"))
}

/// Glyphs of `text` at `size` px, positioned from (0, 0) at the top-left of
/// the line; with the line's width and height.
fn layout(text: &str, size: f64) -> (Vec<ab_glyph::Glyph>, f32, f32) {
    let f = font().as_scaled(PxScale::from(size as f32));
    let mut caret = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            caret += f.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(f.scale(), ab_glyph::point(caret, f.ascent())));
        caret += f.h_advance(id);
        prev = Some(id);
    }
    (glyphs, caret, f.ascent() - f.descent())
}

impl<DB: DrawingBackend> DrawingBackend for Typeset<DB> {
    type ErrorType = DB::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        p: BackendCoord,
        c: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(a, b, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (_, w, h) = layout(text, style.size());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let colour = style.color();
        if colour.alpha == 0.0 {
            return Ok(());
        }
        let (glyphs, w, h) = layout(text, style.size());
        let (w, h) = (w.round() as i32, h.round() as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Right => -w,
            HPos::Center => -w / 2,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let trans: FontTransform = style.transform();
        let (bw, bh) = self.get_size();
        let mut pixels = Vec::new();
        for g in glyphs {
            if let Some(outline) = font().outline_glyph(g) {
                let b = outline.px_bounds();
                outline.draw(|x, y, cov| {
                    if cov > 0.0 {
                        pixels.push((b.min.x as i32 + x as i32, b.min.y as i32 + y as i32, cov));
                    }
                });
            }
        }
        for (x, y, cov) in pixels {
            let (x, y) = trans.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < bw && (y as u32) < bh {
                self.0.draw_pixel(
                    (x, y),
                    BackendColor {
                        alpha: colour.alpha * cov.min(1.0) as f64,
                        rgb: colour.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Encode 8-bit RGB pixels as a PNG (the `png` crate; adaptive per-row filters, which suit the
/// flat chart colours).
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::spend::{PeriodOut, Reconciliation};

    fn row(bucket: &str, team: &str, amount: f64) -> SpendRowOut {
        SpendRowOut {
            bucket: bucket.into(),
            keys: [("tag:team".to_string(), team.to_string())].into(),
            amount,
            share: 0.0,
            untagged: team == "untagged",
            others: team == "others",
            no_principal: false,
            usage: None,
            usage_unit: None,
        }
    }

    fn answer(granularity: &str, rows: Vec<SpendRowOut>) -> SpendOutput {
        let total = rows.iter().map(|r| r.amount).sum();
        SpendOutput {
            period: PeriodOut {
                start: "2026-10-01".into(),
                end: "2026-11-01".into(),
            },
            granularity: granularity.into(),
            group_by: vec!["tag:team".into()],
            metric: "UnblendedCost".into(),
            currency: "USD".into(),
            source: "demo".into(),
            as_of: "2026-11-26T00:00:00Z".into(),
            estimated: false,
            paid_requests: 0,
            cached: false,
            services_counted: vec![],
            total,
            reconciliation: Reconciliation {
                named: 0.0,
                untagged: 0.0,
                no_principal: 0.0,
                others: 0.0,
                total,
                reconciled: true,
            },
            row_count: rows.len(),
            rows,
            adjustments: vec![],
            total_after_adjustments: total,
            data_scanned_bytes: None,
            next_cursor: None,
            notes: vec![],
            chart: None,
            newest_log_record: None,
            unbilled_estimate: None,
            live_vs_bill: None,
        }
    }

    /// Decode a PNG with the `png` crate's decoder: (width, height, RGB pixels).
    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut px = vec![0u8; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut px).unwrap();
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Eight)
        );
        px.truncate(info.buffer_size());
        (info.width, info.height, px)
    }

    #[test]
    fn png_round_trips() {
        let (w, h) = (7u32, 5u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let png = encode_png(&rgb, w, h).unwrap();
        assert_eq!(decode(&png), (w, h, rgb));
    }

    #[test]
    fn daily_answer_stacks_with_untagged_and_others() {
        let mut rows = Vec::new();
        for (d, scale) in [("2026-10-01", 1.0), ("2026-10-02", 2.0)] {
            for (i, t) in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
                .iter()
                .enumerate()
            {
                rows.push(row(d, t, (20 - i) as f64 * scale));
            }
            rows.push(row(d, "untagged", 3.0 * scale));
            rows.push(row(d, "others", 1.0 * scale));
        }
        let o = answer("daily", rows);
        let p = plan(&o);
        assert_eq!(p.kind, "stacked_over_time");
        assert_eq!(p.buckets, ["2026-10-01", "2026-10-02"]);
        assert_eq!(p.time_unit.as_deref(), Some("day"));
        let labels: Vec<&str> = p.groups.iter().map(|g| g.label.as_str()).collect();
        // 8 series: 7 named + untagged; i and j fold into others beside the answer's others.
        assert_eq!(
            labels,
            ["a", "b", "c", "d", "e", "f", "g", "untagged", "others"]
        );
        let others = p.groups.last().unwrap();
        assert_eq!(others.folded, ["h", "i", "j"]);
        assert_eq!(others.values, [1.0 + 13.0 + 12.0 + 11.0, 2.0 * 37.0]);
        assert!(p.groups[7].untagged);
        assert!((p.total - o.total).abs() < 1e-9);
        let c = render(&o).unwrap();
        assert_eq!((c.summary.width, c.summary.height), (WIDTH, 560));
        let (w, h, px) = decode(&c.png);
        assert_eq!((w, h), (WIDTH, 560));
        let has = |rgb: RGBColor| px.chunks(3).any(|p| p == [rgb.0, rgb.1, rgb.2]);
        assert!(has(UNTAGGED), "untagged drawn in its colour");
        assert!(has(OTHERS), "others drawn");
        assert!(has(PALETTE[0]));
        // Text was drawn: some dark anti-aliased pixels exist.
        assert!(px.chunks(3).any(|p| p[0] < 60 && p[1] < 60 && p[2] < 60));
    }

    #[test]
    fn one_bucket_is_a_ranked_bar_chart() {
        let o = answer(
            "monthly",
            vec![
                row("2026-10-01", "ml", 50.0),
                row("2026-10-01", "web", 10.0),
                row("2026-10-01", "untagged", 20.0),
                row("2026-10-01", "others", 5.0),
            ],
        );
        let p = plan(&o);
        assert_eq!(p.kind, "ranked_bars");
        assert!(p.buckets.is_empty());
        let labels: Vec<&str> = p.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["ml", "untagged", "web", "others"]);
        let c = render(&o).unwrap();
        let (w, h, px) = decode(&c.png);
        assert_eq!((w, h), (c.summary.width, c.summary.height));
        assert!(
            px.chunks(3)
                .any(|p| p == [UNTAGGED.0, UNTAGGED.1, UNTAGGED.2])
        );
    }

    #[test]
    fn empty_answer_still_draws() {
        let c = render(&answer("monthly", vec![])).unwrap();
        assert!(c.summary.groups.is_empty());
        assert_eq!(decode(&c.png).0, WIDTH);
    }

    #[test]
    fn labels_and_money() {
        assert_eq!(
            display_label(
                "arn:aws:iam::123456789012:role/InvoiceAgentRole | claude",
                60
            ),
            "123456789012:role/InvoiceAgentRole | claude"
        );
        assert_eq!(
            display_label(
                "arn:aws:iam::123456789012:role/InvoiceAgentRole | Claude Sonnet 4.6",
                44
            ),
            "…9012:role/Invo…gentRole | Claude Sonnet 4.6"
        );
        assert_eq!(display_label("abcdefghijkl", 5), "ab…hijkl");
        // Two accounts' sessions of one role stay apart at any width.
        let a = "arn:aws:sts::111111111111:assumed-role/InvoiceAgentRole/s1 | Nova Lite";
        let b = "arn:aws:sts::222222222222:assumed-role/InvoiceAgentRole/s1 | Nova Lite";
        for max in [22, 30, 44] {
            let l = display_labels(&[a, b], max);
            assert_ne!(l[0], l[1], "{max}: {l:?}");
        }
        assert_eq!(axis_money(1234.0, "USD", false), "$1,234");
        assert_eq!(axis_money(-2.5, "USD", true), "-$2.50");
        assert_eq!(axis_money(10.0, "EUR", false), "10 EUR");
    }
}
