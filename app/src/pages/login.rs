use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// A plain HTML form posted to `/auth/login`: signing in works before (and without) the WASM bundle.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let failed = move || query.read().get("error").is_some();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_owned());

    view! {
        <Title text="Sign in"/>
        <main class="login">
            <form method="post" action="/auth/login" class="card login-card" data-test="login-form">
                <h1 class="brand">"Herald"</h1>
                <p class="muted">"Sign in to the webhook delivery console."</p>
                <Show when=failed>
                    <p class="alert error" role="alert" data-test="login-error">
                        "That email and password do not match an active account."
                    </p>
                </Show>
                <input type="hidden" name="next" prop:value=next/>
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" autocomplete="username" required autofocus/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required/>
                <button type="submit" class="primary" data-test="login-submit">"Sign in"</button>
            </form>
        </main>
    }
}
