use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::deliveries::list_deliveries,
    components::{
        format::{duration_ms, timestamp},
        status_badge::StatusBadge,
    },
    models::{DeliveryQuery, DeliveryRow},
};

/// The home page: every delivery, newest first.
#[component]
pub fn DeliveryLogPage() -> impl IntoView {
    let query_map = use_query_map();
    let query = move || {
        let q = query_map.read();
        DeliveryQuery {
            q: q.get("q"),
            status: q.get("status").and_then(|s| s.parse().ok()),
            category: q.get("category"),
            cursor: q.get("cursor"),
            ..Default::default()
        }
    };
    let page = Resource::new(query, list_deliveries);

    view! {
        <Title text="Delivery log"/>
        <section data-test="delivery-log">
            <h1>"Delivery log"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading deliveries…"</p> }>
                {move || page.get().map(|result| match result {
                    Ok(page) => view! { <DeliveryTable rows=page.items/> }.into_any(),
                    Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DeliveryTable(rows: Vec<DeliveryRow>) -> impl IntoView {
    let empty = rows.is_empty();
    view! {
        <div class="table-wrap">
            <table class="data" data-test="delivery-table">
                <caption class="visually-hidden">"Deliveries, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Webhook"</th>
                        <th scope="col">"Event"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Response code"</th>
                        <th scope="col">"Attempted at"</th>
                        <th scope="col">"Duration"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <Show when=move || empty>
                        <tr>
                            <td colspan="7" class="empty" data-test="delivery-log-empty">
                                "No deliveries yet. Events posted to "<code>"/api/v1/events"</code>
                                " appear here, one row per webhook they are delivered to."
                            </td>
                        </tr>
                    </Show>
                    {rows.into_iter().map(|row| view! {
                        <tr data-test="delivery-row">
                            <td>
                                <div class="strong">{row.webhook_name}</div>
                                <div class="muted small url">{row.webhook_url}</div>
                            </td>
                            <td><code>{row.event_type}</code></td>
                            <td><StatusBadge status=row.status/></td>
                            <td>{row.last_response_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())}</td>
                            <td>{row.last_attempt_at.map(timestamp).unwrap_or_else(|| "—".into())}</td>
                            <td>{row.last_duration_ms.map(duration_ms).unwrap_or_else(|| "—".into())}</td>
                            <td></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
