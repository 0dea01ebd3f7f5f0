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
    path,
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
    // Runs only in the browser: marks the page once the WASM bundle has taken over,
    // which tests (and curious people) can check.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="herald" href="/pkg/herald.css"/>
        <Link rel="icon" href="/favicon.ico"/>
        <Meta name="description" content="Herald webhook delivery"/>
        <Title formatter=|text: String| if text.is_empty() { "Herald".to_owned() } else { format!("{text} · Herald") }/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view=DeliveryLogPage/>
                    <Route path=path!("/deliveries/:id") view=DeliveryPage/>
                    <Route path=path!("/dashboard") view=DashboardPage/>
                    <Route path=path!("/webhooks") view=WebhooksPage/>
                    <Route path=path!("/webhooks/new") view=NewWebhookPage/>
                    <Route path=path!("/webhooks/:id") view=WebhookPage/>
                    <Route path=path!("/webhooks/:id/edit") view=EditWebhookPage/>
                    <Route path=path!("/recover") view=RecoverPage/>
                    <Route path=path!("/settings") view=SettingsPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
