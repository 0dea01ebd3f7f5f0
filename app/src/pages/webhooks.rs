//! Webhooks: the list with state and usage, the create form, and one webhook's page with its
//! usage, secret, last deliveries, stop/start and reactivation with recovery.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::{deliveries::DeliveryTable, layout::use_can_write};
use crate::{
    api::{
        deliveries::{get_log_choices, retry_delivery},
        webhooks::{
            create_webhook, delete_webhook, get_webhook, list_webhooks, reactivate_webhook,
            recovery_progress, reveal_secret, rotate_secret, send_test_event, skip_blocked, update_webhook,
        },
    },
    components::{
        copy::CopyButton, format::timestamp, resource::server_resource, status_badge::WebhookStateBadge,
    },
    error::AppError,
    models::{
        FieldError, Webhook, WebhookAuth, WebhookCreate, WebhookId, WebhookPatch, WebhookState,
        WebhookWithUsage,
    },
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
    fn view(self, value: RwSignal<String>, problems: RwSignal<Vec<FieldError>>) -> impl IntoView {
        let TextField { id, label, field, kind, inputmode, placeholder, required, hint } = self;
        let described = move || problem_of(&problems.read(), field).map(|_| format!("{field}-error"));
        view! {
            <label for=id>{label}</label>
            <input id=id type=kind inputmode=inputmode placeholder=placeholder required=required
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                aria-describedby=described/>
            {hint.map(|h| view! { <p class="muted small">{h}</p> })}
            {field_error(problems, field)}
        }
    }
}

/// The message for `field` (or one of its parts, `auth.username`) among a form's problems.
fn problem_of(problems: &[FieldError], field: &str) -> Option<String> {
    problems
        .iter()
        .find(|p| p.field == field || p.field.strip_prefix(field).is_some_and(|rest| rest.starts_with('.')))
        .map(|p| p.message.clone())
}

/// A field's validation message, placed under it and tied to it with `aria-describedby`.
fn field_error(problems: RwSignal<Vec<FieldError>>, field: &'static str) -> impl IntoView {
    move || {
        problem_of(&problems.read(), field).map(|message| {
            view! { <p class="field-error" id=format!("{field}-error") role="alert" data-test=format!("error-{field}")>{message}</p> }
        })
    }
}

/// A retry schedule as typed: delays separated by commas or spaces, each a whole number with
/// an optional unit (`30s`, `5m`, `2h`, `1d`; none: seconds). Empty: the global schedule.
fn parse_schedule(text: &str) -> Result<Option<Vec<u32>>, FieldError> {
    let delays = list_of(text, &[',', ' ', '\n']);
    if delays.is_empty() {
        return Ok(None);
    }
    delays
        .iter()
        .map(|d| {
            let (number, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
            let scale = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "s" => 1,
                "m" | "min" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => 0,
            };
            number.parse::<u32>().ok().filter(|_| scale > 0).and_then(|n| n.checked_mul(scale)).ok_or_else(
                || FieldError {
                    field: "retry_schedule".into(),
                    message: format!(
                        "`{d}` is not a delay: write numbers with s, m, h or d, like 30s, 5m, 2h"
                    ),
                },
            )
        })
        .collect::<Result<Vec<u32>, _>>()
        .map(Some)
}

/// A retry schedule as the form shows it: each delay in its largest whole unit.
fn schedule_text(schedule: &[u32]) -> String {
    let one = |s: u32| match s {
        0 => "0s".to_owned(),
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    schedule.iter().map(|&s| one(s)).collect::<Vec<_>>().join(", ")
}

/// One custom header row of the form. An existing header's value is write-only: left empty, it
/// keeps the value it has.
#[derive(Clone, Copy)]
struct HeaderRow {
    key: usize,
    name: RwSignal<String>,
    value: RwSignal<String>,
    existing: bool,
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
                    <WebhookForm existing=Some(w.clone())/>
                    <DeleteWebhook id=w.id name=w.name/>
                }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

/// Deleting a webhook, below its edit form: asks first, then says it is done.
#[component]
fn DeleteWebhook(id: WebhookId, name: String) -> impl IntoView {
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let done = format!("The webhook {name} was deleted, with its deliveries. ");
    let delete = Action::new(move |&id: &WebhookId| {
        let done = done.clone();
        async move { outcome.set(Some(delete_webhook(id).await.map(|()| done).map_err(|e| e.to_string()))) }
    });
    let question = format!(
        "Delete the webhook {name}? Its deliveries and their attempts are deleted with it; this cannot be undone. \
         (Stop keeps them.)"
    );
    view! {
        <section class="card danger" data-test="delete-section">
            <h2>"Delete this webhook"</h2>
            <p class="muted small">"Its delivery log goes with it. To keep the log and send nothing, stop the webhook instead."</p>
            {move || outcome.get().map(|r| match r {
                Ok(m) => view! { <p class="alert ok" role="status" data-test="deleted">{m}<a href="/webhooks">"Back to the webhooks"</a></p> }.into_any(),
                Err(m) => view! { <p class="alert error" role="alert">{m}</p> }.into_any(),
            })}
            <button type="button" class="danger" data-test="delete-webhook"
                disabled=move || delete.pending().get() || outcome.get().is_some_and(|r| r.is_ok())
                on:click=move |_| if super::confirm(&question) { delete.dispatch(id); }>"Delete webhook"</button>
        </section>
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

/// Creates a webhook (`existing: None`) or edits one. Editing leaves destination credentials and
/// custom header values as they are unless new ones are typed. Every problem the form can find
/// is shown at once, under its field, before anything is sent.
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
    let schedule0 =
        e.as_ref().and_then(|w| w.retry_schedule.as_deref().map(schedule_text)).unwrap_or_default();
    let schedule = RwSignal::new(schedule0.clone());
    // What the form started with, to send only what changed (kept in Copy handles: the submit
    // handler is cloned into the form each time it is shown).
    let schedule0 = StoredValue::new(schedule0);
    // A webhook deactivated after too many errors comes back through Reactivate (which can
    // recover what it missed), not through this form: it offers no "Active" tick then.
    let deactivated = e.as_ref().is_some_and(|w| w.state == WebhookState::TooManyErrors);
    let enabled =
        RwSignal::new(e.as_ref().map(|w| w.enabled && w.state == WebhookState::Active).unwrap_or(true));
    let enabled0 = enabled.get_untracked();
    let notify = RwSignal::new(e.as_ref().map(|w| w.notify_emails.join(", ")).unwrap_or_default());
    let notify_on_failing = RwSignal::new(e.as_ref().map(|w| w.notify_on_failing).unwrap_or(false));
    let ordered = RwSignal::new(e.as_ref().is_some_and(|w| w.ordered));
    let rate =
        RwSignal::new(e.as_ref().and_then(|w| w.rate_limit).map(|n| n.to_string()).unwrap_or_default());
    let header_names0: Vec<String> = e.as_ref().map(|w| w.header_names.clone()).unwrap_or_default();
    let header_count0 = header_names0.len();
    let next_key = StoredValue::new(header_count0);
    let headers = RwSignal::new(
        header_names0
            .iter()
            .enumerate()
            .map(|(key, n)| HeaderRow {
                key,
                name: RwSignal::new(n.clone()),
                value: RwSignal::new(String::new()),
                existing: true,
            })
            .collect::<Vec<_>>(),
    );
    let add_header = move || {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        headers.update(|h| {
            h.push(HeaderRow {
                key,
                name: RwSignal::new(String::new()),
                value: RwSignal::new(String::new()),
                existing: false,
            })
        });
    };
    let problems = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<AppError>);
    let created = RwSignal::new(None::<(WebhookId, String)>);
    let saved = RwSignal::new(false);
    // The event types Herald has seen, offered as picks: asked for once the form is in the
    // browser (the server renders the form without them).
    let known_types = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Ok(c) = get_log_choices().await {
                known_types.set(c.event_types);
            }
        });
    });

    let answered = move |r: Result<(), AppError>| match r {
        Ok(()) => {
            problems.set(Vec::new());
            failure.set(None);
        }
        Err(AppError::Invalid { field, message }) => problems.set(vec![FieldError { field, message }]),
        Err(e) => failure.set(Some(e)),
    };
    let create = Action::new(move |input: &WebhookCreate| {
        let input = input.clone();
        async move {
            let r = create_webhook(input).await;
            if let Ok(c) = &r {
                created.set(Some((c.webhook.id, c.secret.clone())));
            }
            answered(r.map(|_| ()));
        }
    });
    let update = Action::new(move |(id, patch): &(WebhookId, WebhookPatch)| {
        let (id, patch) = (*id, patch.clone());
        async move {
            let r = update_webhook(id, patch).await;
            saved.set(r.is_ok());
            answered(r.map(|_| ()));
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        failure.set(None);
        let mut found = Vec::new();
        let mut keep = |r: Result<Option<u32>, AppError>| match r {
            Ok(n) => n,
            Err(AppError::Invalid { field, message }) => {
                found.push(FieldError { field, message });
                None
            }
            Err(_) => None,
        };
        let timeout_ms = keep(number_in(
            &timeout.get_untracked(),
            "timeout_ms",
            "a whole number of milliseconds, 1000 to 30000",
        ))
        .map(|t| t.min(i32::MAX as u32) as i32);
        let rate_limit = keep(number_in(
            &rate.get_untracked(),
            "rate_limit",
            "a whole number of requests per second, or empty for none",
        ));
        let retry_schedule = parse_schedule(&schedule.get_untracked()).unwrap_or_else(|e| {
            found.push(e);
            None
        });
        let rows = headers.get_untracked();
        let mut header_map = std::collections::BTreeMap::new();
        for row in &rows {
            let n = row.name.get_untracked().trim().to_owned();
            if n.is_empty() {
                continue;
            }
            if header_map.insert(n.clone(), row.value.get_untracked()).is_some() {
                found.push(FieldError { field: "headers".into(), message: format!("`{n}` is given twice") });
            }
        }
        let headers_changed = editing.is_none()
            || rows.len() != header_count0
            || rows.iter().any(|r| !r.existing || !r.value.get_untracked().is_empty());
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
        let enabled_now = enabled.get_untracked();
        match editing {
            None => {
                let input = WebhookCreate {
                    name: name.get_untracked(),
                    url: url.get_untracked(),
                    description: description.get_untracked(),
                    event_types,
                    auth,
                    headers: header_map,
                    timeout_ms,
                    retry_schedule,
                    notify_emails,
                    notify_on_failing: notify_on_failing.get_untracked(),
                    rate_limit,
                    rate_limit_burst: None,
                    ordered: ordered.get_untracked(),
                    enabled: Some(enabled_now),
                };
                found.extend(input.problems());
                if found.is_empty() {
                    create.dispatch(input);
                }
            }
            Some(id) => {
                let patch = WebhookPatch {
                    name: Some(name.get_untracked()),
                    url: Some(url.get_untracked()),
                    description: Some(description.get_untracked()),
                    event_types: Some(event_types),
                    auth: auth_changed.then_some(auth),
                    headers: headers_changed.then_some(header_map),
                    timeout_ms,
                    retry_schedule: schedule0
                        .with_value(|s0| schedule.get_untracked() != *s0)
                        .then_some(retry_schedule),
                    notify_emails: Some(notify_emails),
                    notify_on_failing: Some(notify_on_failing.get_untracked()),
                    rate_limit: Some(rate_limit),
                    ordered: Some(ordered.get_untracked()),
                    enabled: (!deactivated && enabled_now != enabled0).then_some(enabled_now),
                    ..Default::default()
                };
                found.extend(patch.problems());
                if found.is_empty() {
                    update.dispatch((id, patch));
                }
            }
        }
        problems.set(found);
    };
    let pending = move || create.pending().get() || update.pending().get();
    // Adds or removes one type in the comma-separated list.
    let toggle_type = move |t: String| {
        let mut list = list_of(&types.get_untracked(), &[',', '\n']);
        match list.iter().position(|x| *x == t) {
            Some(i) => {
                list.remove(i);
            }
            None => {
                list.retain(|x| x != "*");
                list.push(t);
            }
        }
        types.set(list.join(", "));
    };
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
                {move || {
                    let n = problems.read().len();
                    (n > 0).then(|| view! {
                        <p class="alert error" data-test="form-problems">
                            {if n == 1 { "Please check the field marked below.".to_owned() } else { format!("Please check the {n} fields marked below.") }}
                        </p>
                    })
                }}
                {move || failure.get().map(|e| view! { <p class="alert error" role="alert">{e.to_string()}</p> })}
                {TextField { id: "wh-name", label: "Name", field: "name", required: true, ..TEXT }.view(name, problems)}
                {TextField { id: "wh-url", label: "URL", field: "url", kind: "url", required: true,
                    placeholder: Some("https://example.com/webhooks"), ..TEXT }.view(url, problems)}
                {TextField { id: "wh-description", label: "Description", field: "description", ..TEXT }.view(description, problems)}
                {TextField { id: "wh-types", label: "Event types", field: "event_types",
                    hint: Some("Comma-separated: exact types (license.assigned), wildcards (license.*) or * for everything."),
                    ..TEXT }.view(types, problems)}
                {move || Some(known_types.get()).filter(|t| !t.is_empty()).map(|known| view! {
                        <div class="chips" role="group" aria-label="Pick from the types Herald has seen" data-test="known-types">
                            <span class="muted small">"Seen so far: "</span>
                            {known.into_iter().map(|t| {
                                let label = t.clone();
                                let pressed = {
                                    let t = t.clone();
                                    move || list_of(&types.get(), &[',', '\n']).contains(&t).to_string()
                                };
                                view! {
                                    <button type="button" class="chip" aria-pressed=pressed data-test="type-chip"
                                        on:click=move |_| toggle_type(t.clone())>{label}</button>
                                }
                            }).collect_view()}
                        </div>
                    })}
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
                {field_error(problems, "auth")}
                <fieldset class="headers" data-test="headers">
                    <legend>"Custom headers"</legend>
                    <p class="muted small">"Sent with every request. Values are write-only: an existing header left empty keeps its value."</p>
                    {move || headers.get().into_iter().map(|row| view! {
                        <div class="header-row" data-test="header-row">
                            <label for=format!("wh-h-name-{}", row.key) class="visually-hidden">"Header name"</label>
                            <input id=format!("wh-h-name-{}", row.key) placeholder="X-Tenant" data-test="header-name"
                                prop:value=move || row.name.get() on:input=move |ev| row.name.set(event_target_value(&ev))/>
                            <label for=format!("wh-h-value-{}", row.key) class="visually-hidden">"Header value"</label>
                            <input id=format!("wh-h-value-{}", row.key) data-test="header-value" autocomplete="off"
                                placeholder=if row.existing { "unchanged" } else { "value" }
                                prop:value=move || row.value.get() on:input=move |ev| row.value.set(event_target_value(&ev))/>
                            <button type="button" class="small-button" data-test="remove-header"
                                on:click=move |_| headers.update(|h| h.retain(|r| r.key != row.key))>
                                "Remove"<span class="visually-hidden">" header "{move || row.name.get()}</span>
                            </button>
                        </div>
                    }).collect_view()}
                    <button type="button" class="small-button" data-test="add-header" on:click=move |_| add_header()>"Add a header"</button>
                    {field_error(problems, "headers")}
                </fieldset>
                {TextField { id: "wh-timeout", label: "Timeout (ms)", field: "timeout_ms", inputmode: Some("numeric"), ..TEXT }.view(timeout, problems)}
                {TextField { id: "wh-schedule", label: "Retry schedule", field: "retry_schedule",
                    placeholder: Some("the global schedule"),
                    hint: Some("Delays before each retry, like 30s, 5m, 30m, 2h, 1d (up to 20, each at most 7 days). Empty: the global schedule."),
                    ..TEXT }.view(schedule, problems)}
                {TextField { id: "wh-rate", label: "Rate limit (requests per second)", field: "rate_limit",
                    inputmode: Some("numeric"), placeholder: Some("no limit"), ..TEXT }.view(rate, problems)}
                {TextField { id: "wh-notify", label: "Email when it is deactivated", field: "notify_emails",
                    inputmode: Some("email"), placeholder: Some("ops@example.com, team@example.com"),
                    hint: Some("Comma-separated addresses, told when Herald deactivates this webhook."), ..TEXT }.view(notify, problems)}
                <label class="check"><input type="checkbox" data-test="notify-on-failing" prop:checked=move || notify_on_failing.get()
                    on:change=move |ev| notify_on_failing.set(event_target_checked(&ev))/>" Also email them when it starts failing (at most once an hour)"</label>
                <label class="check"><input type="checkbox" data-test="ordered" prop:checked=move || ordered.get()
                    on:change=move |ev| ordered.set(event_target_checked(&ev))/>" Deliver in order: one at a time, and a failed delivery holds back the ones behind it"</label>
                {if deactivated {
                    view! {
                        <p class="alert" data-test="deactivated-note">
                            "Deactivated after too many errors: saving does not change that. "
                            <a href=format!("/webhooks/{}", editing.map(|i| i.to_string()).unwrap_or_default())>"Reactivate it from its page"</a>
                            ", where it can also re-send what it missed."
                        </p>
                    }.into_any()
                } else {
                    view! {
                        <label class="check"><input type="checkbox" data-test="active" prop:checked=move || enabled.get()
                            on:change=move |ev| enabled.set(event_target_checked(&ev))/>" Active (unticked: stopped, its new events are held)"</label>
                    }.into_any()
                }}
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
    // A recovery in progress: from when, and where its deliveries stand once known (asked for
    // every 2 s until nothing is left to send, the table below refreshed alongside).
    type Recovery = Option<(chrono::DateTime<chrono::Utc>, Option<crate::models::StatusCounts>)>;
    let recovery = RwSignal::new(None as Recovery);
    let follow = move || {
        let (Some(id), Some((from, counts))) = (id.get_untracked(), recovery.get_untracked()) else {
            return;
        };
        if counts.is_some_and(|c| c.done()) {
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(counts) = recovery_progress(id, from).await {
                recovery.set(Some((from, Some(counts))));
                data.refetch();
            }
        });
    };
    // In an effect: it runs only in the browser (a timer cannot be set while the server renders).
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(follow, std::time::Duration::from_secs(2)) {
            on_cleanup(move || handle.clear());
        }
    });
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
            let answer = reactivate_webhook(id, recover_since).await;
            if let (Ok(_), Some(from)) = (&answer, recover_since) {
                recovery.set(Some((from, None)));
                follow();
            }
            run(answer.map(|n| {
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
        {move || recovery.get().and_then(|(from, c)| Some((from, c?, id.get()?))).map(|(from, c, id)| {
            let failing = format!("/?webhook_id={id}&status=failed&since={}", crate::components::format::query_time(from));
            view! {
                <p role="status" data-test="recovery-progress" class=if c.done() { "alert ok" } else { "alert" }>
                    {format!(
                        "Recovery since {}: {} delivered, {} failed, {} being retried, {} still to send{}",
                        timestamp(from), c.succeeded, c.failed, c.retrying, c.waiting,
                        if c.done() { ". Done." } else { "…" },
                    )}
                    {(c.failed > 0).then(|| view! { " "<a href=failing data-test="recovery-failing">{format!("See the {} that failed", c.failed)}</a> })}
                </p>
            }
        })}
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
                            <div class="card stat wide"><div class="muted small">"Last error"</div><div class="small" data-test="last-error">{w.usage.last_error.clone().unwrap_or_else(|| "—".into())}{w.usage.last_error_at.map(|t| format!(" · {}", timestamp(t)))}</div></div>
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
