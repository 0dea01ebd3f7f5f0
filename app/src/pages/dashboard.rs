//! The dashboard: success rate and response times over the last hour and day, webhooks in
//! trouble first.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::{
        deliveries::get_log_choices,
        settings::{get_dashboard, get_timeline},
    },
    components::{
        chart::{LineChart, Series},
        format::{percent, timestamp},
        resource::server_resource,
        status_badge::WebhookStateBadge,
    },
    models::{Timeline, WebhookId},
};

/// A time as the charts' axis and table write it: `HH:MM` (UTC).
fn clock(at: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// Success rate and p50 / p95 / p99 response times over the last hour or day, for all webhooks
/// or one, drawn and tabled.
#[component]
fn Timelines() -> impl IntoView {
    let day = RwSignal::new(false);
    let webhook = RwSignal::new(None::<WebhookId>);
    let timeline = server_resource(move || (webhook.get(), day.get()), |(w, d)| get_timeline(w, d));
    let choices = server_resource(|| (), |_| get_log_choices());
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || timeline.refetch(), std::time::Duration::from_secs(30))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let charts = move |t: Timeline| {
        let first = t.buckets.first().map(|b| clock(b.start)).unwrap_or_default();
        let last = "now".to_owned();
        // Per mille, so the path is drawn in whole numbers.
        let rate = t
            .buckets
            .iter()
            .map(|b| (b.attempts > 0).then(|| (b.successes * 1000 / b.attempts) as i64))
            .collect();
        let ms = |f: fn(&crate::models::TimelineBucket) -> Option<i32>| {
            t.buckets.iter().map(|b| f(b).map(i64::from)).collect::<Vec<_>>()
        };
        let rows = t.buckets.clone();
        view! {
            <div class="charts">
                <LineChart title="Success rate".into() floor=1000 top_label=|_| "100%".to_owned()
                    first=first.clone() last=last.clone()
                    series=vec![Series { name: "success rate", class: "line-ok", values: rate }]/>
                <LineChart title="Response time".into() floor=10 top_label=|top| format!("{top} ms")
                    first last
                    series=vec![
                        Series { name: "p50", class: "line-p50", values: ms(|b| b.p50_ms) },
                        Series { name: "p95", class: "line-p95", values: ms(|b| b.p95_ms) },
                        Series { name: "p99", class: "line-p99", values: ms(|b| b.p99_ms) },
                    ]/>
            </div>
            <details class="small">
                <summary>"The figures"</summary>
                <div class="table-wrap">
                    <table class="data" data-test="timeline">
                        <caption class="visually-hidden">"Attempts by time (UTC)"</caption>
                        <thead><tr><th scope="col">"From (UTC)"</th><th scope="col">"Attempts"</th><th scope="col">"Success"</th><th scope="col">"p50"</th><th scope="col">"p95"</th><th scope="col">"p99"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|b| {
                                let ms = |v: Option<i32>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into());
                                view! {
                                    <tr data-test="timeline-row">
                                        <td>{clock(b.start)}</td>
                                        <td>{b.attempts}{b.sampled.then_some("+ (the newest measured)")}</td>
                                        <td>{percent(b.successes, b.attempts)}</td>
                                        <td>{ms(b.p50_ms)}</td><td>{ms(b.p95_ms)}</td><td>{ms(b.p99_ms)}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </details>
        }
    };
    view! {
        <section aria-labelledby="over-time" data-test="timelines">
            <h2 id="over-time">"Over time"</h2>
            <div class="filters">
                <div class="filter">
                    <label for="chart-span">"Period"</label>
                    <select id="chart-span" data-test="chart-span" on:change=move |ev| day.set(event_target_value(&ev) == "day")>
                        <option value="hour" selected=true>"Last hour, 5-minute steps"</option>
                        <option value="day">"Last 24 hours, hourly"</option>
                    </select>
                </div>
                <Transition>
                    {move || choices.get().map(|c| view! {
                        <div class="filter">
                            <label for="chart-webhook">"Webhook"</label>
                            <select id="chart-webhook" data-test="chart-webhook" on:change=move |ev| webhook.set(event_target_value(&ev).parse().ok())>
                                <option value="" selected=true>"All webhooks"</option>
                                {c.unwrap_or_default().webhooks.into_iter().map(|(id, name)| view! {
                                    <option value=id.to_string()>{name}</option>
                                }).collect_view()}
                            </select>
                        </div>
                    })}
                </Transition>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || timeline.get().map(|r| match r {
                    Ok(t) => charts(t).into_any(),
                    Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = server_resource(|| (), |_| get_dashboard());
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || data.refetch(), std::time::Duration::from_secs(10))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let ms = |v: Option<i32>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(d) => view! {
                    <section class="cards" data-test="dashboard-windows">
                        {d.windows.iter().map(|w| view! {
                            <div class="card stat">
                                <h2 class="small muted">{w.label.clone()}</h2>
                                <div class="big" data-test="success-rate">{percent(w.successes, w.attempts)}</div>
                                <div class="muted small">{format!("success of {} attempts", w.attempts)}</div>
                                <div class="small">"p50 "{ms(w.p50_ms)}" · p95 "{ms(w.p95_ms)}" · p99 "{ms(w.p99_ms)}</div>
                            </div>
                        }).collect_view()}
                        <div class="card stat">
                            <h2 class="small muted">"Queued now"</h2>
                            <div class="big">{d.queued}</div>
                            <div class="muted small">"pending or retrying"</div>
                        </div>
                        <div class="card stat">
                            <h2 class="small muted">"Held"</h2>
                            <div class="big" data-test="held">{d.held}</div>
                            <div class="muted small">"for stopped or deactivated webhooks, sent only when they are recovered"</div>
                        </div>
                    </section>
                }.into_any(),
            })}
        </Transition>
        // Outside the figures above, which reload every 10 s: the charts keep their choices.
        <Timelines/>
        <Transition fallback=|| ()>
            {move || data.get().and_then(Result::ok).map(|d| view! {
                    <h2>"Webhooks, failing first"</h2>
                    <div class="table-wrap">
                        <table class="data" data-test="dashboard-webhooks">
                            <caption class="visually-hidden">"Webhooks, failing first"</caption>
                            <thead><tr><th scope="col">"Webhook"</th><th scope="col">"State"</th><th scope="col">"Errors in a row"</th><th scope="col">"Last error"</th><th scope="col">"Last success"</th></tr></thead>
                            <tbody>
                                {d.webhooks.into_iter().map(|w| view! {
                                    <tr>
                                        <td><a href=format!("/webhooks/{}", w.webhook.id)>{w.webhook.name}</a></td>
                                        <td><WebhookStateBadge state=w.webhook.state/></td>
                                        <td>{w.usage.consecutive_errors}</td>
                                        <td class="small">{w.usage.last_error.unwrap_or_else(|| "—".into())}{w.usage.last_error_at.map(|t| format!(" · {}", timestamp(t)))}</td>
                                        <td>{w.usage.last_success_at.map(timestamp).unwrap_or_else(|| "—".into())}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
            })}
        </Transition>
    }
}
