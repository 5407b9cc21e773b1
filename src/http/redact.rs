//! Secret redaction.
//!
//! Every secret the process knows (API keys read from the environment, credentials passed in
//! query strings or headers) is registered here once; [`redact`] replaces every occurrence of a
//! registered value with `REDACTED`. Logs, errors, raw landing files, recordings and run history
//! all pass through it, so a key that reached any of them by any path is still scrubbed.
//! [`redact_url`] additionally blanks query parameters whose *name* marks them as secret, so a
//! key that was never registered (typed in a config URL, say) does not leak either.

use std::sync::RwLock;

use url::Url;

/// What a redacted secret is replaced with.
pub const MASK: &str = "REDACTED";

/// Environment variables whose values are secrets wherever they appear.
pub const SECRET_ENV_VARS: &[&str] = &[
    "FRED_API_KEY",
    "CME_FEDWATCH_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// Query parameter names treated as secrets even when their value was never registered.
const SECRET_PARAM_NAMES: &[&str] = &[
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "secret",
    "password",
    "sig",
];

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value; from now on it is redacted everywhere. Values shorter than four
/// characters are ignored (masking them would mangle ordinary text).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the values of every variable in [`SECRET_ENV_VARS`] that is set.
pub fn register_env_secrets() {
    for var in SECRET_ENV_VARS {
        if let Ok(value) = std::env::var(var) {
            register(&value);
        }
    }
}

/// Replaces every registered secret in `text` with [`MASK`].
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// Redacts raw bytes when they are UTF-8 text; binary bodies are returned unchanged (a secret
/// cannot be found in them without decoding them, and none of our upstreams echo keys in binary).
pub fn redact_bytes(body: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(body) {
        Ok(text) => redact(text).into_bytes(),
        Err(_) => body.to_vec(),
    }
}

/// A URL fit to print: secret-named query parameters blanked and registered secrets masked.
pub fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAM_NAMES.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if secret {
                        MASK.to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    redact(url.as_str())
}

/// A writer for log output that redacts every line it is given (the `tracing` formatter writes
/// one whole event per call, so a secret never straddles two writes).
#[derive(Debug, Default, Clone, Copy)]
pub struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let clean = redact_bytes(buf);
        std::io::stderr().write_all(&clean)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

/// An error as one line for the user: its message, then each cause in its source chain that the
/// text does not already contain (most of our errors embed their cause, and DataFusion's
/// contexts repeat theirs), with secrets redacted. Each cause is printed once.
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secret_is_masked_everywhere() {
        register("sekret-unit-test-1234");
        let text = "GET https://x/?api_key=sekret-unit-test-1234 failed: sekret-unit-test-1234";
        let out = redact(text);
        assert!(!out.contains("sekret-unit-test-1234"), "{out}");
        assert_eq!(out.matches(MASK).count(), 2);
    }

    #[test]
    fn secret_named_params_are_blanked_even_unregistered() {
        let url =
            Url::parse("https://api.example/obs?series_id=WALCL&api_key=abcdef123&x=1").unwrap();
        let out = redact_url(&url);
        assert!(out.contains("series_id=WALCL"));
        assert!(out.contains("api_key=REDACTED"));
        assert!(!out.contains("abcdef123"));
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(redact("abc ab"), "abc ab");
    }
}
