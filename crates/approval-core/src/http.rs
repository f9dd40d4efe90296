//! Shared HTTP plumbing: client construction with our TLS trust, the retry policy with
//! exponential backoff and jitter, the one capped reader every answer body goes through, and
//! reading error bodies that may be JSON or HTML.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::tls::{self, TlsError};

/// Settings common to every HTTP client of the workspace.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub ca_bundle: Option<std::path::PathBuf>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            ca_bundle: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            user_agent: format!("pam-approval/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A reqwest builder with our TLS trust, timeouts and user agent; callers add cookies etc.
pub fn builder(settings: &HttpSettings) -> Result<reqwest::ClientBuilder, TlsError> {
    let tls = tls::client_config(settings.ca_bundle.as_deref())?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(settings.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none()))
}

/// Build a client; `cookies` gives it a cookie jar (sticky load balancers).
pub fn client(
    settings: &HttpSettings,
    cookies: Option<Arc<reqwest::cookie::Jar>>,
) -> Result<reqwest::Client, TlsError> {
    let mut b = builder(settings)?;
    if let Some(jar) = cookies {
        b = b.cookie_provider(jar);
    }
    b.build().map_err(|e| TlsError::Setup(e.to_string()))
}

/// Exponential backoff with full jitter, bounded.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// How many retries after the first attempt.
    pub retries: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn new(retries: u32, first_ms: u64) -> Self {
        Backoff {
            retries,
            first: Duration::from_millis(first_ms),
            max: Duration::from_secs(30),
        }
    }

    /// Delay before retry number `attempt` (1-based): random in [d/2, d] with d = first * 2^(attempt-1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let d = exp.min(self.max);
        let half = d / 2;
        let jitter = rand::random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }

    /// A server-suggested delay (Retry-After, BackOffMilliseconds), capped at `max`.
    pub fn suggested(&self, d: Duration) -> Duration {
        d.min(self.max)
    }
}

/// Whether an HTTP status is worth retrying for an idempotent request.
pub fn status_is_transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 502 | 503 | 504)
}

/// Parse a `Retry-After` header given in seconds (the HTTP-date form is ignored: we then back off
/// on our own schedule).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A short, printable excerpt of a response body: JSON kept as is, HTML reduced to its title
/// or text, everything capped so a hostile server cannot flood the log.
pub fn body_excerpt(body: &str, max: usize) -> String {
    let trimmed = body.trim();
    let lower = trimmed.to_ascii_lowercase();
    let text = if lower.starts_with("<!doctype html")
        || lower.starts_with("<html")
        || lower.contains("<body")
    {
        html_title(trimmed).unwrap_or_else(|| strip_tags(trimmed))
    } else {
        trimmed.to_string()
    };
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() > max {
        let cut: String = clean.chars().take(max).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title")? + open_end;
    let t = html.get(open_end..end)?.trim();
    (!t.is_empty()).then(|| format!("HTML page: {t}"))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(4096));
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    format!(
        "HTML page: {}",
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// The most of an answer body one service may send: which service, how many bytes, and how
/// an operator changes it (`None`: a fixed limit of this version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyCap {
    pub service: &'static str,
    pub limit: usize,
    pub setting: Option<&'static str>,
    /// How the limit follows from the setting, when it is not the setting itself.
    pub note: &'static str,
}

impl BodyCap {
    /// A fixed limit (nothing to configure).
    pub const fn fixed(service: &'static str, limit: usize) -> BodyCap {
        BodyCap {
            service,
            limit,
            setting: None,
            note: "",
        }
    }
}

/// Why an answer body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The server sent (or announced) more than the cap: nothing of it is used.
    #[error("{}", too_large(.0))]
    TooLarge(BodyCap),
    /// The connection failed while the body was read.
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
}

impl BodyError {
    /// The transport error, when the body was cut off by the connection (callers classify it:
    /// timeout, retry, outcome unknown).
    pub fn transport(&self) -> Option<&reqwest::Error> {
        match self {
            BodyError::Transport(e) => Some(e),
            BodyError::TooLarge(_) => None,
        }
    }
}

/// A byte count as people read it: "48 MiB", "512 KiB", "100 bytes".
pub fn size(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

fn too_large(c: &BodyCap) -> String {
    let how = match c.setting {
        Some(key) => format!("set by `{key}`{}", c.note),
        None => "a fixed limit of this version".to_string(),
    };
    format!(
        "the {} answer is larger than {} ({how}); it was not read",
        c.service,
        size(c.limit)
    )
}

/// Read an answer body of at most `cap.limit` bytes: the one reader for every body from
/// outside. A larger body (announced by Content-Length, or found while reading) is refused
/// with [`BodyError::TooLarge`], never cut silently. The buffer is wiped when dropped: bodies
/// may hold tokens.
pub async fn read_capped(
    mut resp: reqwest::Response,
    cap: BodyCap,
) -> Result<zeroize::Zeroizing<Vec<u8>>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap.limit as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    // Reserved up front when announced, so a small body (a token) does not move and leave
    // copies behind; at most 1 MiB, so a server announcing more than it sends costs little.
    let announced = resp.content_length().unwrap_or(0) as usize;
    let mut out =
        zeroize::Zeroizing::new(Vec::with_capacity(announced.min(cap.limit).min(1 << 20)));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if out.len() + chunk.len() > cap.limit {
            return Err(BodyError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// [`read_capped`] as text (invalid UTF-8 replaced: the readers judge the content).
pub async fn read_capped_text(
    resp: reqwest::Response,
    cap: BodyCap,
) -> Result<zeroize::Zeroizing<String>, BodyError> {
    let bytes = read_capped(resp, cap).await?;
    Ok(zeroize::Zeroizing::new(
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// Read and drop a body nobody needs (so the connection goes back to the pool), at most
/// `limit` bytes; errors are ignored.
pub async fn discard(resp: reqwest::Response, limit: usize) {
    let _ = read_capped(resp, BodyCap::fixed("discarded", limit)).await;
}

/// Whether a path is a usable file (for CA bundle checks at config time).
pub fn is_readable_file(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
}

/// A reqwest builder on an already-built TLS configuration (clients that make many builders,
/// such as one per PVWA session, read the CA bundle once).
pub fn builder_with_tls(
    settings: &HttpSettings,
    tls: rustls::ClientConfig,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(settings.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none())
}

/// The error and its sources on one line ("error sending request: tcp connect error: Connection
/// refused"), without the URL reqwest adds (callers name the service themselves).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let mut s = err.to_string();
        if let Some(i) = s.find(" for url (") {
            s.truncate(i);
        }
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let b = Backoff::new(5, 100);
        for attempt in 1..=5 {
            let d = b.delay(attempt);
            let nominal = Duration::from_millis(100 * (1 << (attempt - 1)));
            assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
        }
        assert!(b.delay(40) <= b.max);
    }

    #[test]
    fn html_bodies_are_reduced_to_their_title() {
        let html =
            "<html><head><title>Service Unavailable</title></head><body><h1>503</h1></body></html>";
        assert_eq!(body_excerpt(html, 200), "HTML page: Service Unavailable");
        let html = "<HTML><BODY>Guru <b>Meditation</b></BODY></HTML>";
        assert_eq!(body_excerpt(html, 200), "HTML page: Guru Meditation");
    }

    #[test]
    fn long_bodies_are_cut() {
        let s = "x".repeat(1000);
        assert_eq!(body_excerpt(&s, 10).chars().count(), 11);
    }

    /// A tiny HTTP server answering every connection with `body` (without Content-Length when
    /// `chunked`), for the capped reader's tests.
    async fn serve(body: Vec<u8>, announce: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let head = if announce {
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
                    };
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_with_the_service_and_limit_named() {
        let cap = BodyCap {
            service: "Example",
            limit: 64 << 10,
            setting: Some("example.max_kib"),
            note: "",
        };
        let http = reqwest::Client::new();
        for announce in [true, false] {
            let url = serve(vec![b'x'; (64 << 10) + 1], announce).await;
            let resp = http.get(&url).send().await.unwrap();
            let err = read_capped(resp, cap).await.unwrap_err();
            assert!(matches!(err, BodyError::TooLarge(c) if c == cap), "{err}");
            assert_eq!(
                err.to_string(),
                "the Example answer is larger than 64 KiB (set by `example.max_kib`); it was not read"
            );
        }
        let fixed = BodyCap::fixed("PVWA", 1 << 20);
        let url = serve(vec![b'x'; (1 << 20) + 10], false).await;
        let err = read_capped(http.get(&url).send().await.unwrap(), fixed)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the PVWA answer is larger than 1 MiB (a fixed limit of this version); it was not read"
        );
    }

    #[tokio::test]
    async fn a_body_at_the_cap_is_read_whole() {
        let http = reqwest::Client::new();
        for announce in [true, false] {
            let url = serve(vec![b'y'; 64 << 10], announce).await;
            let resp = http.get(&url).send().await.unwrap();
            let body = read_capped(resp, BodyCap::fixed("Example", 64 << 10))
                .await
                .unwrap();
            assert_eq!(body.len(), 64 << 10);
        }
    }
}
