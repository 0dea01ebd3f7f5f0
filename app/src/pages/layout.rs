use leptos::prelude::*;
use leptos_router::{
    components::{Outlet, A},
    hooks::use_navigate,
};

use crate::{
    api::session::{get_banners, get_current_user},
    components::resource::{server_resource, JsonSliceCodec},
    error::AppError,
    models::CurrentUser,
};

type UserResource = Resource<Result<CurrentUser, AppError>, JsonSliceCodec>;

/// Whether the signed-in user may change things (admins); viewers see no write actions, and
/// the server refuses them anyway.
///
/// False until the page is hydrated, on the server and in the browser alike: the server renders
/// before the user is known, and hydration must find the same markup.
pub fn use_can_write() -> Signal<bool> {
    let user = use_context::<UserResource>();
    let hydrated = crate::hydrated();
    Signal::derive(move || {
        hydrated.get() && user.and_then(|u| u.get()).and_then(Result::ok).is_some_and(|u| u.role.can_write())
    })
}

/// The signed-in user's id, once known.
pub fn use_current_user_id() -> Signal<Option<crate::models::UserId>> {
    let user = use_context::<UserResource>();
    Signal::derive(move || user.and_then(|u| u.get()).and_then(Result::ok).map(|u| u.id))
}

/// The frame around every signed-in page: navigation, who is signed in, sign-out.
#[component]
pub fn Layout() -> impl IntoView {
    let user: UserResource = server_resource(|| (), |_| get_current_user());
    provide_context(user);

    // A session that ended while the app was open: back to the sign-in page.
    Effect::new(move |_| {
        if let Some(Err(AppError::Unauthorized)) = user.get() {
            use_navigate()("/login", Default::default());
        }
    });

    // While the database cannot be read or written, every page says so (checked every 5 s).
    let health = server_resource(|| (), |_| get_banners());
    Effect::new(move |_| {
        let handle = set_interval_with_handle(move || health.refetch(), std::time::Duration::from_secs(5));
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    });
    let problem = move || match health.get() {
        Some(Ok(b)) => b.database,
        Some(Err(AppError::Transport(e))) => Some(format!("Herald does not answer: {e}")),
        Some(Err(AppError::Unavailable(e))) => Some(e),
        _ => None,
    };

    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <Transition fallback=|| ()>
            {move || problem().map(|why| view! {
                <div class="banner banner-error" role="alert" data-test="health-banner">
                    <strong>"Herald cannot store or deliver events right now. "</strong>
                    {why}
                    " Events posted meanwhile are refused with 503 (nothing accepted is lost); \
                     delivery resumes by itself when the database answers again."
                </div>
            })}
            {move || health.get().and_then(Result::ok).map(|b| b.deactivated).filter(|d| !d.is_empty()).map(|d| view! {
                <div class="banner banner-warn" role="status" data-test="deactivated-banner">
                    <strong>{if d.len() == 1 { "A webhook is deactivated".to_owned() } else { format!("{} webhooks are deactivated", d.len()) }}</strong>
                    {if d.len() == 1 { " after too many errors; it receives nothing until reactivated: " } else { " after too many errors; they receive nothing until reactivated: " }}
                    {d.into_iter().enumerate().map(|(i, (id, name))| view! {
                        {(i > 0).then_some(", ")}<a href=format!("/webhooks/{id}")>{name}</a>
                    }).collect_view()}
                </div>
            })}
        </Transition>
        <header class="topbar">
            <a href="/" class="brand">"Herald"</a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Delivery log"</A>
                <A href="/dashboard">"Dashboard"</A>
                <A href="/webhooks">"Webhooks"</A>
                <A href="/recover">"Recover"</A>
                <A href="/settings">"Settings"</A>
            </nav>
            <div class="who">
                <Transition fallback=|| ()>
                    {move || user.get().and_then(Result::ok).map(|u: CurrentUser| view! {
                        <span data-test="current-user">{u.email}</span>
                        <span class="role" data-test="current-role">{u.role.label()}</span>
                    })}
                </Transition>
                <form method="post" action="/auth/logout">
                    <button type="submit" class="link" data-test="sign-out">"Sign out"</button>
                </form>
            </div>
        </header>
        <main class="content" id="main">
            <Outlet/>
        </main>
    }
}
