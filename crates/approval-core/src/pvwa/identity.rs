//! Privilege Cloud sign-in: platform tokens from CyberArk Identity (reference/privilege-cloud.md
//! §3). Each account is an Identity service user that is an OAuth confidential client; its
//! login name and secret go as `client_id` and `client_secret` in a client-credentials grant
//! to `<identity tenant>/oauth2/platformtoken`, and the answer's `access_token` is sent to the
//! PVWA API as `Authorization: Bearer`. There is no logon, no logoff and no refresh token.
//!
//! A token is kept for its account and renewed once 80 % of its `expires_in` has passed; a 401
//! from the API makes the session drop it and ask once more ([`PlatformTokens::forget`]).
//! Neither the secret nor a token ever appears in an error or a log line.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::{PvwaError, SignInHook};
use crate::http::{self, Backoff};
use crate::text::printable;

/// Lifetime assumed when the answer has no `expires_in` (CyberArk's own module assumes an
/// hour; ark-sdk-python's default is the same).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Longest wait honoured for the endpoint's `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The largest token answer read.
const MAX_BODY: http::BodyCap = http::BodyCap::fixed("CyberArk Identity", 1 << 20);

/// The platform tokens of one account.
pub(super) struct PlatformTokens {
    token_url: String,
    client_id: String,
    secret: SecretString,
    backoff: Backoff,
    timeout_secs: u64,
    cached: tokio::sync::Mutex<Option<Cached>>,
    on_token: Option<SignInHook>,
}

struct Cached {
    header: HeaderValue,
    renew_at: Instant,
}

/// The fields of the token endpoint's answer that are read (success and refusal).
#[derive(serde::Deserialize)]
struct Answer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

impl PlatformTokens {
    pub(super) fn new(
        token_url: String,
        client_id: &str,
        secret: &SecretString,
        backoff: Backoff,
        timeout_secs: u64,
        on_token: Option<SignInHook>,
    ) -> Self {
        PlatformTokens {
            token_url,
            client_id: client_id.to_string(),
            secret: secret.clone(),
            backoff,
            timeout_secs,
            cached: tokio::sync::Mutex::new(None),
            on_token,
        }
    }

    /// `Bearer <token>` as a sensitive header value: the kept token, or a new one when none is
    /// kept or 80 % of its life has passed.
    pub(super) async fn header(&self, http: &reqwest::Client) -> Result<HeaderValue, PvwaError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.header.clone());
        }
        let renewing = cached.is_some();
        let (header, life) = self.fetch(http).await?;
        if let Some(hook) = &self.on_token {
            hook("identity_token");
        }
        log::debug!(
            "CyberArk Identity: {} token for {} (valid {} s)",
            if renewing { "renewed the" } else { "got a" },
            self.client_id,
            life.as_secs()
        );
        *cached = Some(Cached {
            header: header.clone(),
            renew_at: Instant::now() + life.mul_f64(0.8),
        });
        Ok(header)
    }

    /// Drop the kept token (the API answered 401), so that the next call asks anew.
    pub(super) async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(HeaderValue, Duration), PvwaError> {
        let mut attempt = 0;
        loop {
            match self.fetch_once(http).await {
                Err(Fetch::Retry(e, after)) if attempt < self.backoff.retries => {
                    attempt += 1;
                    let wait = after
                        .map(|a| self.backoff.suggested(a.min(MAX_RETRY_AFTER)))
                        .unwrap_or_else(|| self.backoff.delay(attempt));
                    log::warn!("CyberArk Identity token request: {e}; retry {attempt} in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(Fetch::Retry(e, _) | Fetch::Fail(e)) => return Err(e),
                Ok(t) => return Ok(t),
            }
        }
    }

    async fn fetch_once(&self, http: &reqwest::Client) -> Result<(HeaderValue, Duration), Fetch> {
        let body = zeroize::Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.client_id)
                .append_pair("client_secret", self.secret.expose_secret())
                .finish(),
        );
        let unreachable = |detail: String, timed_out: bool| PvwaError::IdentityUnreachable {
            url: self.token_url.clone(),
            detail,
            timed_out,
        };
        let resp = http
            .post(&self.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Fetch::Retry(
                        unreachable(format!("no answer within {} s", self.timeout_secs), true),
                        None,
                    )
                } else {
                    Fetch::Retry(unreachable(http::error_chain(&e), false), None)
                }
            })?;
        let status = resp.status().as_u16();
        let retry_after = http::retry_after(resp.headers());
        let text = http::read_capped_text(resp, MAX_BODY)
            .await
            .map_err(|e| match e {
                http::BodyError::Transport(t) => {
                    Fetch::Retry(unreachable(http::error_chain(&t), false), None)
                }
                too_large => Fetch::Fail(PvwaError::Protocol {
                    what: format!("the CyberArk Identity token request at {}", self.token_url),
                    detail: too_large.to_string(),
                }),
            })?;
        let answer: Option<Answer> = serde_json::from_str(&text).ok();
        if status == 200 {
            return self.token_from(answer, &text).map_err(Fetch::Fail);
        }
        if http::status_is_transient(status) {
            let e = PvwaError::Api {
                what: format!("the CyberArk Identity token request at {}", self.token_url),
                status,
                code: None,
                detail: http::body_excerpt(&text, 200),
            };
            return Err(Fetch::Retry(e, retry_after));
        }
        Err(Fetch::Fail(self.refusal(status, answer.as_ref(), &text)))
    }

    fn token_from(
        &self,
        answer: Option<Answer>,
        text: &str,
    ) -> Result<(HeaderValue, Duration), PvwaError> {
        let protocol = |detail: String| PvwaError::Protocol {
            what: format!("the CyberArk Identity token request at {}", self.token_url),
            detail,
        };
        let Some(a) = answer else {
            let what = if text.trim_start().starts_with('<') {
                "an HTML page, not a token: check pvwa.identity_url (https://<tenant-id>.id.cyberark.cloud)".to_string()
            } else {
                "200 with a body that is not JSON".to_string()
            };
            return Err(protocol(what));
        };
        let Some(token) = a.access_token.filter(|t| !t.trim().is_empty()) else {
            return Err(protocol("200 without an access_token".into()));
        };
        if let Some(kind) = a.token_type.as_deref()
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(protocol(format!(
                "token_type `{}`, not Bearer",
                printable(kind)
            )));
        }
        if token.len() > 16 * 1024 || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(protocol(
                "the access_token is not a valid header value".into(),
            ));
        }
        let life = match &a.expires_in {
            None | Some(serde_json::Value::Null) => DEFAULT_LIFETIME,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Duration::from_secs)
                .ok_or_else(|| protocol("expires_in is not a number of seconds".into()))?,
        };
        if life.is_zero() {
            return Err(protocol(
                "expires_in is 0: the token is already spent".into(),
            ));
        }
        let life = life.min(Duration::from_secs(86_400));
        let bearer = zeroize::Zeroizing::new(format!("Bearer {token}"));
        let mut header = HeaderValue::from_str(&bearer)
            .map_err(|_| protocol("the access_token is not a valid header value".into()))?;
        header.set_sensitive(true);
        Ok((header, life))
    }

    /// A refusal of the token endpoint: wrong credentials are the account's fault (77), a
    /// missing endpoint the configuration's (78).
    fn refusal(&self, status: u16, a: Option<&Answer>, text: &str) -> PvwaError {
        let error = a.and_then(|a| a.error.as_deref()).map(printable);
        let said = a
            .and_then(|a| a.error_description.as_deref())
            .map(|d| http::body_excerpt(d, 200))
            .filter(|d| !d.is_empty());
        let detail = match (&error, &said) {
            (Some(e), Some(d)) => format!("HTTP {status} {e}: {d}"),
            (Some(e), None) => format!("HTTP {status} {e}"),
            (None, Some(d)) => format!("HTTP {status}: {d}"),
            (None, None) => format!("HTTP {status}: {}", http::body_excerpt(text, 200)),
        };
        let credentials = matches!(
            error.as_deref(),
            Some("invalid_client" | "unauthorized_client" | "access_denied" | "invalid_grant")
        );
        if credentials || matches!(status, 401 | 403) {
            return PvwaError::IdentityRefused {
                url: self.token_url.clone(),
                user: self.client_id.clone(),
                detail,
            };
        }
        if matches!(status, 404 | 405) || error.is_none() {
            return PvwaError::IdentityEndpoint {
                url: self.token_url.clone(),
                detail,
            };
        }
        PvwaError::Api {
            what: format!("the CyberArk Identity token request at {}", self.token_url),
            status,
            code: error,
            detail,
        }
    }
}

enum Fetch {
    /// Transient: try again (after the server's `Retry-After` when it gave one).
    Retry(PvwaError, Option<Duration>),
    Fail(PvwaError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PlatformTokens {
        PlatformTokens::new(
            "https://abc1234.id.cyberark.cloud/oauth2/platformtoken".into(),
            "pam-l1@cyberark.cloud.12345",
            &SecretString::from("s3cret-value"),
            Backoff::new(0, 1),
            5,
            None,
        )
    }

    fn answer(json: &str) -> Option<Answer> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn a_token_answer_gives_a_sensitive_bearer_header_and_its_lifetime() {
        let t = tokens();
        let (h, life) = t
            .token_from(
                answer(r#"{"access_token":"eyJ.a.b","token_type":"Bearer","expires_in":900}"#),
                "",
            )
            .expect("token");
        assert_eq!(h.to_str().expect("ascii"), "Bearer eyJ.a.b");
        assert!(h.is_sensitive());
        assert_eq!(life, Duration::from_secs(900));
        // expires_in missing: an hour; as a string: read.
        let (_, life) = t
            .token_from(answer(r#"{"access_token":"x"}"#), "")
            .expect("token");
        assert_eq!(life, DEFAULT_LIFETIME);
        let (_, life) = t
            .token_from(answer(r#"{"access_token":"x","expires_in":"60"}"#), "")
            .expect("token");
        assert_eq!(life, Duration::from_secs(60));
    }

    #[test]
    fn unusable_token_answers_are_named() {
        let t = tokens();
        for (body, says) in [
            ("<html><body>Sign in</body></html>", "HTML page"),
            (r#"{"token_type":"Bearer"}"#, "without an access_token"),
            (r#"{"access_token":"x","token_type":"MAC"}"#, "not Bearer"),
            (r#"{"access_token":"a b"}"#, "not a valid header value"),
            (r#"{"access_token":"x","expires_in":0}"#, "expires_in is 0"),
            (r#"{"access_token":"x","expires_in":"soon"}"#, "expires_in"),
        ] {
            let e = t.token_from(answer(body), body).expect_err(body);
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn refusals_map_to_the_exit_codes_of_their_cause() {
        use crate::exit::{Classify as _, Exit};
        let t = tokens();
        for (status, body, exit) in [
            (
                400,
                r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#,
                Exit::NoPerm,
            ),
            (401, r#"{"error":"unauthorized_client"}"#, Exit::NoPerm),
            (403, "<html>Forbidden</html>", Exit::NoPerm),
            (404, "<html>Not Found</html>", Exit::Config),
            (400, r#"{"error":"unsupported_grant_type"}"#, Exit::Refused),
        ] {
            let e = t.refusal(status, answer(body).as_ref(), body);
            assert_eq!(e.exit(), exit, "{status} {body}: {e}");
            let shown = format!("{e} {}", e.hint().unwrap_or_default());
            assert!(!shown.contains("s3cret-value"), "{shown}");
        }
        let e = t.refusal(
            400,
            answer(
                r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#,
            )
            .as_ref(),
            "",
        );
        assert!(
            e.to_string().contains("pam-l1@cyberark.cloud.12345")
                && e.to_string()
                    .contains("invalid_client: Invalid client credentials"),
            "{e}"
        );
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("OAuth confidential client"),
            "{:?}",
            e.hint()
        );
    }
}
