use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::{both_databases, common::*};

both_databases!(
    sign_in_opens_the_delivery_log_and_a_wrong_password_is_refused,
    server_functions_need_a_session_and_answer_errors_with_their_status
);

async fn sign_in_opens_the_delivery_log_and_a_wrong_password_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // Not signed in: every page leads to the sign-in page, remembering where it was going.
    let res = app.client.get(app.url("/?status=failed")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/login?next=%2F%3Fstatus%3Dfailed");
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("data-test=\"login-form\""));

    // Wrong password, and unknown email: refused, no session.
    for (email, password) in [(ADMIN_EMAIL, "wrong password!"), ("nobody@example.test", ADMIN_PASSWORD)] {
        let res = app
            .client
            .post(app.url("/auth/login"))
            .form(&[("email", email), ("password", password), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(res.headers()[LOCATION].to_str().unwrap().starts_with("/login?error=invalid"));
        assert!(res.headers().get(SET_COOKIE).is_none());
    }

    // Right password: an HttpOnly, SameSite session cookie and the page asked for.
    let res = app
        .client
        .post(app.url("/auth/login"))
        .form(&[("email", "Admin@Example.test"), ("password", ADMIN_PASSWORD), ("next", "/?status=failed")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/?status=failed");
    let set_cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let res = app.client.get(app.url("/")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("data-test=\"delivery-log\""));
    assert!(html.contains(ADMIN_EMAIL), "the header names who is signed in");
    assert!(html.contains("data-test=\"delivery-log-empty\""), "a fresh Herald has an empty log");

    // Signing out ends the session for good.
    let res = app.client.post(app.url("/auth/logout")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = app.client.get(app.url("/")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(res.status(), 303, "the old cookie no longer opens pages");

    // An open redirect through sign-in is not possible.
    let res = app
        .client
        .post(app.url("/auth/login"))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[LOCATION], "/");
    app.stop().await;
}

async fn server_functions_need_a_session_and_answer_errors_with_their_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let call = |path: &'static str, form: &'static [(&'static str, &'static str)], cookie: Option<String>| {
        let mut req = app.client.post(app.url(path)).form(form);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send()
    };
    let list: &[(&str, &str)] = &[("query[q]", "")];

    let res = call("/rpc/list_deliveries", list, None).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap(), "Unauthorized");

    let cookie = app.sign_in().await;
    let res = call("/rpc/list_deliveries", list, Some(cookie.clone())).await.unwrap();
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page["items"], serde_json::json!([]));

    // Refused input is a 422 naming the field, a missing delivery a 404, an undecodable call a
    // 400: none of them is a server error.
    let res = call("/rpc/list_deliveries", &[("query[cursor]", "not-a-cursor")], Some(cookie.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["Invalid"]["field"], "cursor");
    let res =
        call("/rpc/get_delivery", &[("id", "0195a3c0-0000-7000-8000-000000000000")], Some(cookie.clone()))
            .await
            .unwrap();
    assert_eq!(res.status(), 404);
    let res = call("/rpc/get_delivery", &[("id", "not-an-id")], Some(cookie)).await.unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}
