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

/// The HTML document rendered on the server around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
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
                <Route path=path!("/login") view={Lazy::<LoginRoute>::new()}/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view={Lazy::<DeliveryLogRoute>::new()}/>
                    <Route path=path!("/deliveries/:id") view={Lazy::<DeliveryRoute>::new()}/>
                    <Route path=path!("/dashboard") view={Lazy::<DashboardRoute>::new()}/>
                    <Route path=path!("/webhooks") view={Lazy::<WebhooksRoute>::new()}/>
                    <Route path=path!("/webhooks/new") view={Lazy::<NewWebhookRoute>::new()}/>
                    <Route path=path!("/webhooks/:id") view={Lazy::<WebhookRoute>::new()}/>
                    <Route path=path!("/webhooks/:id/edit") view={Lazy::<EditWebhookRoute>::new()}/>
                    <Route path=path!("/recover") view={Lazy::<RecoverRoute>::new()}/>
                    <Route path=path!("/settings") view={Lazy::<SettingsRoute>::new()}/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

// Every page is a lazy route: in the browser its code is a chunk of the WASM bundle of its own
// (scripts/build.sh splits the bundle at these functions), fetched when the page is first
// shown, so the first download holds only the framework, the frame and the pages it shows.
// On the server, rendering a page adds `<link rel="preload">` for its chunks.
// Each `impl` is written out: `#[lazy_route]` names the chunk after where it is written.

/// The sign-in page, loaded on demand.
pub struct LoginRoute;

#[lazy_route]
impl LazyRoute for LoginRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        LoginPage().into_any()
    }
}

/// The delivery log page, loaded on demand.
pub struct DeliveryLogRoute;

#[lazy_route]
impl LazyRoute for DeliveryLogRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        DeliveryLogPage().into_any()
    }
}

/// The delivery page, loaded on demand.
pub struct DeliveryRoute;

#[lazy_route]
impl LazyRoute for DeliveryRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        DeliveryPage().into_any()
    }
}

/// The dashboard page, loaded on demand.
pub struct DashboardRoute;

#[lazy_route]
impl LazyRoute for DashboardRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        DashboardPage().into_any()
    }
}

/// The webhook list page, loaded on demand.
pub struct WebhooksRoute;

#[lazy_route]
impl LazyRoute for WebhooksRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        WebhooksPage().into_any()
    }
}

/// The new-webhook page, loaded on demand.
pub struct NewWebhookRoute;

#[lazy_route]
impl LazyRoute for NewWebhookRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        NewWebhookPage().into_any()
    }
}

/// The webhook page, loaded on demand.
pub struct WebhookRoute;

#[lazy_route]
impl LazyRoute for WebhookRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        WebhookPage().into_any()
    }
}

/// The webhook-editing page, loaded on demand.
pub struct EditWebhookRoute;

#[lazy_route]
impl LazyRoute for EditWebhookRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        EditWebhookPage().into_any()
    }
}

/// The recovery page, loaded on demand.
pub struct RecoverRoute;

#[lazy_route]
impl LazyRoute for RecoverRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        RecoverPage().into_any()
    }
}

/// The settings page, loaded on demand.
pub struct SettingsRoute;

#[lazy_route]
impl LazyRoute for SettingsRoute {
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
