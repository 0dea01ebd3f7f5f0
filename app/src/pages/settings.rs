//! Settings: retention policy, API keys, users, the email outbox and the system activity log.
//! Viewers see everything read-only.

use leptos::prelude::*;
use leptos_meta::Title;

use super::layout::use_can_write;
use crate::{
    api::settings::{
        create_api_key, create_user, get_retention, list_activity, list_api_keys, list_outbox, list_users,
        revoke_api_key, save_retention, set_user_disabled, set_user_role,
    },
    components::{copy::CopyButton, format::timestamp, resource::server_resource},
    error::AppError,
    models::{ApiKeyId, RetentionPolicy, Role, UserId},
};

#[component]
pub fn SettingsPage() -> impl IntoView {
    let can_write = use_can_write();
    view! {
        <Title text="Settings"/>
        <h1>"Settings"</h1>
        <RetentionSection/>
        <Show when=move || can_write.get()>
            <ApiKeysSection/>
            <UsersSection/>
        </Show>
        <OutboxSection/>
        <ActivitySection/>
    }
}

#[component]
fn RetentionSection() -> impl IntoView {
    let can_write = use_can_write();
    let policy = server_resource(|| (), |_| get_retention());
    let deliveries = RwSignal::new(String::new());
    let events = RwSignal::new(String::new());
    let jobs = RwSignal::new(String::new());
    let bodies = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(p)) = policy.get() {
            deliveries.set(p.deliveries_days.to_string());
            events.set(p.events_days.to_string());
            jobs.set(p.jobs_days.to_string());
            bodies.set(p.bodies_days.map(|d| d.to_string()).unwrap_or_default());
        }
    });
    let result = RwSignal::new(None::<Result<String, AppError>>);
    let save = Action::new(move |p: &RetentionPolicy| {
        let p = *p;
        async move {
            result.set(Some(save_retention(p).await.map(|_| "Saved; the next purge applies it.".into())))
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let days = |v: String, field: &str| {
            v.trim().parse::<u32>().map_err(|_| AppError::Invalid {
                field: field.into(),
                message: "a whole number of days".into(),
            })
        };
        let parsed = (|| {
            Ok::<_, AppError>(RetentionPolicy {
                deliveries_days: days(deliveries.get_untracked(), "deliveries_days")?,
                events_days: days(events.get_untracked(), "events_days")?,
                jobs_days: days(jobs.get_untracked(), "jobs_days")?,
                bodies_days: match bodies.get_untracked().trim() {
                    "" => None,
                    b => Some(days(b.to_owned(), "bodies_days")?),
                },
            })
        })();
        match parsed {
            Ok(p) => {
                save.dispatch(p);
            }
            Err(e) => result.set(Some(Err(e))),
        }
    };
    let error_for = move |field: &'static str| {
        move || match result.get() {
            Some(Err(AppError::Invalid { field: f, message })) if f == field => Some(
                view! { <p class="field-error" role="alert" data-test=format!("error-{field}")>{message}</p> },
            ),
            _ => None,
        }
    };
    let input = move |id: &'static str, label: &'static str, value: RwSignal<String>, hint: &'static str| {
        view! {
            <div>
                <label for=id>{label}</label>
                <input id=id inputmode="numeric" prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                    disabled=move || !can_write.get() placeholder=hint/>
                {error_for(id)}
            </div>
        }
    };
    view! {
        <section class="card" aria-labelledby="retention-title" data-test="retention">
            <h2 id="retention-title">"Retention"</h2>
            <p class="muted small">"Older rows are purged in small batches every hour. Pending and retrying deliveries are never purged."</p>
            <form on:submit=on_submit class="row">
                {input("deliveries_days", "Deliveries and attempts (days)", deliveries, "30")}
                {input("events_days", "Events (days)", events, "30")}
                {input("jobs_days", "Finished jobs (days)", jobs, "7")}
                {input("bodies_days", "Request and response bodies (days, optional)", bodies, "same as deliveries")}
                <Show when=move || can_write.get()>
                    <div class="row-actions"><button type="submit" class="primary" data-test="save-retention">"Save retention"</button></div>
                </Show>
            </form>
            <p role="status" aria-live="polite" data-test="retention-result">
                {move || match result.get() {
                    Some(Ok(t)) => Some(view! { <span class="alert ok">{t}</span> }.into_any()),
                    Some(Err(e)) => Some(view! { <span class="alert error">{e.to_string()}</span> }.into_any()),
                    None => None,
                }}
            </p>
        </section>
    }
}

#[component]
fn ApiKeysSection() -> impl IntoView {
    let keys = server_resource(|| (), |_| list_api_keys());
    let name = RwSignal::new(String::new());
    let created = RwSignal::new(None::<Result<String, AppError>>);
    let create = Action::new(move |n: &String| {
        let n = n.clone();
        async move {
            created.set(Some(create_api_key(n).await));
            keys.refetch();
        }
    });
    let revoke = Action::new(move |id: &ApiKeyId| {
        let id = *id;
        async move {
            let _ = revoke_api_key(id).await;
            created.set(None); // a key shown once is not left on screen after a revocation
            keys.refetch();
        }
    });
    view! {
        <section class="card" aria-labelledby="keys-title" data-test="api-keys">
            <h2 id="keys-title">"API keys"</h2>
            <form class="row" on:submit=move |ev| { ev.prevent_default(); create.dispatch(name.get_untracked()); }>
                <div>
                    <label for="key-name">"New key's name"</label>
                    <input id="key-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                </div>
                <div class="row-actions"><button type="submit" data-test="create-key">"Create key"</button></div>
            </form>
            {move || created.get().map(|r| match r {
                Ok(k) => view! { <p class="alert ok" data-test="new-key">"Shown once: "<code>{k.clone()}</code>" "<CopyButton text=k label="Copy key"/></p> }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <Transition fallback=|| ()>
                {move || keys.get().and_then(Result::ok).map(|list| view! {
                    <div class="table-wrap"><table class="data">
                        <caption class="visually-hidden">"API keys"</caption>
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Key"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Actions"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|k| {
                                let id = k.id;
                                view! {
                                    <tr data-test="key-row">
                                        <td>{k.name}</td>
                                        <td><code>{k.prefix}"…"</code></td>
                                        <td>{timestamp(k.created_at)}</td>
                                        <td>{k.last_used_at.map(timestamp).unwrap_or_else(|| "never".into())}</td>
                                        <td>{match k.revoked_at {
                                            Some(t) => view! { <span class="muted">"revoked "{timestamp(t)}</span> }.into_any(),
                                            None => view! { <button type="button" class="small-button" data-test="revoke" on:click=move |_| {
                                                if super::confirm("Revoke this API key? Integrations that use it are refused from now on.") { revoke.dispatch(id); }
                                            }>"Revoke"</button> }.into_any(),
                                        }}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                })}
            </Transition>
        </section>
    }
}

#[component]
fn UsersSection() -> impl IntoView {
    let users = server_resource(|| (), |_| list_users());
    let me = super::layout::use_current_user_id();
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let created = RwSignal::new(None::<(String, String)>);
    let outcome = RwSignal::new(None::<Result<String, AppError>>);
    let create = Action::new(move |(e, r): &(String, Role)| {
        let (e, r) = (e.clone(), *r);
        async move {
            match create_user(e.clone(), r).await {
                Ok(password) => {
                    created.set(Some((e.trim().to_lowercase(), password)));
                    outcome.set(None);
                    email.set(String::new());
                }
                Err(err) => {
                    created.set(None);
                    outcome.set(Some(Err(err)));
                }
            }
            users.refetch();
        }
    });
    let change = Action::new(move |&(id, what): &(UserId, Result<Role, bool>)| async move {
        let answer = match what {
            Ok(r) => set_user_role(id, r).await.map(|u| format!("{} is now {}.", u.email, u.role.label())),
            Err(d) => set_user_disabled(id, d).await.map(|u| match u.disabled {
                true => format!("{} is disabled; their sessions ended.", u.email),
                false => format!("{} can sign in again.", u.email),
            }),
        };
        outcome.set(Some(answer));
        users.refetch();
    });
    view! {
        <section class="card" aria-labelledby="users-title" data-test="users">
            <h2 id="users-title">"Users and roles"</h2>
            <p class="muted small">"Admins change everything; viewers read; API users are told when a webhook is deactivated."</p>
            <form class="row" data-test="new-user" on:submit=move |ev| { ev.prevent_default(); create.dispatch((email.get_untracked(), role.get_untracked())); }>
                <div>
                    <label for="user-email">"New user's email"</label>
                    <input id="user-email" type="email" autocomplete="off" prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev))/>
                </div>
                <div>
                    <label for="user-role">"Role"</label>
                    <select id="user-role" on:change=move |ev| role.set(event_target_value(&ev).parse().unwrap_or(Role::Viewer))>
                        {Role::ALL.iter().map(|r| view! { <option value=r.as_str() selected=*r == Role::Viewer>{r.label()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="row-actions"><button type="submit" data-test="create-user" disabled=move || create.pending().get()>"Create user"</button></div>
            </form>
            {move || created.get().map(|(who, password)| view! {
                <p class="alert ok" data-test="new-user-password">{format!("{who} can sign in with this password, shown once: ")}<code>{password.clone()}</code>" "<CopyButton text=password label="Copy password"/></p>
            })}
            <p role="status" aria-live="polite" data-test="user-outcome">
                {move || outcome.get().map(|r| match r {
                    Ok(t) => view! { <span class="alert ok">{t}</span> }.into_any(),
                    Err(e) => view! { <span class="alert error">{e.to_string()}</span> }.into_any(),
                })}
            </p>
            <Transition fallback=|| ()>
                {move || users.get().and_then(Result::ok).map(|list| view! {
                    <div class="table-wrap"><table class="data">
                        <caption class="visually-hidden">"Users"</caption>
                        <thead><tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Since"</th><th scope="col">"Actions"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|u| {
                                let (id, role) = (u.id, u.role);
                                let yourself = me.get() == Some(id);
                                let label = format!("Role of {}", u.email);
                                let question = format!("Disable {}? They are signed out at once and cannot sign in until enabled again.", u.email);
                                view! {
                                    <tr data-test="user-row">
                                        <td>{u.email.clone()}{u.disabled.then_some(" (disabled)")}{yourself.then_some(" (you)")}</td>
                                        <td>
                                            <select aria-label=label data-test="user-role" disabled=yourself
                                                on:change=move |ev| if let Ok(r) = event_target_value(&ev).parse() { change.dispatch((id, Ok(r))); }>
                                                {Role::ALL.iter().map(|r| view! { <option value=r.as_str() selected=*r == role>{r.label()}</option> }).collect_view()}
                                            </select>
                                        </td>
                                        <td>{timestamp(u.created_at)}</td>
                                        <td>{(!yourself).then(|| match u.disabled {
                                            true => view! { <button type="button" class="small-button" data-test="enable-user"
                                                on:click=move |_| { change.dispatch((id, Err(false))); }>"Enable"</button> }.into_any(),
                                            false => view! { <button type="button" class="small-button" data-test="disable-user"
                                                on:click=move |_| if super::confirm(&question) { change.dispatch((id, Err(true))); }>"Disable"</button> }.into_any(),
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                })}
            </Transition>
        </section>
    }
}

#[component]
fn OutboxSection() -> impl IntoView {
    let mails = server_resource(|| (), |_| list_outbox());
    view! {
        <section class="card" aria-labelledby="outbox-title" data-test="outbox">
            <h2 id="outbox-title">"Email outbox"</h2>
            <p class="muted small">"Every email Herald sends (deactivation notices). Without HERALD_SMTP_URL they wait here."</p>
            <Transition fallback=|| ()>
                {move || mails.get().and_then(Result::ok).map(|list| {
                    let empty = list.is_empty();
                    view! {
                        <Show when=move || empty><p class="muted">"No emails yet."</p></Show>
                        {list.into_iter().map(|m| view! {
                            <details class="mail">
                                <summary>
                                    <span class="strong">{m.subject}</span>" → "{m.recipient}" · "{timestamp(m.created_at)}" · "
                                    {match (m.sent_at, m.error) {
                                        (Some(t), _) => format!("sent {}", timestamp(t)),
                                        (None, Some(e)) => format!("not sent: {e}"),
                                        (None, None) => "waiting".into(),
                                    }}
                                </summary>
                                <pre class="code">{m.body}</pre>
                            </details>
                        }).collect_view()}
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ActivitySection() -> impl IntoView {
    let kind = RwSignal::new(String::new());
    let cursor = RwSignal::new(None::<String>);
    let page = server_resource(move || (kind.get(), cursor.get()), |(k, c)| list_activity(Some(k), c));
    view! {
        <section class="card" aria-labelledby="activity-title" data-test="activity">
            <h2 id="activity-title">"System activity"</h2>
            <div class="row">
                <div>
                    <label for="activity-kind">"Show"</label>
                    <select id="activity-kind" on:change=move |ev| { cursor.set(None); kind.set(event_target_value(&ev)); }>
                        <option value="">"Everything"</option>
                        <option value="job.">"Jobs (purges, bulk re-sends)"</option>
                        <option value="webhook.">"Webhook changes"</option>
                        <option value="api_key.">"API keys"</option>
                        <option value="user.">"Users"</option>
                        <option value="settings.">"Settings"</option>
                    </select>
                </div>
            </div>
            <Transition fallback=|| ()>
                {move || page.get().map(|r| match r {
                    Err(e) => view! { <p class="alert error">{e.to_string()}</p> }.into_any(),
                    Ok(p) => {
                        let next = p.next_cursor.clone();
                        view! {
                            <div class="table-wrap">
                                <table class="data" data-test="activity-table">
                                    <caption class="visually-hidden">"System activity, newest first"</caption>
                                    <thead><tr><th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Who"</th><th scope="col">"Rows"</th><th scope="col">"Summary"</th></tr></thead>
                                    <tbody>
                                        {p.items.into_iter().map(|a| view! {
                                            <tr data-test="activity-row">
                                                <td class="nowrap">{timestamp(a.occurred_at)}</td>
                                                <td><code>{a.kind}</code></td>
                                                <td>{a.actor.unwrap_or_else(|| "—".into())}</td>
                                                <td>{a.rows_affected.map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</td>
                                                <td>{a.summary}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <p class="pager">
                                <Show when=move || cursor.get().is_some()>
                                    <button type="button" on:click=move |_| cursor.set(None)>"Newest"</button>
                                </Show>
                                {next.map(|n| view! { <button type="button" on:click=move |_| cursor.set(Some(n.clone()))>"Older →"</button> })}
                            </p>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
