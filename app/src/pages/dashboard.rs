//! The dashboard: success rate and response times over the last hour and day, webhooks in
//! trouble first.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::settings::get_dashboard,
    components::{
        format::{percent, timestamp},
        resource::server_resource,
        status_badge::WebhookStateBadge,
    },
};

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
                                        <td class="small">{w.usage.last_error.unwrap_or_else(|| "—".into())}</td>
                                        <td>{w.usage.last_success_at.map(timestamp).unwrap_or_else(|| "—".into())}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            })}
        </Transition>
    }
}
