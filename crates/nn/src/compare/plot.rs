//! The loss curves of a comparison as an SVG: one panel per task, one line per policy,
//! each curve a trailing moving average whose window the panel states.

use super::{PolicyChoice, RunSummary};

/// The loss curves of `runs` as an SVG: one panel per task, one line per policy, loss on a
/// log scale. Each curve is the trailing moving average of the per-step training loss
/// over [`smoothing_window`] steps (2% of the run: it smooths the batch noise); each
/// panel says so under its title.
pub fn svg_loss_plot(runs: &[RunSummary]) -> String {
    const COLORS: [&str; 6] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let mut tasks: Vec<&str> = Vec::new();
    for r in runs {
        if !tasks.contains(&r.task.as_str()) {
            tasks.push(&r.task);
        }
    }
    let (pw, ph, margin) = (520.0, 340.0, 60.0);
    let width = pw * tasks.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        ph + 40.0
    );
    for (ti, task) in tasks.iter().enumerate() {
        let x0 = ti as f64 * pw;
        let series: Vec<(&RunSummary, Vec<f64>)> = runs
            .iter()
            .filter(|r| r.task == *task)
            .map(|r| {
                (
                    r,
                    smooth(&r.records.iter().map(|s| s.loss).collect::<Vec<_>>()),
                )
            })
            .collect();
        let finite = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = finite.fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo.log10().floor(), hi.log10().ceil())
        } else {
            (-3.0, 1.0)
        };
        let steps = series
            .iter()
            .map(|(_, v)| v.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let (left, top, w, h) = (x0 + margin, 36.0, pw - margin - 20.0, ph - 76.0);
        let px = |i: usize| left + w * i as f64 / (steps - 1) as f64;
        let py = |v: f64| top + h * (hi - v.log10().clamp(lo, hi)) / (hi - lo);
        svg.push_str(&format!(
            "<text x=\"{left}\" y=\"14\" font-size=\"14\" font-weight=\"bold\">{task}: training loss</text>\n<text x=\"{left}\" y=\"26\" font-size=\"10\" fill=\"#555\">{}</text>\n<rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#888\"/>\n",
            smoothing_label(steps)
        ));
        let mut e = lo as i32;
        while f64::from(e) <= hi {
            let y = py(10f64.powi(e));
            svg.push_str(&format!(
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{e}</text>\n",
                left + w,
                left - 6.0,
                y + 4.0
            ));
            e += 1;
        }
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step (0..{})</text>\n",
            left + w / 2.0,
            top + h + 20.0,
            steps - 1
        ));
        for (k, (r, v)) in series.iter().enumerate() {
            let color = COLORS[PolicyChoice::ALL
                .iter()
                .position(|p| *p == r.policy)
                .unwrap_or(k)
                % COLORS.len()];
            let pts: Vec<String> = v
                .iter()
                .enumerate()
                .filter(|(_, x)| x.is_finite() && **x > 0.0)
                .map(|(i, x)| format!("{:.1},{:.1}", px(i), py(*x)))
                .collect();
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                pts.join(" ")
            ));
            let ly = top + h + 38.0 + 0.0 * k as f64;
            let lx = left + (k % 3) as f64 * (w / 3.0);
            let ly = ly - if k < 3 { 0.0 } else { -14.0 } - 14.0;
            svg.push_str(&format!(
                "<line x1=\"{lx}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                lx + 18.0,
                lx + 22.0,
                ly + 4.0,
                r.policy.name()
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The moving average's window for a run of `steps` steps: 2% of them, at least 1.
pub fn smoothing_window(steps: usize) -> usize {
    (steps / 50).max(1)
}

/// What a panel's curves show, e.g. `"trailing mean of the last 12 steps' loss (2% of
/// the run); log scale"`.
fn smoothing_label(steps: usize) -> String {
    match smoothing_window(steps) {
        1 => "per-step loss, not smoothed (runs under 100 steps); log scale".to_string(),
        k => format!("trailing mean of the last {k} steps' loss (2% of the run); log scale"),
    }
}

/// Trailing moving average over [`smoothing_window`] points (the first points average
/// what there is).
fn smooth(v: &[f64]) -> Vec<f64> {
    let k = smoothing_window(v.len());
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= k {
            sum -= v[i - k];
        }
        out.push(sum / (i + 1).min(k) as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_trails_over_two_percent_of_the_run() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        let s = smooth(&v);
        assert_eq!(smoothing_window(100), 2);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[1], 0.5);
        assert_eq!(s[99], 98.5);
        assert_eq!(smooth(&[3.0, 5.0]), vec![3.0, 5.0]);
    }

    #[test]
    fn each_panel_states_its_smoothing() {
        assert_eq!(
            smoothing_label(600),
            "trailing mean of the last 12 steps' loss (2% of the run); log scale"
        );
        assert!(smoothing_label(40).contains("not smoothed"));
    }
}
