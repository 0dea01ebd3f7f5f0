//! A line chart drawn as inline SVG: a few series over the same steps, a gap where a step has no
//! value. Coordinates are whole numbers, so no float formatting reaches the browser bundle.

use leptos::prelude::*;

/// The drawing's size in SVG units; it scales to the width of its box.
const WIDTH: i64 = 600;
const HEIGHT: i64 = 160;
/// Room kept free above the highest value and below zero.
const PAD: i64 = 8;

/// One line: its name in the legend, the CSS class that colours it, a value per step.
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
    pub values: Vec<Option<i64>>,
}

/// The `d` of an SVG path through `values` scaled to `top`: a new segment after every gap, and a
/// lone value drawn as a short dash so it shows.
fn path(values: &[Option<i64>], top: i64) -> String {
    let n = values.len().max(2) as i64 - 1;
    let x = |i: usize| i as i64 * WIDTH / n;
    let y = |v: i64| HEIGHT - PAD - v.clamp(0, top) * (HEIGHT - 2 * PAD) / top.max(1);
    let mut d = String::new();
    let mut drawing = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let cmd = if drawing { 'L' } else { 'M' };
                d.push_str(&format!("{cmd}{} {} ", x(i), y(*v)));
                let alone = !drawing && values.get(i + 1).is_none_or(Option::is_none);
                if alone {
                    d.push_str(&format!("h{} ", (WIDTH / n / 4).max(4)));
                }
                drawing = true;
            }
            None => drawing = false,
        }
    }
    d.trim_end().to_owned()
}

/// A chart of `series` from 0 to the highest value (at least `floor`); `top_label` writes that
/// value. The figures themselves are in a table beside it, for reading and for screen readers.
#[component]
pub fn LineChart(
    title: String,
    series: Vec<Series>,
    floor: i64,
    top_label: fn(i64) -> String,
    first: String,
    last: String,
) -> impl IntoView {
    let top = series.iter().flat_map(|s| s.values.iter().flatten()).copied().max().unwrap_or(0).max(floor);
    view! {
        <figure class="chart">
            <figcaption class="strong">{title.clone()}</figcaption>
            <div class="chart-area">
                <span class="chart-top muted small">{top_label(top)}</span>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none" role="img" aria-label=title>
                    <line class="chart-axis" x1="0" y1={HEIGHT - PAD} x2=WIDTH y2={HEIGHT - PAD}/>
                    {series.iter().map(|s| view! {
                        <path class=format!("chart-line {}", s.class) d=path(&s.values, top)/>
                    }).collect_view()}
                </svg>
                <div class="chart-times muted small"><span>{first}</span><span>{last}</span></div>
            </div>
            <ul class="chart-legend small">
                {series.iter().map(|s| view! { <li><span class=format!("swatch {}", s.class)></span>{s.name}</li> }).collect_view()}
            </ul>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::path;

    #[test]
    fn paths_break_at_gaps_and_scale_to_the_top() {
        assert_eq!(path(&[Some(0), Some(100)], 100), "M0 152 L600 8");
        assert_eq!(path(&[Some(50), None, Some(50), Some(50)], 100), "M0 80 h50 M400 80 L600 80");
        assert_eq!(path(&[None, None], 100), "");
        assert_eq!(path(&[Some(7)], 0), "M0 152 h150");
    }
}
