//! Logins for the status page: the Postgres server's users and passwords, a session cookie set
//! by the login form, or HTTP Basic for scripts. Failed logins wait like the Postgres server's
//! ([`crate::serve::throttle`]); sessions live in memory for [`SESSION_TTL`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::html::{self, escape};
use super::{Body, redirect, respond};
use crate::serve::config::Credential;
use crate::serve::handler::Users;
use crate::serve::throttle::LoginThrottle;

/// The session cookie's name.
pub const COOKIE: &str = "macrolake_session";
/// How long a session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

/// Outcome of checking a request's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// A logged-in user.
    User(String),
    /// An `Authorization: Basic` header with a wrong user or password.
    BadBasic,
    /// No credentials (or an unknown or expired session).
    Anonymous,
}

/// Users, sessions and the failed-login throttle.
pub struct Auth {
    users: Users,
    throttle: LoginThrottle,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl Auth {
    /// For these users; failed logins wait `base`, doubling up to `max`.
    pub fn new(credentials: &[Credential], base: Duration, max: Duration) -> Self {
        Self {
            users: Users::new(credentials),
            throttle: LoginThrottle::new(base, max),
            sessions: Mutex::default(),
        }
    }

    /// Checks a password after the throttle's wait, and records the outcome.
    async fn verify(&self, user: &str, password: &str, addr: IpAddr) -> bool {
        let wait = self.throttle.delay(user, addr);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let ok = self.users.verify(user, password);
        if ok {
            self.throttle.succeeded(user, addr);
        } else {
            tracing::warn!(user, %addr, "status page: login refused");
            self.throttle.failed(user, addr);
        }
        ok
    }

    /// The user a request carries: a live session cookie, else HTTP Basic.
    pub async fn check(&self, headers: &HeaderMap, addr: IpAddr) -> Check {
        if let Some(token) = cookie(headers, COOKIE) {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            match sessions.get(&token) {
                Some((user, at)) if at.elapsed() < SESSION_TTL => return Check::User(user.clone()),
                Some(_) => {
                    sessions.remove(&token);
                }
                None => {}
            }
        }
        let Some((user, password)) = basic(headers) else {
            return Check::Anonymous;
        };
        if self.verify(&user, &password, addr).await {
            Check::User(user)
        } else {
            Check::BadBasic
        }
    }

    /// `POST /login`: a form with `user`, `password` and `next`. Success sets the cookie and
    /// goes to `next`; failure answers 401 with the form again and nothing else.
    pub async fn login(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        addr: IpAddr,
        secure: bool,
    ) -> Response<Body> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !form_type.starts_with("application/x-www-form-urlencoded") {
            return respond(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "text/plain; charset=utf-8",
                "POST /login takes a form (application/x-www-form-urlencoded)\n",
            );
        }
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let (user, password) = (field("user"), field("password"));
        let next = safe_next(field("next"));
        if user.is_empty() || !self.verify(user, password, addr).await {
            return login_page(
                &format!("next={}", html::url_encode(next)),
                Some("Wrong user name or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            sessions.retain(|_, (_, at)| at.elapsed() < SESSION_TTL);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(token.clone(), (user.to_string(), Instant::now()));
        }
        tracing::info!(user, %addr, "status page: logged in");
        let mut r = redirect(next);
        set_cookie(&mut r, &token, SESSION_TTL.as_secs(), secure);
        r
    }

    /// `POST /logout`: ends the session and goes to the login form.
    pub fn logout(&self, headers: &HeaderMap, secure: bool) -> Response<Body> {
        if let Some(token) = cookie(headers, COOKIE) {
            self.sessions.lock().expect("sessions lock").remove(&token);
        }
        let mut r = redirect("/login");
        set_cookie(&mut r, "", 0, secure);
        r
    }
}

fn set_cookie(r: &mut Response<Body>, token: &str, max_age: u64, secure: bool) {
    let value = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// A 401 for a wrong HTTP Basic login, asking for another.
pub fn basic_refused() -> Response<Body> {
    let mut r = respond(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        "wrong user name or password\n",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"macrolake\", charset=\"UTF-8\""),
    );
    r
}

/// The login form (`query` may carry `next`), with an error line when `error` is set.
pub fn login_page(query: &str, error: Option<&str>, status: StatusCode) -> Response<Body> {
    let next = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let error = error
        .map(|e| format!("<p class=\"bad\" id=\"login-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>macrolake</h1>{error}\
         <form method=\"post\" action=\"/login\" id=\"login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label>User <input name=\"user\" autocomplete=\"username\" required autofocus></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Log in</button></p></form>\
         <p class=\"muted\">The users of <code>macrolake serve</code> (<code>[serve]</code> in macrolake.toml).</p>",
        escape(safe_next(&next))
    );
    respond(
        status,
        "text/html; charset=utf-8",
        html::document("Log in", &body),
    )
}

/// `next` when it is a path on this site, else `/` (no open redirects).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// User and password of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn auth() -> Auth {
        let creds = [Credential {
            name: "ana".into(),
            password: "pw:with:colons".into(),
        }];
        Auth::new(&creds, Duration::from_millis(1), Duration::from_millis(2))
    }

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next("/runs/abc?x=1"), "/runs/abc?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "",
            "\\\\evil",
            "/\\evil",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }

    #[test]
    fn cookies_and_basic_headers_are_read() {
        let h = headers(&[("cookie", "a=1; macrolake_session=tok; b=2")]);
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("tok"));
        assert_eq!(
            cookie(&headers(&[("cookie", "macrolake_session=")]), COOKIE),
            None
        );
        let h = headers(&[("authorization", "Basic YW5hOnB3OndpdGg6Y29sb25z")]);
        assert_eq!(basic(&h), Some(("ana".into(), "pw:with:colons".into())));
        assert_eq!(basic(&headers(&[("authorization", "Bearer x")])), None);
    }

    #[tokio::test]
    async fn a_login_makes_a_session_and_a_wrong_password_does_not() {
        let a = auth();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let r = a
            .login(
                &form,
                b"user=ana&password=wrong&next=%2Ffreshness",
                ip,
                true,
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(header::SET_COOKIE).is_none());
        let r = a
            .login(
                &form,
                b"user=ana&password=pw%3Awith%3Acolons&next=%2Ffreshness",
                ip,
                true,
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/freshness");
        let set = r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        let token = set.split(';').next().unwrap().to_string();
        let with = headers(&[("cookie", &token)]);
        assert_eq!(a.check(&with, ip).await, Check::User("ana".into()));
        let forged = headers(&[("cookie", "macrolake_session=00")]);
        assert_eq!(a.check(&forged, ip).await, Check::Anonymous);
        a.logout(&with, true);
        assert_eq!(a.check(&with, ip).await, Check::Anonymous);
        let bad = headers(&[("authorization", "Basic YW5hOm5vcGU=")]);
        assert_eq!(a.check(&bad, ip).await, Check::BadBasic);
    }
}
