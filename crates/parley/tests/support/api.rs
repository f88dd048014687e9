//! An API client for tests: the first administrator through the setup
//! link, then requests with a personal access token or a browser session.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::Server;

/// The administrator's password in tests.
pub const ADMIN_PASSWORD: &str = "correct horse battery";
/// The password of users made by [`Api::create_users`].
pub const USER_PASSWORD: &str = "long enough pass 1";

/// Signed-in API access to one server.
pub struct Api {
    /// `http://ADDR`.
    pub base: String,
    /// The client.
    pub client: reqwest::Client,
    /// `Authorization` header value, for token access.
    pub bearer: Option<String>,
    /// Session cookie and CSRF token, for browser-like access.
    pub session: Option<(String, String)>,
}

/// A response: status, body as JSON (Null if not JSON) and headers.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The first field error: (field, rule, message).
    pub fn field_error(&self) -> (String, String, String) {
        let f = &self.body["error"]["fields"][0];
        (
            f["field"].as_str().unwrap_or_default().to_owned(),
            f["rule"].as_str().unwrap_or_default().to_owned(),
            f["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

impl Api {
    /// Nobody signed in.
    pub fn anonymous(server: &Server) -> Api {
        Api {
            base: format!("http://{}", server.http),
            client: reqwest::Client::new(),
            bearer: None,
            session: None,
        }
    }

    /// Creates the first administrator (admin@example.org) through the
    /// setup link and signs in with a fresh access token.
    pub async fn admin(server: &Server) -> Api {
        let mut api = Api::anonymous(server);
        let answer = api
            .call(
                Method::POST,
                "/api/v1/setup",
                Some(json!({
                    "token": server.setup_token(),
                    "login": "admin@example.org",
                    "password": ADMIN_PASSWORD,
                })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        api.session = Some(session_of(&answer));
        let token = api
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "tests"})),
            )
            .await;
        assert_eq!(token.status, StatusCode::CREATED, "{}", token.body);
        api.bearer = Some(format!(
            "Bearer {}",
            token.body["token"].as_str().unwrap_or_default()
        ));
        api.session = None;
        api
    }

    /// A request; JSON in and out.
    /// Signs `login` in through the API; the session is used from then on.
    pub async fn signed_in(server: &Server, login: &str, password: &str) -> Api {
        let mut api = Api::anonymous(server);
        let answer = api
            .call(
                Method::POST,
                "/api/v1/login",
                Some(json!({"login": login, "password": password})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        api.session = Some(session_of(&answer));
        api
    }

    /// The session cookie (`name=value`) of a signed-in `Api`.
    pub fn cookie(&self) -> String {
        self.session.clone().expect("signed in").0
    }

    /// Creates users `(login, display name)` with [`USER_PASSWORD`] (as an administrator).
    pub async fn create_users(&self, users: &[(&str, &str)]) {
        for (login, name) in users {
            let r = self
                .post(
                    "/api/v1/users",
                    json!({"login": login, "password": USER_PASSWORD, "display_name": name}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            request = request.header("authorization", b);
        }
        if let Some((cookie, csrf)) = &self.session {
            request = request
                .header("cookie", cookie)
                .header("x-csrf-token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// The session cookie (`name=value`) and CSRF token of a sign-in answer.
pub fn session_of(answer: &Answer) -> (String, String) {
    let cookie = answer
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let csrf = answer.body["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    (cookie, csrf)
}
