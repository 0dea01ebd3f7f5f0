use leptos::prelude::*;
use leptos_router::{
    components::{Outlet, A},
    hooks::use_navigate,
};

use crate::{api::session::get_current_user, error::AppError, models::CurrentUser};

/// The frame around every signed-in page: navigation, who is signed in, sign-out.
#[component]
pub fn Layout() -> impl IntoView {
    let user = Resource::new(|| (), |_| get_current_user());
    provide_context(user);

    // A session that ended while the app was open: back to the sign-in page.
    Effect::new(move |_| {
        if let Some(Err(AppError::Unauthorized)) = user.get() {
            use_navigate()("/login", Default::default());
        }
    });

    view! {
        <header class="topbar">
            <a href="/" class="brand">"Herald"</a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Delivery log"</A>
            </nav>
            <div class="who">
                <Transition fallback=|| ()>
                    {move || user.get().and_then(Result::ok).map(|u: CurrentUser| view! {
                        <span data-test="current-user">{u.email}</span>
                        <span class="role">{u.role.label()}</span>
                    })}
                </Transition>
                <form method="post" action="/auth/logout">
                    <button type="submit" class="link" data-test="sign-out">"Sign out"</button>
                </form>
            </div>
        </header>
        <main class="content">
            <Outlet/>
        </main>
    }
}
