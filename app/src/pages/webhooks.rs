//! Webhooks: the list with state and usage, the create form, and one webhook's page with its
//! usage, secret, last deliveries, stop/start and reactivation with recovery.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::{deliveries::DeliveryTable, layout::use_can_write};
use crate::{
    api::{
        deliveries::retry_delivery,
        webhooks::{
            create_webhook, get_webhook, list_webhooks, reactivate_webhook, reveal_secret, rotate_secret,
            send_test_event, skip_blocked, update_webhook,
        },
    },
    components::{
        copy::CopyButton, format::timestamp, resource::server_resource, status_badge::WebhookStateBadge,
    },
    error::AppError,
    models::{Webhook, WebhookAuth, WebhookCreate, WebhookId, WebhookPatch, WebhookState, WebhookWithUsage},
};

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let list = server_resource(|| (), |_| list_webhooks());
    let can_write = use_can_write();
    view! {
        <Title text="Webhooks"/>
        <header class="page-head">
            <h1>"Webhooks"</h1>
            <Show when=move || can_write.get()>
                <a href="/webhooks/new" class="button primary" data-test="new-webhook">"New webhook"</a>
            </Show>
        </header>
        <Transition fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
            {move || list.get().map(|r| match r {
                Ok(rows) => view! { <WebhookTable rows/> }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn WebhookTable(rows: Vec<WebhookWithUsage>) -> impl IntoView {
    let empty = rows.is_empty();
    view! {
        <div class="table-wrap">
            <table class="data" data-test="webhook-table">
                <caption class="visually-hidden">"Webhooks by name"</caption>
                <thead><tr>
                    <th scope="col">"Webhook"</th><th scope="col">"State"</th><th scope="col">"Event types"</th>
                    <th scope="col">"Calls"</th><th scope="col">"Errors"</th><th scope="col">"Last success"</th>
                </tr></thead>
                <tbody>
                    <Show when=move || empty>
                        <tr><td colspan="6" class="empty">"No webhooks yet."</td></tr>
                    </Show>
                    {rows.into_iter().map(|w| view! {
                        <tr data-test="webhook-row">
                            <td>
                                <a class="strong" href=format!("/webhooks/{}", w.webhook.id)>{w.webhook.name.clone()}</a>
                                <div class="muted small url">{w.webhook.url.clone()}</div>
                            </td>
                            <td><WebhookStateBadge state=w.webhook.state/></td>
                            <td><code>{w.webhook.event_types.join(", ")}</code></td>
                            <td>{w.usage.total_calls}</td>
                            <td>{w.usage.total_errors}{(w.usage.consecutive_errors > 0).then(|| format!(" ({} in a row)", w.usage.consecutive_errors))}</td>
                            <td>{w.usage.last_success_at.map(timestamp).unwrap_or_else(|| "—".into())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// One labelled text box of the webhook form, its hint and its validation message: one piece
/// of code for every box (each hand-written box cost its own ~150 B of WASM).
struct TextField {
    id: &'static str,
    label: &'static str,
    /// The field whose validation errors show under it.
    field: &'static str,
    kind: &'static str,
    inputmode: Option<&'static str>,
    placeholder: Option<&'static str>,
    required: bool,
    hint: Option<&'static str>,
}

const TEXT: TextField = TextField {
    id: "",
    label: "",
    field: "",
    kind: "text",
    inputmode: None,
    placeholder: None,
    required: false,
    hint: None,
};

impl TextField {
    fn view(self, value: RwSignal<String>, error: RwSignal<Option<AppError>>) -> impl IntoView {
        let TextField { id, label, field, kind, inputmode, placeholder, required, hint } = self;
        let described = move || {
            matches!(error.get(), Some(AppError::Invalid { field: ref f, .. }) if f == field)
                .then(|| format!("{field}-error"))
        };
        view! {
            <label for=id>{label}</label>
            <input id=id type=kind inputmode=inputmode placeholder=placeholder required=required
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                aria-describedby=described/>
            {hint.map(|h| view! { <p class="muted small">{h}</p> })}
            {field_error(error, field)}
        }
    }
}

/// A field's validation message, placed under it and tied to it with `aria-describedby`.
fn field_error(error: RwSignal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || match error.get() {
        Some(AppError::Invalid { field: f, message })
            if f == field || f.starts_with(&format!("{field}.")) =>
        {
            Some(
                view! { <p class="field-error" id=format!("{field}-error") role="alert" data-test=format!("error-{field}")>{message}</p> },
            )
        }
        _ => None,
    }
}

#[component]
pub fn NewWebhookPage() -> impl IntoView {
    view! {
        <Title text="New webhook"/>
        <p><a href="/webhooks">"← Webhooks"</a></p>
        <h1>"New webhook"</h1>
        <WebhookForm existing=None/>
    }
}

#[component]
pub fn EditWebhookPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<WebhookId>().ok()));
    let data = server_resource(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_webhook(id, 1).await.map(|(w, _, _, _)| w.webhook),
                None => Err(AppError::NotFound("This webhook".into())),
            }
        },
    );
    view! {
        <Title text="Edit webhook"/>
        <Transition fallback=|| view! { <p class="muted">"Loading the webhook…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(w) => view! {
                    <p><a href=format!("/webhooks/{}", w.id)>"← "{w.name.clone()}</a></p>
                    <h1>"Edit webhook"</h1>
                    <WebhookForm existing=Some(w)/>
                }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

/// The non-empty, trimmed items of a list typed into one field.
fn list_of(text: &str, separators: &[char]) -> Vec<String> {
    text.split(separators).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// A whole number typed in `field`'s box (empty: none), or the error to show there.
fn number_in(text: &str, field: &str, message: &str) -> Result<Option<u32>, AppError> {
    match text.trim() {
        "" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| AppError::Invalid { field: field.into(), message: message.into() }),
    }
}

/// Creates a webhook (`existing: None`) or edits one. Editing leaves destination credentials as
/// they are unless a new password or header value is typed.
#[component]
fn WebhookForm(existing: Option<Webhook>) -> impl IntoView {
    use crate::models::WebhookAuthView;
    let editing = existing.as_ref().map(|w| w.id);
    let e = existing.clone();
    let name = RwSignal::new(e.as_ref().map(|w| w.name.clone()).unwrap_or_default());
    let url = RwSignal::new(e.as_ref().map(|w| w.url.clone()).unwrap_or_default());
    let description = RwSignal::new(e.as_ref().map(|w| w.description.clone()).unwrap_or_default());
    let types = RwSignal::new(e.as_ref().map(|w| w.event_types.join(", ")).unwrap_or_else(|| "*".into()));
    let (kind0, user0, header0) = match e.as_ref().map(|w| w.auth.clone()) {
        Some(WebhookAuthView::Basic { username }) => ("basic", username, "X-Api-Key".to_owned()),
        Some(WebhookAuthView::ApiKey { header }) => ("api_key", String::new(), header),
        _ => ("none", String::new(), "X-Api-Key".to_owned()),
    };
    let auth_kind = RwSignal::new(kind0.to_owned());
    let user = RwSignal::new(user0);
    let secret = RwSignal::new(String::new());
    let header = RwSignal::new(header0);
    let timeout =
        RwSignal::new(e.as_ref().map(|w| w.timeout_ms.to_string()).unwrap_or_else(|| "15000".into()));
    let enabled = RwSignal::new(e.as_ref().map(|w| w.enabled).unwrap_or(true));
    let notify = RwSignal::new(e.as_ref().map(|w| w.notify_emails.join(", ")).unwrap_or_default());
    let notify_on_failing = RwSignal::new(e.as_ref().map(|w| w.notify_on_failing).unwrap_or(false));
    let ordered = RwSignal::new(e.as_ref().is_some_and(|w| w.ordered));
    let rate =
        RwSignal::new(e.as_ref().and_then(|w| w.rate_limit).map(|n| n.to_string()).unwrap_or_default());
    let error = RwSignal::new(None::<AppError>);
    let created = RwSignal::new(None::<(WebhookId, String)>);
    let saved = RwSignal::new(false);

    let create = Action::new(move |input: &WebhookCreate| {
        let input = input.clone();
        async move {
            match create_webhook(input).await {
                Ok(c) => {
                    error.set(None);
                    created.set(Some((c.webhook.id, c.secret)));
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let update = Action::new(move |(id, patch): &(WebhookId, WebhookPatch)| {
        let (id, patch) = (*id, patch.clone());
        async move {
            match update_webhook(id, patch).await {
                Ok(_) => {
                    error.set(None);
                    saved.set(true);
                }
                Err(e) => error.set(Some(e)),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let numbers = number_in(
            &timeout.get_untracked(),
            "timeout_ms",
            "a whole number of milliseconds, 1000 to 30000",
        )
        .and_then(|t| {
            Ok((
                t,
                number_in(
                    &rate.get_untracked(),
                    "rate_limit",
                    "a whole number of requests per second, or empty for none",
                )?,
            ))
        });
        let (timeout_ms, rate_limit) = match numbers {
            Ok((t, r)) => (t.map(|t| t as i32), r),
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        let kind = auth_kind.get_untracked();
        // Editing: credentials change only when a new secret was typed, or auth was turned off.
        let auth_changed =
            editing.is_none() || kind == "none" && kind0 != "none" || !secret.get_untracked().is_empty();
        let auth = match kind.as_str() {
            "basic" => {
                WebhookAuth::Basic { username: user.get_untracked(), password: secret.get_untracked() }
            }
            "api_key" => {
                WebhookAuth::ApiKey { header: header.get_untracked(), value: secret.get_untracked() }
            }
            _ => WebhookAuth::None,
        };
        let event_types = list_of(&types.get_untracked(), &[',', '\n']);
        let notify_emails = list_of(&notify.get_untracked(), &[',', ';', '\n', ' ']);
        match editing {
            None => {
                create.dispatch(WebhookCreate {
                    name: name.get_untracked(),
                    url: url.get_untracked(),
                    description: description.get_untracked(),
                    event_types,
                    auth,
                    headers: Default::default(),
                    timeout_ms,
                    retry_schedule: None,
                    notify_emails: notify_emails.clone(),
                    notify_on_failing: notify_on_failing.get_untracked(),
                    rate_limit,
                    rate_limit_burst: None,
                    ordered: ordered.get_untracked(),
                    enabled: Some(enabled.get_untracked()),
                });
            }
            Some(id) => {
                update.dispatch((
                    id,
                    WebhookPatch {
                        name: Some(name.get_untracked()),
                        url: Some(url.get_untracked()),
                        description: Some(description.get_untracked()),
                        event_types: Some(event_types),
                        auth: auth_changed.then_some(auth),
                        timeout_ms,
                        notify_emails: Some(notify_emails),
                        notify_on_failing: Some(notify_on_failing.get_untracked()),
                        rate_limit: Some(rate_limit),
                        ordered: Some(ordered.get_untracked()),
                        enabled: Some(enabled.get_untracked()),
                        ..Default::default()
                    },
                ));
            }
        }
    };
    let pending = move || create.pending().get() || update.pending().get();
    view! {
        {move || created.get().map(|(id, s)| view! {
            <div class="card" data-test="created">
                <p class="strong">"Webhook created. Its signing secret is shown here once:"</p>
                <p><code data-test="new-secret">{s.clone()}</code>" "<CopyButton text=s label="Copy secret"/></p>
                <p><a href=format!("/webhooks/{id}") data-test="open-webhook">"Open the webhook"</a></p>
            </div>
        })}
        {move || (saved.get() && editing.is_some()).then(|| view! {
            <p class="alert ok" role="status" data-test="saved">
                "Saved. "<a href=format!("/webhooks/{}", editing.map(|i| i.to_string()).unwrap_or_default())>"Back to the webhook"</a>
            </p>
        })}
        <Show when=move || created.get().is_none()>
            <form class="card form" on:submit=on_submit novalidate data-test="webhook-form">
                {move || match error.get() {
                    Some(e @ AppError::Invalid { .. }) => Some(view! { <p class="alert error">"Please check the field marked below: "{e.to_string()}</p> }.into_any()),
                    Some(e) => Some(view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any()),
                    None => None,
                }}
                {TextField { id: "wh-name", label: "Name", field: "name", required: true, ..TEXT }.view(name, error)}
                {TextField { id: "wh-url", label: "URL", field: "url", kind: "url", required: true,
                    placeholder: Some("https://example.com/webhooks"), ..TEXT }.view(url, error)}
                {TextField { id: "wh-description", label: "Description", field: "description", ..TEXT }.view(description, error)}
                {TextField { id: "wh-types", label: "Event types", field: "event_types",
                    hint: Some("Comma-separated: exact types (license.assigned), wildcards (license.*) or * for everything."),
                    ..TEXT }.view(types, error)}
                <label for="wh-auth">"Destination authentication"</label>
                <select id="wh-auth" on:change=move |ev| auth_kind.set(event_target_value(&ev))>
                    <option value="none" selected=kind0 == "none">"None"</option>
                    <option value="basic" selected=kind0 == "basic">"Basic (username and password)"</option>
                    <option value="api_key" selected=kind0 == "api_key">"API key header"</option>
                </select>
                <Show when=move || auth_kind.get() == "basic">
                    <label for="wh-user">"Username"</label>
                    <input id="wh-user" autocomplete="off" prop:value=move || user.get() on:input=move |ev| user.set(event_target_value(&ev))/>
                </Show>
                <Show when=move || auth_kind.get() == "api_key">
                    <label for="wh-header">"Header name"</label>
                    <input id="wh-header" prop:value=move || header.get() on:input=move |ev| header.set(event_target_value(&ev))/>
                </Show>
                <Show when=move || auth_kind.get() != "none">
                    <label for="wh-secret">{move || if auth_kind.get() == "basic" { "Password" } else { "Header value" }}</label>
                    <input id="wh-secret" type="password" autocomplete="new-password" prop:value=move || secret.get()
                        placeholder=if editing.is_some() { "unchanged" } else { "" }
                        on:input=move |ev| secret.set(event_target_value(&ev))/>
                </Show>
                {field_error(error, "auth")}
                {TextField { id: "wh-timeout", label: "Timeout (ms)", field: "timeout_ms", inputmode: Some("numeric"), ..TEXT }.view(timeout, error)}
                {TextField { id: "wh-rate", label: "Rate limit (requests per second)", field: "rate_limit",
                    inputmode: Some("numeric"), placeholder: Some("no limit"), ..TEXT }.view(rate, error)}
                {TextField { id: "wh-notify", label: "Email when it is deactivated", field: "notify_emails",
                    inputmode: Some("email"), placeholder: Some("ops@example.com, team@example.com"),
                    hint: Some("Comma-separated addresses, told when Herald deactivates this webhook."), ..TEXT }.view(notify, error)}
                <label class="check"><input type="checkbox" data-test="notify-on-failing" prop:checked=move || notify_on_failing.get()
                    on:change=move |ev| notify_on_failing.set(event_target_checked(&ev))/>" Also email them when it starts failing (at most once an hour)"</label>
                <label class="check"><input type="checkbox" data-test="ordered" prop:checked=move || ordered.get()
                    on:change=move |ev| ordered.set(event_target_checked(&ev))/>" Deliver in order: one at a time, and a failed delivery holds back the ones behind it"</label>
                <label class="check"><input type="checkbox" prop:checked=move || enabled.get() on:change=move |ev| enabled.set(event_target_checked(&ev))/>" Active"</label>
                <button type="submit" class="primary" data-test="save-webhook" disabled=pending>
                    {if editing.is_some() { "Save changes" } else { "Create webhook" }}
                </button>
            </form>
        </Show>
    }
}

#[component]
pub fn WebhookPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<WebhookId>().ok()));
    let limit = RwSignal::new(100u64);
    let data = server_resource(
        move || (id.get(), limit.get()),
        |(id, limit)| async move {
            match id {
                Some(id) => get_webhook(id, limit).await,
                None => Err(AppError::NotFound("This webhook".into())),
            }
        },
    );
    let can_write = use_can_write();
    let notice = RwSignal::new(None::<Result<String, String>>);
    let run = move |r: Result<String, AppError>| {
        notice.set(Some(r.map_err(|e| e.to_string())));
        data.refetch();
    };
    let toggle = Action::new(move |(id, enabled): &(WebhookId, bool)| {
        let (id, enabled) = (*id, *enabled);
        async move {
            let patch = WebhookPatch { enabled: Some(enabled), ..Default::default() };
            run(update_webhook(id, patch).await.map(|w| {
                format!(
                    "{} is now {}.",
                    w.name,
                    if w.enabled { "active" } else { "stopped; its new events are held" }
                )
            }));
        }
    });
    let recover = RwSignal::new(true);
    let since = RwSignal::new(String::new());
    let reactivate = Action::new(move |id: &WebhookId| {
        let id = *id;
        async move {
            let recover_since = if recover.get_untracked() {
                match crate::components::format::parse_datetime_local(&since.get_untracked()) {
                    Some(t) => Some(t),
                    None => {
                        notice.set(Some(Err(
                            "Give the time to recover from as YYYY-MM-DDTHH:MM (UTC).".into()
                        )));
                        return;
                    }
                }
            } else {
                None
            };
            run(reactivate_webhook(id, recover_since).await.map(|n| {
                if recover_since.is_some() {
                    format!("Reactivated; {n} held or failed deliveries are being sent again.")
                } else {
                    "Reactivated.".into()
                }
            }));
        }
    });
    let secret = RwSignal::new(None::<String>);
    // Reveal (None) or rotate (the old secret's grace in hours) the signing secret: either shows
    // the secret now in force.
    let grace = RwSignal::new(24u32);
    let secret_action = Action::new(move |&(id, rotate): &(WebhookId, Option<u32>)| async move {
        let answer = match rotate {
            Some(hours) => rotate_secret(id, hours).await,
            None => reveal_secret(id).await,
        };
        match answer {
            Ok(s) => {
                secret.set(Some(s));
                match rotate {
                    Some(0) => notice.set(Some(Ok("New secret; the old one no longer signs.".into()))),
                    Some(h) => notice.set(Some(Ok(format!(
                        "New secret; the old one keeps signing beside it for {h} hours."
                    )))),
                    None => {}
                }
            }
            Err(e) => notice.set(Some(Err(e.to_string()))),
        }
    });
    let retry = Action::new(move |id: &crate::models::DeliveryId| {
        let id = *id;
        async move {
            run(retry_delivery(id).await.map(|_| "Re-send queued.".into()));
        }
    });

    let test_event = Action::new(move |&id: &WebhookId| async move {
        run(send_test_event(id)
            .await
            .map(|_| "Test event sent: its delivery is at the top of the list below.".into()));
    });
    let skip = Action::new(move |&(id, d): &(WebhookId, crate::models::DeliveryId)| async move {
        run(skip_blocked(id, d)
            .await
            .map(|n| format!("Skipped; the {n} deliveries behind it are on their way.")));
    });

    view! {
        <Title text="Webhook"/>
        <p><a href="/webhooks">"← Webhooks"</a></p>
        <p role="status" aria-live="polite" data-test="notice"
            class=move || match notice.get() { Some(Ok(_)) => "alert ok", Some(Err(_)) => "alert error", None => "" }>
            {move || notice.get().map(|r| match r { Ok(t) | Err(t) => t })}
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading the webhook…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok((w, rows, more, reactivation)) => {
                    let hook = w.webhook.clone();
                    let id = hook.id;
                    let inactive = hook.state != WebhookState::Active;
                    if since.get_untracked().is_empty() {
                        let from = reactivation.as_ref().map(|r| r.since)
                            .or(w.usage.first_failure_at).or(hook.deactivated_at).or(hook.stopped_at)
                            .unwrap_or(hook.created_at);
                        since.set(crate::components::format::datetime_local(from));
                    }
                    view! {
                        <Title text=hook.name.clone()/>
                        <header class="page-head">
                            <div>
                                <h1 data-test="webhook-name">{hook.name.clone()}" "<WebhookStateBadge state=hook.state/></h1>
                                <p class="muted url">{hook.url.clone()}</p>
                                {hook.stopped_by.clone().map(|by| view! { <p class="muted small">"Stopped by "{by}{hook.stopped_at.map(|t| format!(" at {}", timestamp(t)))}</p> })}
                                {hook.deactivated_at.map(|t| view! { <p class="muted small">"Deactivated after too many errors at "{timestamp(t)}</p> })}
                            </div>
                            <div class="head-actions">
                                <Show when=move || can_write.get()>
                                    <a class="button" href=format!("/webhooks/{id}/edit") data-test="edit-webhook">"Edit"</a>
                                </Show>
                                <Show when=move || can_write.get() && !inactive>
                                    <button type="button" data-test="send-test" on:click=move |_| { test_event.dispatch(id); }>"Send test event"</button>
                                    <button type="button" data-test="stop-webhook" on:click=move |_| {
                                        if super::confirm("Stop this webhook? Its new events are held, not sent, until it is reactivated.") {
                                            toggle.dispatch((id, false));
                                        }
                                    }>"Stop"</button>
                                </Show>
                            </div>
                        </header>
                        <Show when=move || can_write.get() && inactive>
                            <form class="card reactivate" data-test="reactivate-form"
                                on:submit=move |ev| { ev.prevent_default(); reactivate.dispatch(id); }>
                                <h2>"Reactivate"</h2>
                                <label class="check"><input type="checkbox" data-test="recover" prop:checked=move || recover.get()
                                    on:change=move |ev| recover.set(event_target_checked(&ev))/>" Also re-send what was held or failed since"</label>
                                {reactivation.clone().map(|r| view! {
                                    <p class="muted small" data-test="recover-counts">{format!("From {}: {} held and {} failed.", timestamp(r.since), r.held, r.failed)}</p>
                                })}
                                <label for="recover-since" class="visually-hidden">"Recover since (UTC)"</label>
                                <input id="recover-since" type="datetime-local" data-test="recover-since" prop:value=move || since.get()
                                    on:input=move |ev| since.set(event_target_value(&ev)) disabled=move || !recover.get()/>
                                <span class="muted small">" UTC"</span>
                                <div><button type="submit" class="primary" data-test="reactivate">"Reactivate"</button></div>
                            </form>
                        </Show>
                        {w.usage.paused_until.map(|t| view! {
                            <p class="alert" role="status" data-test="paused">"Paused by the receiver until "{timestamp(t)}": "{w.usage.pause_reason.clone()}</p>
                        })}
                        {w.usage.line_blocked_by.map(|d| view! {
                            <div class="alert error" role="status" data-test="line-blocked">
                                "Delivery in order is blocked by the failed delivery "<a href=format!("/deliveries/{d}")>{d.to_string()}</a>
                                "; "{w.usage.line_waiting.unwrap_or(0)}" wait behind it. Re-send it, or skip it to let them go."
                                <Show when=move || can_write.get() && !inactive>
                                    " "<button type="button" class="small-button" data-test="resend-blocker" on:click=move |_| { retry.dispatch(d); }>"Re-send it"</button>
                                    " "<button type="button" class="small-button" data-test="skip-blocker" on:click=move |_| { skip.dispatch((id, d)); }>"Skip it"</button>
                                </Show>
                            </div>
                        })}
                        <section class="cards">
                            <div class="card stat"><div class="muted small">"Calls"</div><div class="big" data-test="total-calls">{w.usage.total_calls}</div></div>
                            <div class="card stat"><div class="muted small">"Errors"</div><div class="big" data-test="total-errors">{w.usage.total_errors}</div></div>
                            <div class="card stat"><div class="muted small">"Errors in a row"</div><div class="big">{w.usage.consecutive_errors}</div></div>
                            <div class="card stat"><div class="muted small">"Last success"</div><div>{w.usage.last_success_at.map(timestamp).unwrap_or_else(|| "—".into())}</div></div>
                            <div class="card stat wide"><div class="muted small">"Last error"</div><div class="small">{w.usage.last_error.clone().unwrap_or_else(|| "—".into())}</div></div>
                        </section>
                        <dl class="facts">
                            <dt>"Event types"</dt><dd><code>{hook.event_types.join(", ")}</code></dd>
                            <dt>"Timeout"</dt><dd>{format!("{} ms", hook.timeout_ms)}</dd>
                            <dt>"Order"</dt><dd data-test="order">{if hook.ordered { "in order, one at a time" } else { "not ordered" }}</dd>
                            <dt>"Retry schedule"</dt><dd>{hook.retry_schedule.clone().map(|s| s.iter().map(|x| format!("{x} s")).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| "the global schedule".into())}</dd>
                            <dt>"Authentication"</dt><dd>{match &hook.auth { crate::models::WebhookAuthView::None => "none".to_owned(), crate::models::WebhookAuthView::Basic { username } => format!("basic, as {username}"), crate::models::WebhookAuthView::ApiKey { header } => format!("API key in {header}") }}</dd>
                            <Show when=move || can_write.get()>
                                <dt>"Signing secret"</dt>
                                <dd>
                                    {move || match secret.get() {
                                        Some(s) => view! { <code data-test="secret">{s.clone()}</code>" "<CopyButton text=s label="Copy"/> }.into_any(),
                                        None => view! { <button type="button" class="small-button" data-test="reveal-secret" on:click=move |_| { secret_action.dispatch((id, None)); }>"Reveal"</button> }.into_any(),
                                    }}
                                    " "<label for="grace" class="visually-hidden">"Old secret keeps signing for"</label>
                                    <select id="grace" class="inline" data-test="grace" on:change=move |ev| grace.set(event_target_value(&ev).parse().unwrap_or(24))>
                                        <option value="0">"old one stops at once"</option>
                                        <option value="1">"old one signs 1 more hour"</option>
                                        <option value="24" selected>"old one signs 24 more hours"</option>
                                        <option value="168">"old one signs 7 more days"</option>
                                    </select>
                                    " "<button type="button" class="small-button" data-test="rotate-secret" on:click=move |_| {
                                        let h = grace.get_untracked();
                                        if super::confirm(&format!("Rotate the signing secret? Receivers must switch to the new one within {h} hours.")) {
                                            secret_action.dispatch((id, Some(h)));
                                        }
                                    }>"Rotate"</button>
                                </dd>
                            </Show>
                        </dl>
                        <h2>"Last deliveries"</h2>
                        <p class="muted small">"Error: failed for good (what deactivates a webhook). Debug: failed attempts, still being retried or held. Success: delivered."</p>
                        <DeliveryTable rows can_write=Signal::derive(move || can_write.get() && !inactive) marks=true on_retry=move |d| { retry.dispatch(d); }/>
                        {more.then(|| view! {
                            <p class="pager">
                                {move || (limit.get() < 250).then(|| view! { <button type="button" data-test="show-more" on:click=move |_| limit.update(|l| *l = (*l + 100).min(250))>"Show more"</button> })}
                                " "<a href=format!("/?q={}", hook.name.clone()) class="button">"All in the delivery log"</a>
                            </p>
                        })}
                    }.into_any()
                }
            })}
        </Transition>
    }
}
