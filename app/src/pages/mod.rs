pub mod dashboard;
pub mod deliveries;
pub mod delivery;
pub mod layout;
pub mod login;
pub mod not_found;
pub mod recover;
pub mod settings;
pub mod webhooks;

/// Waits in the browser (a timer); returns at once on the server, where nothing polls.
pub(crate) async fn sleep(d: std::time::Duration) {
    #[cfg(feature = "hydrate")]
    {
        let (tx, rx) = futures_channel::oneshot::channel::<()>();
        leptos::prelude::set_timeout(
            move || {
                let _ = tx.send(());
            },
            d,
        );
        let _ = rx.await;
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = d;
}

/// Asks the person to confirm a destructive action (the browser's own dialog: keyboard and
/// screen-reader friendly, and no code of ours). Never true on the server.
pub(crate) fn confirm(message: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        leptos::prelude::window().confirm_with_message(message).unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = message;
        false
    }
}
