//! Bulk recovery: pick a webhook and a time window, see how many deliveries match, start the
//! re-send as a job and watch its progress.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::layout::use_can_write;
use crate::components::{format::parse_datetime_local, resource::server_resource};
use crate::{
    api::{
        deliveries::{bulk_retry, get_job},
        webhooks::list_webhooks,
    },
    models::{BulkRetryFilter, DeliveryStatus, Job, JobId},
};

/// The delivery log showing what is still failing among what a job's filter selects: its
/// webhook and its window, not the whole log.
fn still_failing(params: &serde_json::Value) -> String {
    let mut link = "/?status=failed".to_owned();
    for key in ["webhook_id", "since", "until"] {
        if let Some(v) = params[key].as_str() {
            link.push_str(&format!("&{key}={}", v.replace('+', "%2B").replace(':', "%3A")));
        }
    }
    link
}

#[component]
pub fn RecoverPage() -> impl IntoView {
    let query = use_query_map();
    let webhooks = server_resource(|| (), |_| list_webhooks());
    let can_write = use_can_write();
    let webhook = RwSignal::new(query.read_untracked().get("webhook_id").unwrap_or_default());
    let since = RwSignal::new(query.read_untracked().get("since").unwrap_or_default());
    let until = RwSignal::new(String::new());
    let failed = RwSignal::new(true);
    let held = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let matching = RwSignal::new(None::<u64>);
    let job = RwSignal::new(None::<Job>);

    let filter = move || -> Result<BulkRetryFilter, String> {
        let webhook_id = match webhook.get_untracked() {
            w if w.is_empty() => None,
            w => Some(w.parse().map_err(|_| "Pick a webhook from the list.".to_owned())?),
        };
        let time = |v: String, what: &str| match v.trim() {
            "" => Ok(None),
            t => parse_datetime_local(t)
                .map(Some)
                .ok_or_else(|| format!("{what}: give a date and time (UTC).")),
        };
        let mut status = Vec::new();
        if failed.get_untracked() {
            status.push(DeliveryStatus::Failed);
        }
        if held.get_untracked() {
            status.push(DeliveryStatus::Held);
        }
        if status.is_empty() {
            return Err("Choose failed, held or both.".into());
        }
        Ok(BulkRetryFilter {
            webhook_id,
            status: Some(status),
            since: time(since.get_untracked(), "From")?,
            until: time(until.get_untracked(), "Until")?,
            ..Default::default()
        })
    };
    let count = Action::new(move |f: &BulkRetryFilter| {
        let f = f.clone();
        async move {
            match bulk_retry(f, false).await {
                Ok(a) => {
                    error.set(None);
                    matching.set(Some(a.matching));
                }
                Err(e) => {
                    matching.set(None);
                    error.set(Some(e.to_string()));
                }
            }
        }
    });
    let follow = Action::new(move |id: &JobId| {
        let id = *id;
        async move {
            for _ in 0..600 {
                super::sleep(std::time::Duration::from_millis(500)).await;
                match get_job(id).await {
                    Ok(j) => {
                        // Done once the job has queued everything and nothing it queued waits.
                        let queued = j.status == "succeeded" || j.status == "failed";
                        let done = queued && j.outcome.is_none_or(|o| o.pending == 0);
                        job.set(Some(j));
                        if done {
                            return;
                        }
                    }
                    Err(e) => {
                        error.set(Some(e.to_string()));
                        return;
                    }
                }
            }
        }
    });
    let start = Action::new(move |f: &BulkRetryFilter| {
        let f = f.clone();
        async move {
            match bulk_retry(f, true).await {
                Ok(a) => {
                    error.set(None);
                    matching.set(Some(a.matching));
                    if let Some(j) = a.job {
                        let id = j.id;
                        job.set(Some(j));
                        follow.dispatch(id);
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        }
    });
    let on_count = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        job.set(None);
        match filter() {
            Ok(f) => {
                count.dispatch(f);
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let on_start = move |_| match filter() {
        Ok(f) => {
            start.dispatch(f);
        }
        Err(e) => error.set(Some(e)),
    };

    view! {
        <Title text="Recover"/>
        <h1>"Recover failed deliveries"</h1>
        <p class="muted">"Everything that failed while a receiver was down, sent again: choose the webhook and the window, check the count, start."</p>
        <form class="card form" on:submit=on_count data-test="recover-form">
            <label for="rc-webhook">"Webhook"</label>
            <Transition fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
                {move || webhooks.get().map(|r| match r {
                    Ok(list) => view! {
                        <select id="rc-webhook" data-test="recover-webhook" on:change=move |ev| { webhook.set(event_target_value(&ev)); matching.set(None); }>
                            <option value="">"All active webhooks"</option>
                            {list.into_iter().map(|w| {
                                let id = w.webhook.id.to_string();
                                let selected = webhook.get_untracked() == id;
                                view! { <option value=id selected=selected>{w.webhook.name}" — "{w.webhook.url}</option> }
                            }).collect_view()}
                        </select>
                    }.into_any(),
                    Err(e) => view! { <p class="alert error">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
            <div class="row">
                <div>
                    <label for="rc-since">"From (UTC)"</label>
                    <input id="rc-since" type="datetime-local" data-test="recover-since" prop:value=move || since.get()
                        on:input=move |ev| { since.set(event_target_value(&ev)); matching.set(None); }/>
                </div>
                <div>
                    <label for="rc-until">"Until (UTC)"</label>
                    <input id="rc-until" type="datetime-local" data-test="recover-until" prop:value=move || until.get()
                        on:input=move |ev| { until.set(event_target_value(&ev)); matching.set(None); }/>
                </div>
            </div>
            <fieldset>
                <legend>"Deliveries that are"</legend>
                <label class="check"><input type="checkbox" prop:checked=move || failed.get() on:change=move |ev| { failed.set(event_target_checked(&ev)); matching.set(None); }/>" Failed"</label>
                <label class="check"><input type="checkbox" prop:checked=move || held.get() on:change=move |ev| { held.set(event_target_checked(&ev)); matching.set(None); }/>" Held"</label>
            </fieldset>
            {move || error.get().map(|e| view! { <p class="alert error" role="alert" data-test="recover-error">{e}</p> })}
            <div class="row-actions">
                <button type="submit" data-test="recover-count">"Count matching"</button>
                <Show when=move || can_write.get() && matching.get().is_some_and(|n| n > 0) && job.get().is_none()>
                    <button type="button" class="primary" data-test="recover-start" on:click=on_start>
                        {move || format!("Re-send {} deliveries", matching.get().unwrap_or(0))}
                    </button>
                </Show>
            </div>
            <p role="status" aria-live="polite" data-test="recover-matching">
                {move || matching.get().map(|n| format!("{n} deliveries match."))}
            </p>
        </form>
        {move || job.get().map(|j| {
            let total = j.progress_total.unwrap_or(0).max(j.progress_done);
            view! {
                <section class="card" data-test="recover-job" aria-live="polite">
                    <h2>"Re-send job"</h2>
                    <progress max=total.max(1) value=j.progress_done aria-label="Progress"></progress>
                    <p data-test="recover-progress">{format!("{} of {} queued again{}", j.progress_done, total,
                        match j.status.as_str() { "succeeded" => "", "failed" => " · the job failed", _ => " · queueing…" })}</p>
                    {j.outcome.map(|o| view! {
                        <p data-test="recover-outcome">
                            <strong>{o.delivered}</strong>" delivered · "<strong>{o.failed}</strong>" failed again · "
                            <strong>{o.pending}</strong>{if o.pending > 0 { " still on their way" } else { " waiting" }}
                        </p>
                    })}
                    {j.error.map(|e| view! { <p class="alert error">{e}</p> })}
                    <p><a href=still_failing(&j.params) data-test="still-failing">"See what is still failing"</a></p>
                </section>
            }
        })}
    }
}
