//! One delivery: its request and response (per attempt), the payload, the attempts as a
//! timeline, and Re-send with the new attempt's result shown as soon as it is known.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::layout::use_can_write;
use crate::{
    api::deliveries::{get_delivery, reactivate_and_resend, retry_delivery},
    components::{
        format::{duration_ms, timestamp},
        json::DocumentView,
        resource::server_resource,
        status_badge::{outcome_label, StatusBadge},
    },
    models::{Attempt, DeliveryDetail, DeliveryId, DeliveryStatus},
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Request,
    Response,
}

#[component]
pub fn DeliveryPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<DeliveryId>().ok()));
    let detail = server_resource(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_delivery(id).await,
                None => Err(crate::error::AppError::NotFound("This delivery".into())),
            }
        },
    );
    // Kept here, not in the view below, so it outlives the refetch that shows the new attempt.
    let feedback = RwSignal::new(None::<Result<String, String>>);
    view! {
        <Title text="Delivery"/>
        <p><a href="/">"← Delivery log"</a></p>
        <Transition fallback=|| view! { <p class="muted">"Loading the delivery…"</p> }>
            {move || detail.get().map(|result| match result {
                Ok(d) => view! { <DeliveryView detail=d feedback refetch=move || detail.refetch()/> }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn DeliveryView(
    detail: DeliveryDetail,
    feedback: RwSignal<Option<Result<String, String>>>,
    refetch: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let can_write = use_can_write();
    let d = detail.delivery.clone();
    let id = d.id;
    let attempts = detail.attempts.clone();
    let count = attempts.len();
    let selected = RwSignal::new(count.saturating_sub(1));
    let tab = RwSignal::new(Tab::Response);
    let attempts = StoredValue::new(attempts);

    // Re-send (reactivating its webhook first when it is not active), then follow the delivery
    // until the new attempt is recorded.
    let resend = Action::new(move |&reactivate: &Option<bool>| async move {
        feedback.set(Some(Ok("Re-sending…".into())));
        let queued = match reactivate {
            None => retry_delivery(id).await.map(|_| String::new()),
            Some(recover) => reactivate_and_resend(id, recover).await.map(|n| match n {
                0 => "Webhook reactivated. ".to_owned(),
                1 => "Webhook reactivated; 1 other held or failed delivery is being sent again. ".to_owned(),
                n => {
                    format!("Webhook reactivated; {n} other held or failed deliveries are being sent again. ")
                }
            }),
        };
        let done = match queued {
            Ok(done) => done,
            Err(e) => {
                feedback.set(Some(Err(e.to_string())));
                return;
            }
        };
        for _ in 0..60 {
            super::sleep(std::time::Duration::from_millis(500)).await;
            if let Ok(now) = get_delivery(id).await {
                if now.attempts.len() > count {
                    let a = now.attempts.last().expect("a new attempt");
                    let code = a.response.as_ref().map(|r| format!("{} ", r.status)).unwrap_or_default();
                    let text = format!(
                        "{done}New attempt: {code}{} in {}",
                        outcome_label(a.outcome),
                        duration_ms(a.duration_ms)
                    );
                    feedback.set(Some(if a.outcome == crate::models::Outcome::Success {
                        Ok(text)
                    } else {
                        Err(text)
                    }));
                    refetch();
                    return;
                }
            }
        }
        feedback.set(Some(Err(format!("{done}The new attempt has not finished yet; reload to see it."))));
    });
    let recover = RwSignal::new(true);
    let reactivation = detail.reactivation.clone();
    let retryable = d.status != DeliveryStatus::Succeeded && d.status != DeliveryStatus::Pending;
    let inactive = detail.reactivation.is_some();

    view! {
        <Title text=format!("Delivery {}", d.event_type)/>
        <header class="page-head">
            <div>
                <h1><code>{d.event_type.clone()}</code>" to "<a href=format!("/webhooks/{}", d.webhook_id)>{d.webhook_name.clone()}</a></h1>
                <p class="muted small url">{d.webhook_url.clone()}</p>
            </div>
            <div class="head-actions">
                <StatusBadge status=d.status/>
                <Show when=move || retryable && can_write.get() && !inactive>
                    <button type="button" class="primary" data-test="resend" on:click=move |_| { resend.dispatch(None); }
                        disabled=move || resend.pending().get()>"Re-send"</button>
                </Show>
            </div>
        </header>
        {reactivation.filter(|_| retryable).map(|r| view! {
            <Show when=move || can_write.get()>
                <div class="card" data-test="reactivate-resend">
                    <p>"Its webhook "<strong>{if r.state == crate::models::WebhookState::Stopped { "was stopped" } else { "was deactivated after too many errors" }}</strong>
                        ": it receives nothing until it is reactivated."</p>
                    <label class="check"><input type="checkbox" data-test="also-recover" prop:checked=move || recover.get()
                        on:change=move |ev| recover.set(event_target_checked(&ev))/>
                        {format!(" Also send its {} held and {} failed deliveries since {}", r.held, r.failed, timestamp(r.since))}</label>
                    <button type="button" class="primary" data-test="reactivate-and-resend" disabled=move || resend.pending().get()
                        on:click=move |_| { resend.dispatch(Some(recover.get_untracked())); }>"Reactivate and re-send"</button>
                </div>
            </Show>
        })}
        <p role="status" aria-live="polite" data-test="resend-feedback"
            class=move || match feedback.get() { Some(Ok(_)) => "alert ok", Some(Err(_)) => "alert error", None => "" }>
            {move || feedback.get().map(|r| match r { Ok(t) | Err(t) => t })}
        </p>
        <dl class="facts">
            <dt>"Attempts"</dt><dd>{d.attempt_count}</dd>
            <dt>"Created"</dt><dd>{timestamp(d.created_at)}</dd>
            <dt>"Next attempt"</dt><dd>{detail.next_attempt_at.map(timestamp).unwrap_or_else(|| "—".into())}</dd>
            <dt>"Event id"</dt><dd><code>{d.event_id.to_string()}</code></dd>
        </dl>
        <div class="detail-grid">
            <section aria-labelledby="timeline-title">
                <h2 id="timeline-title">"Attempts"</h2>
                <Show when=move || count == 0>
                    <p class="muted">"Not attempted yet."</p>
                </Show>
                <ol class="timeline" data-test="timeline">
                    {move || attempts.get_value().into_iter().enumerate().map(|(i, a)| view! {
                        <li class:selected=move || selected.get() == i>
                            <button type="button" class="timeline-item" data-test="attempt"
                                aria-pressed=move || (selected.get() == i).to_string()
                                on:click=move |_| selected.set(i)>
                                <span class=format!("dot outcome-{}", a.outcome.as_str())></span>
                                <span class="strong">{format!("#{} ", a.attempt_number)}{outcome_label(a.outcome)}</span>
                                <span class="muted small">
                                    {a.response.as_ref().map(|r| format!("HTTP {} · ", r.status)).unwrap_or_default()}
                                    {duration_ms(a.duration_ms)}" · "{a.trigger.as_str()}" · "{timestamp(a.started_at)}
                                </span>
                            </button>
                        </li>
                    }).collect_view()}
                </ol>
            </section>
            <section aria-label="Request and response">
                <div role="tablist" class="tabs">
                    <button type="button" role="tab" id="tab-request" data-test="tab-request"
                        aria-selected=move || (tab.get() == Tab::Request).to_string()
                        on:click=move |_| tab.set(Tab::Request)>"Request"</button>
                    <button type="button" role="tab" id="tab-response" data-test="tab-response"
                        aria-selected=move || (tab.get() == Tab::Response).to_string()
                        on:click=move |_| tab.set(Tab::Response)>"Response"</button>
                </div>
                {move || {
                    let current: Option<Attempt> = attempts.get_value().get(selected.get()).cloned();
                    match (tab.get(), current) {
                        (Tab::Request, Some(a)) => view! { <RequestPanel attempt=a/> }.into_any(),
                        (Tab::Response, Some(a)) => view! { <ResponsePanel attempt=a/> }.into_any(),
                        (_, None) => view! { <p class="muted" role="tabpanel">"No attempt yet: nothing was sent."</p> }.into_any(),
                    }
                }}
                <h2>"Payload"</h2>
                <DocumentView label="Event payload" text=serde_json::to_string(&detail.payload).unwrap_or_default() test_id="payload"/>
            </section>
        </div>
    }
}

#[component]
fn Headers(headers: std::collections::BTreeMap<String, String>) -> impl IntoView {
    view! {
        <table class="data headers">
            <caption class="visually-hidden">"Headers"</caption>
            <thead><tr><th scope="col">"Header"</th><th scope="col">"Value"</th></tr></thead>
            <tbody>
                {headers.into_iter().map(|(k, v)| view! { <tr><td><code>{k}</code></td><td class="wrap"><code>{v}</code></td></tr> }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn RequestPanel(attempt: Attempt) -> impl IntoView {
    let r = attempt.request;
    view! {
        <div role="tabpanel" aria-labelledby="tab-request" data-test="request-panel">
            <p><code class="strong">{r.method}" "{r.url}</code></p>
            <Headers headers=r.headers/>
            {r.body.map(|b| view! { <DocumentView label="Request body" text=b test_id="request-body"/> })}
        </div>
    }
}

#[component]
fn ResponsePanel(attempt: Attempt) -> impl IntoView {
    view! {
        <div role="tabpanel" aria-labelledby="tab-response" data-test="response-panel">
            {match attempt.response {
                Some(r) => view! {
                    <p><span class="strong" data-test="response-status">{format!("HTTP {}", r.status)}</span>
                       " · "{outcome_label(attempt.outcome)}" · "{duration_ms(attempt.duration_ms)}</p>
                    <Headers headers=r.headers/>
                    {match r.body {
                        Some(b) if !b.is_empty() => view! { <DocumentView label="Response body" text=b test_id="response-body"/> }.into_any(),
                        _ => view! { <p class="muted">"Empty body."</p> }.into_any(),
                    }}
                    {r.body_truncated.then(|| view! { <p class="muted small">"The body was cut at the configured size limit."</p> })}
                }.into_any(),
                None => view! {
                    <p class="alert error" data-test="response-status">
                        {outcome_label(attempt.outcome)}": "{attempt.error.unwrap_or_else(|| "no answer".into())}
                    </p>
                }.into_any(),
            }}
        </div>
    }
}
