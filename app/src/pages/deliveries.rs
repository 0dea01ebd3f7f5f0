//! The delivery log (home page): search, filters, sort, keyset paging, live refresh, retry.
//! The whole view lives in the URL, so a link reproduces it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::layout::use_can_write;
use crate::{
    api::deliveries::{list_deliveries, retry_delivery},
    components::{
        format::{
            attempt_result, count, datetime_local, duration_ms, now, parse_datetime_local, query_time,
            timestamp,
        },
        resource::server_resource,
        status_badge::StatusBadge,
    },
    models::{
        category_of, DeliveryId, DeliveryQuery, DeliveryRow, DeliverySort, DeliveryStatus, LogChoices,
        SortOrder,
    },
};

/// The time range's quick choices: a label and how far back it starts, in minutes.
const RANGES: [(&str, i64); 5] = [
    ("Last 15 minutes", 15),
    ("Last hour", 60),
    ("Last 24 hours", 24 * 60),
    ("Last 7 days", 7 * 24 * 60),
    ("Last 30 days", 30 * 24 * 60),
];

/// The query parameters the log understands, in the order they appear in links.
const KEYS: [&str; 11] =
    ["q", "status", "category", "webhook_id", "range", "since", "until", "sort", "order", "cursor", "back"];
/// Earlier pages' cursors, kept in `back` so "Previous" is a plain link too.
const BACK_SEP: char = '~';

fn parse<T: std::str::FromStr>(v: Option<String>) -> Option<T> {
    v.filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

impl std::str::FromStr for DeliverySort {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "time" => Ok(DeliverySort::Time),
            "status" => Ok(DeliverySort::Status),
            "response_code" => Ok(DeliverySort::ResponseCode),
            _ => Err(()),
        }
    }
}

impl std::str::FromStr for SortOrder {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "desc" => Ok(SortOrder::Desc),
            "asc" => Ok(SortOrder::Asc),
            _ => Err(()),
        }
    }
}

/// `/?…` with `changes` applied to the current parameters; any change of filter or sort starts
/// again at the first page.
fn href(current: &[(String, Option<String>)], changes: &[(&str, Option<String>)]) -> String {
    let paging = changes.iter().all(|(k, _)| *k == "cursor" || *k == "back");
    let mut pairs: Vec<(String, String)> = Vec::new();
    for key in KEYS {
        let value = match changes.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v.clone(),
            None if !paging && (key == "cursor" || key == "back") => None,
            None => current.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.clone()),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            pairs.push((key.to_owned(), v));
        }
    }
    if pairs.is_empty() {
        return "/".into();
    }
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    format!("/?{}", query.join("&"))
}

fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[component]
pub fn DeliveryLogPage() -> impl IntoView {
    let query_map = use_query_map();
    let params = Memo::new(move |_| {
        let q = query_map.read();
        KEYS.iter().map(|k| ((*k).to_owned(), q.get(k))).collect::<Vec<_>>()
    });
    let get = move |key: &str| params.read().iter().find(|(k, _)| k == key).and_then(|(_, v)| v.clone());
    let query = Memo::new(move |_| DeliveryQuery {
        q: get("q").filter(|s| !s.trim().is_empty()),
        status: parse(get("status")),
        category: get("category").filter(|s| !s.is_empty()),
        webhook_id: parse(get("webhook_id")),
        // A quick range (`range`, minutes back from now) is kept relative in the URL, so a link to
        // "the last hour" shows the last hour whenever it is opened.
        since: parse(get("since")).or_else(|| {
            parse::<i64>(get("range")).filter(|m| *m > 0).map(|m| now() - chrono::Duration::minutes(m))
        }),
        until: parse(get("until")),
        sort: parse(get("sort")),
        order: parse(get("order")),
        cursor: get("cursor").filter(|s| !s.is_empty()),
        limit: Some(50),
        ..Default::default()
    });
    let page = server_resource(move || query.get(), list_deliveries);
    // What the pickers offer comes with each page; kept apart so a refresh of the rows leaves an
    // open picker alone. Filled in the browser (the server renders the boxes without choices).
    let choices = RwSignal::new(None::<LogChoices>);
    Effect::new(move |_| {
        if let Some(Ok(found)) = page.get() {
            if choices.with_untracked(|c| c.as_ref() != Some(&found.choices)) {
                choices.set(Some(found.choices));
            }
        }
    });
    let can_write = use_can_write();
    let navigate = use_navigate();

    // Live refresh: the first page reloads every 5 s; deeper pages stay put so nobody loses
    // their place.
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                if query.get_untracked().cursor.is_none() {
                    page.refetch();
                }
            },
            std::time::Duration::from_secs(5),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    });

    let go = {
        let navigate = navigate.clone();
        move |changes: Vec<(&str, Option<String>)>| {
            let to = href(&params.get_untracked(), &changes);
            navigate(&to, Default::default());
        }
    };
    let search = RwSignal::new(get("q").unwrap_or_default());
    let go_search = go.clone();
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        go_search(vec![("q", Some(search.get_untracked()))]);
    };
    let filtered = move || {
        ["q", "status", "category", "webhook_id", "range", "since", "until"]
            .iter()
            .any(|k| get(k).is_some_and(|v| !v.is_empty()))
    };
    // A `datetime-local` box's value (UTC) as the URL carries it; empty or unreadable clears it.
    let time_param = |ev: &leptos::ev::Event| parse_datetime_local(&event_target_value(ev)).map(query_time);
    // The filter boxes, drawn again from the URL whenever it changes (one reactive closure for
    // them all rather than one per attribute: each of those cost its own code in the bundle
    // every page loads).
    let filters = {
        let go = go.clone();
        move || {
            let get = |key: &str| get(key).filter(|v| !v.is_empty());
            let (status, webhook, range) = (get("status"), get("webhook_id"), get("range"));
            let (since, until) = (query.get().since, query.get().until);
            let sort = format!(
                "{}:{}",
                get("sort").unwrap_or_else(|| "time".into()),
                get("order").unwrap_or_else(|| if get("sort").as_deref() == Some("status") {
                    "asc"
                } else {
                    "desc"
                }
                .into())
            );
            let choices = choices.get().unwrap_or_default();
            let mut categories: Vec<String> =
                choices.event_types.iter().map(|t| category_of(t).to_owned()).collect();
            categories.sort_unstable();
            categories.dedup();
            let to = |key: &'static str| {
                let go = go.clone();
                move |ev: leptos::ev::Event| go(vec![(key, Some(event_target_value(&ev)))])
            };
            let (go_range, go_since, go_until, go_sort) = (go.clone(), go.clone(), go.clone(), go.clone());
            let absolute = since.is_some() && range.is_none() || until.is_some();
            view! {
                <div class="filter">
                    <label for="log-status">"Status"</label>
                    <select id="log-status" data-test="filter-status" on:change=to("status")>
                        <option value="" selected=status.is_none()>"All"</option>
                        {DeliveryStatus::ALL.iter().map(|s| view! {
                            <option value=s.as_str() selected=status.as_deref() == Some(s.as_str())>{s.label()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="filter">
                    <label for="log-webhook">"Webhook"</label>
                    <select id="log-webhook" data-test="filter-webhook" on:change=to("webhook_id")>
                        <option value="" selected=webhook.is_none()>"All webhooks"</option>
                        {choices.webhooks.into_iter().map(|(id, name)| {
                            let value = id.to_string();
                            let selected = webhook.as_deref() == Some(value.as_str());
                            view! { <option value=value selected=selected>{name}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="filter">
                    <label for="log-category">"Event category"</label>
                    <input id="log-category" data-test="filter-category" placeholder="e.g. license" list="log-categories"
                        value=get("category").unwrap_or_default() on:change=to("category")/>
                    <datalist id="log-categories">
                        {categories.into_iter().map(|c| view! { <option value=c/> }).collect_view()}
                    </datalist>
                </div>
                <div class="filter">
                    <label for="log-range">"Time range"</label>
                    <select id="log-range" data-test="filter-range"
                        on:change=move |ev| {
                            let range = Some(event_target_value(&ev)).filter(|r| r != "0");
                            go_range(vec![("range", range), ("since", None), ("until", None)]);
                        }>
                        <option value="0" selected=range.is_none() && !absolute>"Any time"</option>
                        {RANGES.into_iter().map(|(label, minutes)| {
                            let value = minutes.to_string();
                            let selected = !absolute && range.as_deref() == Some(value.as_str());
                            view! { <option value=value selected=selected>{label}</option> }
                        }).collect_view()}
                        <option value="-1" disabled=true selected=absolute>"From – to, as set below"</option>
                    </select>
                </div>
                <div class="filter">
                    <label for="log-since">"From (UTC)"</label>
                    <input id="log-since" type="datetime-local" data-test="filter-since"
                        value=since.map(datetime_local).unwrap_or_default()
                        on:change=move |ev| go_since(vec![("since", time_param(&ev)), ("range", None)])/>
                </div>
                <div class="filter">
                    <label for="log-until">"To (UTC)"</label>
                    <input id="log-until" type="datetime-local" data-test="filter-until"
                        value=until.map(datetime_local).unwrap_or_default()
                        on:change=move |ev| {
                            // A quick range's start stays as the "from" it showed.
                            let from = since.map(query_time);
                            go_until(vec![("until", time_param(&ev)), ("range", None), ("since", from)]);
                        }/>
                </div>
                <div class="filter">
                    <label for="log-sort">"Sort by"</label>
                    <select id="log-sort" data-test="sort"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            let (sort, order) = v.split_once(':').unwrap_or(("time", "desc"));
                            go_sort(vec![("sort", Some(sort.to_owned())), ("order", Some(order.to_owned()))]);
                        }>
                        {[("time:desc", "Newest first (created)"), ("time:asc", "Oldest first (created)"), ("status:asc", "Status"),
                          ("response_code:desc", "Response code, highest first"), ("response_code:asc", "Response code, lowest first")]
                            .into_iter().map(|(value, label)| view! { <option value=value selected=sort == value>{label}</option> }).collect_view()}
                    </select>
                </div>
            }
        }
    };

    let retry = Action::new(move |id: &DeliveryId| {
        let id = *id;
        async move { (id, retry_delivery(id).await) }
    });
    Effect::new(move |_| {
        if retry.value().get().is_some() {
            page.refetch();
        }
    });

    view! {
        <Title text="Delivery log"/>
        <section data-test="delivery-log">
            <h1>"Delivery log"</h1>
            <div class="filters" role="search">
                <form on:submit=on_search class="search">
                    <label for="log-search" class="visually-hidden">"Search: webhook, event type, URL, or a delivery or event id"</label>
                    <input id="log-search" type="search" placeholder="Search: webhook, event type, URL, or a delivery or event id"
                        data-test="log-search" prop:value=move || search.get()
                        on:input=move |ev| search.set(event_target_value(&ev))/>
                    <button type="submit">"Search"</button>
                </form>
                {filters}
                <Show when=move || filtered()>
                    <a href="/" class="button" data-test="clear-filters">"Clear filters"</a>
                </Show>
            </div>
            // What a Retry did: the row may leave a filtered view, so the answer is said here.
            {move || retry.value().get().map(|(id, r)| match r {
                Ok(row) => view! {
                    <p class="alert ok" role="status" data-test="retry-done">
                        "Re-send queued: "<code>{row.event_type}</code>" to "{row.webhook_name}". "
                        <a href=format!("/deliveries/{id}")>"Follow it"</a>
                    </p>
                }.into_any(),
                Err(e) => view! {
                    <p class="alert error" role="alert" data-test="retry-error">
                        {e.to_string()}" "<a href=format!("/deliveries/{id}")>"Open the delivery"</a>
                    </p>
                }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="muted">"Loading deliveries…"</p> }>
                {move || page.get().map(|result| match result {
                    Ok(found) => {
                        let next = found.next_cursor.clone();
                        let current = params.get();
                        let back = get("back");
                        let cursor = get("cursor");
                        let next_href = next.map(|n| {
                            let mut stack: Vec<String> = back.clone().map(|b| b.split(BACK_SEP).map(str::to_owned).collect()).unwrap_or_default();
                            stack.push(cursor.clone().unwrap_or_else(|| "0".into()));
                            href(&current, &[("cursor", Some(n)), ("back", Some(stack.join(&BACK_SEP.to_string())))])
                        });
                        let prev_href = cursor.as_ref().map(|_| {
                            let mut stack: Vec<String> = back.clone().map(|b| b.split(BACK_SEP).map(str::to_owned).collect()).unwrap_or_default();
                            let prev = stack.pop().filter(|c| c != "0");
                            href(&current, &[("cursor", prev), ("back", Some(stack.join(&BACK_SEP.to_string())))])
                        });
                        let total = match (found.total.more, found.total.count) {
                            (true, n) => format!("More than {} deliveries", count(n)),
                            (false, 1) => "1 delivery".to_owned(),
                            (false, n) => format!("{} deliveries", count(n)),
                        };
                        view! {
                            <p class="muted" role="status" data-test="log-count">{total}</p>
                            <DeliveryTable rows=found.items can_write filtered=filtered() on_retry=move |id| { retry.dispatch(id); }/>
                            <nav class="pager" aria-label="Pages">
                                {prev_href.map(|h| view! { <a href=h class="button" data-test="page-previous">"← Previous"</a> })}
                                {next_href.map(|h| view! { <a href=h class="button" data-test="page-next">"Next →"</a> })}
                            </nav>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
pub fn DeliveryTable(
    rows: Vec<DeliveryRow>,
    can_write: Signal<bool>,
    on_retry: impl Fn(DeliveryId) + Copy + Send + Sync + 'static,
    /// A first column marking each row (the webhook page's Error / Debug / Success).
    #[prop(optional)]
    marks: bool,
    /// The rows are a filtered view: an empty one says so, not "no deliveries yet".
    #[prop(optional)]
    filtered: bool,
) -> impl IntoView {
    let empty = rows.is_empty();
    view! {
        <div class="table-wrap">
            <table class="data" data-test="delivery-table">
                <caption class="visually-hidden">"Deliveries"</caption>
                <thead>
                    <tr>
                        {marks.then(|| view! { <th scope="col">"Mark"</th> })}
                        <th scope="col">"Webhook"</th>
                        <th scope="col">"Event"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Result"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Last attempt"</th>
                        <th scope="col">"Duration"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <Show when=move || empty>
                        <tr>
                            <td colspan="9" class="empty" data-test="delivery-log-empty">
                                {if filtered {
                                    view! { "No deliveries match this search and these filters. "<a href="/">"Clear filters"</a> }.into_any()
                                } else {
                                    view! { "No deliveries yet. Events posted to "<code>"/api/v1/events"</code>
                                        " appear here, one row per webhook they are delivered to." }.into_any()
                                }}
                            </td>
                        </tr>
                    </Show>
                    {rows.into_iter().map(|row| {
                        let id = row.id;
                        let retryable = row.status != DeliveryStatus::Succeeded && row.status != DeliveryStatus::Pending;
                        let mark = mark_of(&row);
                        view! {
                            <tr data-test="delivery-row" data-status=row.status.as_str()>
                                {marks.then(|| view! { <td><span class=format!("badge mark-{}", mark.to_lowercase()) data-test="mark">{mark}</span></td> })}
                                <td>
                                    <a href=format!("/webhooks/{}", row.webhook_id) class="strong">{row.webhook_name}</a>
                                    <div class="muted small url" data-test="url">{row.attempted_url.clone().unwrap_or_else(|| row.webhook_url.clone())}</div>
                                    {row.attempted_url.as_ref().filter(|u| **u != row.webhook_url).map(|_| view! {
                                        <div class="muted small url" data-test="url-now">"Now: "{row.webhook_url.clone()}</div>
                                    })}
                                </td>
                                <td><code>{row.event_type}</code></td>
                                <td><StatusBadge status=row.status/></td>
                                <td data-test="result">{attempt_result(row.last_outcome, row.last_response_code, row.last_duration_ms)}</td>
                                <td>{timestamp(row.created_at)}</td>
                                <td>{row.last_attempt_at.map(timestamp).unwrap_or_else(|| "—".into())}</td>
                                <td>{row.last_duration_ms.map(duration_ms).unwrap_or_else(|| "—".into())}</td>
                                <td class="actions">
                                    <a href=format!("/deliveries/{id}") data-test="view">"View"</a>
                                    <Show when=move || retryable && can_write.get()>
                                        <button type="button" class="small-button" data-test="retry"
                                            on:click=move |_| on_retry(id)>"Retry"</button>
                                    </Show>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The webhook page's marks: a delivery that failed for good is what deactivates a webhook
/// (Error); one that failed attempts but may still succeed is for debugging (Debug).
pub fn mark_of(row: &DeliveryRow) -> &'static str {
    match row.status {
        DeliveryStatus::Succeeded => "Success",
        DeliveryStatus::Failed => "Error",
        _ if row.attempt_count > 0 => "Debug",
        DeliveryStatus::Held => "Held",
        _ => "Pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_say_what_each_delivery_did_to_its_webhook() {
        let row = |status, attempt_count| DeliveryRow {
            id: DeliveryId(uuid::Uuid::nil()),
            event_id: crate::models::EventId(uuid::Uuid::nil()),
            webhook_id: crate::models::WebhookId(uuid::Uuid::nil()),
            webhook_name: "w".into(),
            webhook_url: "https://example.com".into(),
            event_type: "a.b".into(),
            category: "a".into(),
            status,
            attempt_count,
            last_response_code: None,
            last_outcome: None,
            last_attempt_at: None,
            last_duration_ms: None,
            created_at: chrono::Utc::now(),
            attempted_url: None,
        };
        assert_eq!(mark_of(&row(DeliveryStatus::Failed, 6)), "Error");
        assert_eq!(mark_of(&row(DeliveryStatus::Retrying, 2)), "Debug");
        assert_eq!(mark_of(&row(DeliveryStatus::Held, 1)), "Debug");
        assert_eq!(mark_of(&row(DeliveryStatus::Held, 0)), "Held");
        assert_eq!(mark_of(&row(DeliveryStatus::Succeeded, 3)), "Success");
        assert_eq!(mark_of(&row(DeliveryStatus::Pending, 0)), "Pending");
    }

    #[test]
    fn filter_changes_start_at_the_first_page_and_paging_keeps_filters() {
        let current = vec![
            ("q".to_owned(), Some("billing".to_owned())),
            ("status".to_owned(), Some("failed".to_owned())),
            ("cursor".to_owned(), Some("abc".to_owned())),
            ("back".to_owned(), Some("0".to_owned())),
        ];
        assert_eq!(href(&current, &[("status", Some("held".into()))]), "/?q=billing&status=held");
        assert_eq!(
            href(&current, &[("cursor", Some("x y".into()))]),
            "/?q=billing&status=failed&cursor=x%20y&back=0"
        );
        assert_eq!(href(&[], &[("q", Some(String::new()))]), "/");
    }
}
