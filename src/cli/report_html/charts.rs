//! The report's charts as numbers: the geometry of each SVG and the colour of each mark,
//! computed here and drawn by the macros of `templates/report/charts.html`. Labels stay
//! borrowed text from the posture; the template escapes them.

use std::fmt;

use crate::domain::posture::{Count, Posture, ROTATION_DAYS};

pub(super) const OK: &str = "#2e7d32";
pub(super) const BAD: &str = "#c62828";
pub(super) const WARN: &str = "#ef6c00";
pub(super) const INFO: &str = "#1565c0";
pub(super) const MUTED: &str = "#757575";

/// A coordinate or length in an SVG's user units, written with one decimal.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub(super) struct Px(pub(super) f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

/// Horizontal bars, one per count (`charts::bars`).
pub(super) struct BarChart<'a> {
    pub(super) title: &'static str,
    pub(super) width: Px,
    pub(super) height: Px,
    pub(super) bars: Vec<Bar<'a>>,
}

pub(super) struct Bar<'a> {
    pub(super) label: &'a str,
    pub(super) count: usize,
    pub(super) label_x: Px,
    pub(super) text_y: Px,
    pub(super) x: Px,
    pub(super) y: Px,
    pub(super) width: Px,
    pub(super) height: Px,
    pub(super) count_x: Px,
    pub(super) fill: &'static str,
}

impl<'a> BarChart<'a> {
    /// Bars scaled to the largest count.
    pub(super) fn new(
        title: &'static str,
        counts: &'a [Count],
        color: impl Fn(&Count) -> &'static str,
    ) -> Self {
        let max = counts.iter().map(|c| c.count).max().unwrap_or(0).max(1);
        let (label_w, bar_w, row_h) = (190.0, 520.0, 24.0);
        let bars = counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let y = 4.0 + row_h * i as f64;
                let w = bar_w * c.count as f64 / max as f64;
                Bar {
                    label: &c.label,
                    count: c.count,
                    label_x: Px(label_w - 8.0),
                    text_y: Px(y + 14.0),
                    x: Px(label_w),
                    y: Px(y),
                    width: Px(w),
                    height: Px(row_h - 6.0),
                    count_x: Px(label_w + w + 6.0),
                    fill: color(c),
                }
            })
            .collect();
        BarChart {
            title,
            width: Px(label_w + bar_w + 60.0),
            height: Px(row_h * counts.len().max(1) as f64 + 8.0),
            bars,
        }
    }
}

/// Vertical histogram of key ages with the rotation line between its buckets
/// (`charts::age_histogram`).
pub(super) struct AgeHistogram<'a> {
    pub(super) rotation_days: i64,
    pub(super) width: Px,
    pub(super) height: Px,
    pub(super) left: Px,
    pub(super) right: Px,
    pub(super) bottom: Px,
    pub(super) axis: &'static str,
    pub(super) columns: Vec<Column<'a>>,
    pub(super) line_x: Px,
    pub(super) line_label_x: Px,
    pub(super) line: &'static str,
}

pub(super) struct Column<'a> {
    pub(super) label: &'a str,
    pub(super) count: usize,
    pub(super) x: Px,
    pub(super) y: Px,
    pub(super) width: Px,
    pub(super) height: Px,
    pub(super) fill: &'static str,
    pub(super) center_x: Px,
    pub(super) label_y: Px,
    pub(super) count_y: Px,
}

impl<'a> AgeHistogram<'a> {
    pub(super) fn new(buckets: &'a [Count]) -> Self {
        let max = buckets.iter().map(|c| c.count).max().unwrap_or(0).max(1);
        let (left, bottom, col_w, plot_h) = (40.0, 200.0, 90.0, 170.0);
        let width = left + col_w * buckets.len() as f64 + 20.0;
        let columns = buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let h = plot_h * b.count as f64 / max as f64;
                let x = left + col_w * i as f64 + 8.0;
                Column {
                    label: &b.label,
                    count: b.count,
                    x: Px(x),
                    y: Px(bottom - h),
                    width: Px(col_w - 16.0),
                    height: Px(h),
                    // Buckets are [0,30), [30,60), [60,90): the first three are within the line.
                    fill: if i < 3 { OK } else { BAD },
                    center_x: Px(x + (col_w - 16.0) / 2.0),
                    label_y: Px(bottom + 16.0),
                    count_y: Px(bottom - h - 4.0),
                }
            })
            .collect();
        let line_x = left + col_w * 3.0;
        AgeHistogram {
            rotation_days: ROTATION_DAYS,
            width: Px(width),
            height: Px(230.0),
            left: Px(left),
            right: Px(width - 10.0),
            bottom: Px(bottom),
            axis: MUTED,
            columns,
            line_x: Px(line_x),
            line_label_x: Px(line_x + 6.0),
            line: BAD,
        }
    }
}

/// Certificates on a days-left axis, with the notification ladder as vertical lines
/// (`charts::cert_timeline`).
pub(super) struct CertTimeline<'a> {
    pub(super) width: Px,
    pub(super) height: Px,
    pub(super) top: Px,
    pub(super) bottom: Px,
    pub(super) expiry_x: Px,
    pub(super) expiry_label_y: Px,
    pub(super) expiry: &'static str,
    pub(super) ladder: Vec<Rung>,
    pub(super) ladder_label_y: Px,
    pub(super) rung: &'static str,
    pub(super) dots: Vec<Dot<'a>>,
}

pub(super) struct Rung {
    pub(super) x: Px,
    pub(super) days: u32,
}

pub(super) struct Dot<'a> {
    pub(super) domain: &'a str,
    pub(super) days: i64,
    pub(super) why: &'static str,
    pub(super) label_x: Px,
    pub(super) label_y: Px,
    pub(super) cx: Px,
    pub(super) cy: Px,
    pub(super) fill: &'static str,
}

impl<'a> CertTimeline<'a> {
    pub(super) fn new(p: &'a Posture) -> Self {
        let dated: Vec<_> = p
            .certificates
            .iter()
            .filter_map(|c| c.days_left.map(|d| (c, d)))
            .collect();
        let ladder_max = p.ladder_days.iter().copied().max().unwrap_or(45) as i64;
        let lo = dated.iter().map(|(_, d)| *d).min().unwrap_or(0).min(0) - 5;
        let hi = dated
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(0)
            .max(ladder_max + 15);
        let (left, plot_w, row_h, top) = (220.0, 600.0, 20.0, 24.0);
        let x = |d: i64| Px(left + plot_w * (d - lo) as f64 / (hi - lo).max(1) as f64);
        let height = top + row_h * dated.len().max(1) as f64 + 24.0;
        let bottom = height - 20.0;
        let dots = dated
            .iter()
            .enumerate()
            .map(|(i, (c, d))| {
                let y = top + row_h * i as f64 + row_h / 2.0;
                Dot {
                    domain: &c.domain,
                    days: *d,
                    why: c.diagnosis.as_str(),
                    label_x: Px(left - 10.0),
                    label_y: Px(y + 4.0),
                    cx: x(*d),
                    cy: Px(y),
                    fill: if *d <= 0 {
                        BAD
                    } else if c.step.is_some() {
                        WARN
                    } else {
                        OK
                    },
                }
            })
            .collect();
        CertTimeline {
            width: Px(left + plot_w + 40.0),
            height: Px(height),
            top: Px(top),
            bottom: Px(bottom),
            expiry_x: x(0),
            expiry_label_y: Px(top - 8.0),
            expiry: BAD,
            ladder: p
                .ladder_days
                .iter()
                .map(|d| Rung {
                    x: x(i64::from(*d)),
                    days: *d,
                })
                .collect(),
            ladder_label_y: Px(bottom + 14.0),
            rung: WARN,
            dots,
        }
    }
}
