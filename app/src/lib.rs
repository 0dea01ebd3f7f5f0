//! Herald's admin app (Leptos components and server functions) and, behind the `ssr`
//! feature, the query layer shared by the app, the JSON API and the delivery engine.

pub mod api;
pub mod components;
pub mod error;
pub mod models;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    lazy_route, path, Lazy, LazyRoute,
};

use crate::pages::{
    dashboard::DashboardPage,
    deliveries::DeliveryLogPage,
    delivery::DeliveryPage,
    layout::Layout,
    login::LoginPage,
    not_found::NotFound,
    recover::RecoverPage,
    settings::SettingsPage,
    webhooks::{EditWebhookPage, NewWebhookPage, WebhookPage, WebhooksPage},
};

/// The Content-Security-Policy of the admin app's pages. `nonce` (fresh for every response)
/// lets the hydration and streaming scripts Leptos inlines run; the bundle is loaded from this
/// origin and needs `wasm-unsafe-eval` to compile. Nothing may frame the app.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The HTML document rendered on the server around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(res)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    {
        if let Ok(value) = axum::http::HeaderValue::from_str(&page_csp(&nonce)) {
            res.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="herald" href="/pkg/herald.css"/>
        <Link rel="icon" href="/favicon.ico"/>
        <Meta name="description" content="Herald webhook delivery"/>
        <Title formatter=|text: String| if text.is_empty() { "Herald".to_owned() } else { format!("{text} · Herald") }/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view={Lazy::<LogPages>::new()}/>
                    <Route path=path!("/deliveries/:id") view={Lazy::<DeliveryPages>::new()}/>
                    <Route path=path!("/recover") view={Lazy::<OverviewPages>::new()}/>
                    <Route path=path!("/webhooks") view={Lazy::<WebhookPages>::new()}/>
                    <Route path=path!("/webhooks/new") view={Lazy::<WebhookFormPages>::new()}/>
                    <Route path=path!("/webhooks/:id") view={Lazy::<WebhookPages>::new()}/>
                    <Route path=path!("/webhooks/:id/edit") view={Lazy::<WebhookFormPages>::new()}/>
                    <Route path=path!("/dashboard") view={Lazy::<OverviewPages>::new()}/>
                    <Route path=path!("/settings") view={Lazy::<SettingsPages>::new()}/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

// The main WASM module holds the frame (router, navigation, banners) and the sign-in page; every
// other page loads on demand, in six groups: each group is a lazy route whose code is in chunks
// the browser fetches when one of its pages is first shown (scripts/build.sh splits the bundle
// there), and the server adds `<link rel="preload">` for them when it renders such a page. The
// splitter makes a chunk file for every set of groups that shares code, each compressed alone:
// more groups, more files, larger first loads (with one group per page a page needed up to 99
// files). The delivery log is a group of its own (in the main module it made every page carry
// it); so are one delivery, the settings and the webhook form; recovery and the dashboard, both
// light, share one. Measured in BENCHMARKS.md, "The delivery log leaves the main module".

/// The pages of the groups with several pages, told apart by path.
#[derive(Clone, Copy, Debug, PartialEq)]
enum LazyPage {
    Webhooks,
    NewWebhook,
    Webhook,
    EditWebhook,
}

impl LazyPage {
    /// The page the router shows at `path` (one of the lazy routes' paths).
    fn at(path: &str) -> Self {
        match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
            ["webhooks", "new"] => Self::NewWebhook,
            ["webhooks", _, "edit"] => Self::EditWebhook,
            ["webhooks", _] => Self::Webhook,
            _ => Self::Webhooks,
        }
    }

    fn current() -> Self {
        Self::at(&leptos_router::hooks::use_location().pathname.get_untracked())
    }
}

/// The delivery log, where a signed-in admin lands.
pub struct LogPages;

#[lazy_route]
impl LazyRoute for LogPages {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        DeliveryLogPage().into_any()
    }
}

/// One delivery with its attempts.
pub struct DeliveryPages;

#[lazy_route]
impl LazyRoute for DeliveryPages {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        DeliveryPage().into_any()
    }
}

/// Recovery (re-sending the failed deliveries of a webhook or a time window) and the dashboard:
/// two light pages in one group, so there are fewer sets of groups sharing code, each a chunk
/// file of its own.
pub struct OverviewPages(bool);

#[lazy_route]
impl LazyRoute for OverviewPages {
    fn data() -> Self {
        Self(leptos_router::hooks::use_location().pathname.get_untracked().starts_with("/recover"))
    }

    fn view(this: Self) -> AnyView {
        if this.0 {
            RecoverPage().into_any()
        } else {
            DashboardPage().into_any()
        }
    }
}

/// The webhook list and one webhook.
pub struct WebhookPages(LazyPage);

#[lazy_route]
impl LazyRoute for WebhookPages {
    fn data() -> Self {
        Self(LazyPage::current())
    }

    fn view(this: Self) -> AnyView {
        match this.0 {
            LazyPage::Webhook => WebhookPage().into_any(),
            _ => WebhooksPage().into_any(),
        }
    }
}

/// The webhook form, for a new webhook or an edited one: a group of its own, so that neither
/// it nor the webhook's page loads the other's code (together their first load was 26 B under
/// the 400 KiB goal).
pub struct WebhookFormPages(LazyPage);

#[lazy_route]
impl LazyRoute for WebhookFormPages {
    fn data() -> Self {
        Self(LazyPage::current())
    }

    fn view(this: Self) -> AnyView {
        match this.0 {
            LazyPage::NewWebhook => NewWebhookPage().into_any(),
            _ => EditWebhookPage().into_any(),
        }
    }
}

/// The settings: retention, API keys, users, the outbox, the activity log.
pub struct SettingsPages;

#[lazy_route]
impl LazyRoute for SettingsPages {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        SettingsPage().into_any()
    }
}

/// Whether the browser has finished hydrating the page. Always false on the server.
///
/// Set after the whole page is hydrated, the current page's chunk included, rather than by
/// an effect: the frame's effects run while that chunk loads, and a page that hydrated after
/// this turned true would render different markup from the server's.
pub fn hydrated() -> Signal<bool> {
    #[cfg(feature = "hydrate")]
    {
        HYDRATED.with(|h| h.clone()).into()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Signal::stored(false)
    }
}

#[cfg(feature = "hydrate")]
thread_local! {
    static HYDRATED: ArcRwSignal<bool> = ArcRwSignal::new(false);
}

/// Called by the browser entry point once hydration is complete: enables what waited for it
/// and marks `<body data-hydrated="true">`, which the browser tests wait for.
#[cfg(feature = "hydrate")]
pub fn mark_hydrated() {
    HYDRATED.with(|h| h.set(true));
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

#[cfg(test)]
mod tests {
    use super::LazyPage;

    #[test]
    fn each_lazy_path_names_its_page() {
        for (path, page) in [
            ("/webhooks", LazyPage::Webhooks),
            ("/webhooks/new", LazyPage::NewWebhook),
            ("/webhooks/0195", LazyPage::Webhook),
            ("/webhooks/0195/edit", LazyPage::EditWebhook),
        ] {
            assert_eq!(LazyPage::at(path), page, "{path}");
        }
    }
}
