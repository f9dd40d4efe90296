//! The single-request operations behind `first-level-approve`, `second-level-approve` (and
//! their `--reject`) and `get-inco-req`: one logon per run for every id, a result per id, and on
//! a failed confirm or reject the request as PVWA now shows it (who acted and when).

use std::collections::HashMap;

use serde::Serialize;

pub use crate::exit::ErrorView;
use crate::exit::{Classify, Exit};
use crate::pvwa::sessions::Sessions;
use crate::pvwa::view::RequestView;
use crate::pvwa::{AccountRole, Pvwa, PvwaError, Session};
use crate::secret::Resolver;
use crate::settings::Loaded;

pub use crate::pvwa::MAX_REASON;

/// The reason text: `--reason`, `--on-behalf-of`, both, or a default naming the tool.
pub fn reason_text(
    reason: Option<&str>,
    on_behalf_of: Option<&str>,
    tool: &str,
) -> Result<String, String> {
    if let Some(e) = on_behalf_of {
        let e = e.trim();
        if e.is_empty()
            || e.chars().any(char::is_control)
            || e.chars().any(char::is_whitespace)
            || !e.contains('@')
            || e.len() > 254
        {
            return Err(format!(
                "--on-behalf-of `{}` is not a mail address",
                crate::text::printable(e)
            ));
        }
    }
    let text = match (
        reason.map(str::trim).filter(|r| !r.is_empty()),
        on_behalf_of.map(str::trim),
    ) {
        (Some(r), Some(e)) => format!("Approved on behalf of {e}: {r}"),
        (Some(r), None) => r.to_string(),
        (None, Some(e)) => format!("Approved on behalf of {e}"),
        (None, None) => format!("Approved with {tool}"),
    };
    if text.chars().any(|c| c.is_control()) {
        return Err("the reason must be one line without control characters".into());
    }
    if text.chars().count() > MAX_REASON {
        return Err(format!("the reason is longer than {MAX_REASON} characters"));
    }
    Ok(text)
}

/// The reason of a reject by hand (`--reject`): `--reason`, `--on-behalf-of`, both, or a
/// default naming the tool; the same checks as [`reason_text`].
pub fn reject_reason_text(
    reason: Option<&str>,
    on_behalf_of: Option<&str>,
    tool: &str,
) -> Result<String, String> {
    let approved = reason_text(reason, on_behalf_of, tool)?;
    let text = match (
        reason.map(str::trim).filter(|r| !r.is_empty()),
        on_behalf_of.map(str::trim),
    ) {
        (Some(r), Some(e)) => format!("Rejected on behalf of {e}: {r}"),
        (Some(_), None) => approved,
        (None, Some(e)) => format!("Rejected on behalf of {e}"),
        (None, None) => format!("Rejected with {tool}"),
    };
    if text.chars().count() > MAX_REASON {
        return Err(format!("the reason is longer than {MAX_REASON} characters"));
    }
    Ok(text)
}

/// What a batch does to each id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Confirm,
    /// `POST …/Reject` (issue 32): the request is rejected at the level it waits at.
    Reject,
}

impl Act {
    fn done(self) -> &'static str {
        match self {
            Act::Confirm => "confirmed",
            Act::Reject => "rejected",
        }
    }
    fn would(self) -> &'static str {
        match self {
            Act::Confirm => "would_confirm",
            Act::Reject => "would_reject",
        }
    }
}

/// Ids from arguments, or from stdin lines when the only argument is `-` (blank lines and
/// `#` comments skipped). Returns (line number or argument index, id).
pub fn collect_ids(
    args: &[String],
    stdin: impl std::io::BufRead,
) -> Result<Vec<(usize, String)>, std::io::Error> {
    if args.len() == 1 && args[0] == "-" {
        let mut out = Vec::new();
        for (n, line) in stdin.lines().enumerate() {
            let line = line?;
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            out.push((n + 1, t.to_string()));
        }
        Ok(out)
    } else {
        Ok(args
            .iter()
            .enumerate()
            .map(|(n, a)| (n + 1, a.clone()))
            .collect())
    }
}

/// What happened to one id.
#[derive(Debug, Clone, Serialize)]
pub struct ApproveResult {
    pub request_id: String,
    /// `confirmed`, `would_confirm`, `rejected`, `would_reject` (`--reject`), `wrong_level`
    /// (waiting at the other level: nothing sent), `failed`, `invalid`.
    pub outcome: &'static str,
    /// `confirm`, or `reject` (`--reject`).
    pub action: &'static str,
    pub level: u8,
    pub account: String,
    pub reason: String,
    /// Exit class of this id.
    #[serde(skip)]
    pub exit: Exit,
    pub error: Option<ErrorView>,
    /// The request as PVWA shows it (dry run, wrong level, or after a failed confirm).
    pub request: Option<RequestView>,
    /// After a confirm: the request as PVWA shows it now (read again), so that the report is
    /// what PVWA recorded, not what was asked.
    pub recorded: Option<Recorded>,
}

/// Where a request stands in PVWA, read again after this tool's confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The confirmation level it waits at now.
    pub level: i64,
    pub status: i64,
    pub status_title: String,
    /// Confirmations still needed at `level` (0 once confirmed).
    pub confirmations_left: i64,
    /// Whether the change since the read before the confirm is exactly one confirmation at the
    /// tool's level; false when more changed (another confirmer acted at the same time, or
    /// PVWA took the confirmation at another level): look at who confirmed.
    pub as_expected: bool,
}

impl Recorded {
    /// The request `after` one confirmation at `level` of `before`.
    pub fn of(
        before: &crate::pvwa::model::Request,
        level: u8,
        after: &crate::pvwa::model::Request,
    ) -> Recorded {
        let mut r = Recorded {
            level: after.current_confirmation_level,
            status: after.status,
            status_title: after.status_title.clone(),
            confirmations_left: after.confirmations_left,
            as_expected: false,
        };
        r.as_expected = r.follows(before, level);
        r
    }

    /// Whether this is where one confirmation at `level` takes `before`: one fewer left at
    /// that level; or, for its last one, level 2 with all its confirmations left (when the
    /// request has a level 2), else no longer waiting.
    fn follows(&self, before: &crate::pvwa::model::Request, level: u8) -> bool {
        let level = i64::from(level);
        let left = before.confirmations_left;
        if before.current_confirmation_level != level || left <= 0 {
            return false;
        }
        let waiting = self.waiting();
        if left > 1 {
            return waiting && self.level == level && self.confirmations_left == left - 1;
        }
        let level2 = before.required_confirmers_count_level2;
        if level == 1 && level2 > 0 {
            waiting && self.level == 2 && self.confirmations_left == level2
        } else {
            // Only `Status 1` (waiting) is a known value: done is "no longer waiting".
            !waiting && self.confirmations_left <= 0
        }
    }

    /// Whether the request still waits for confirmations.
    pub fn waiting(&self) -> bool {
        self.status == crate::policy::STATUS_WAITING
    }
}

/// The refusal of a request that waits at another level than the tool's: PVWA records a
/// confirmation at the request's current level whatever tool sent it, so the level-1 account
/// (if it is also a level-2 confirmer) would give a level-2 confirmation.
fn wrong_level(r: &mut ApproveResult, current: i64, act: Act) {
    r.outcome = "wrong_level";
    r.exit = Exit::DataErr;
    let hint = match current {
        1 => "use first-level-approve for it, or the portal".to_string(),
        2 => "use second-level-approve for it, or the portal".to_string(),
        _ => "check the request in the portal".to_string(),
    };
    r.error = Some(ErrorView {
        kind: Exit::DataErr.name(),
        code: Some("wrong_level".into()),
        message: format!(
            "it waits at confirmation level {current}, not {}: nothing was {}",
            r.level,
            act.done()
        ),
        hint: Some(hint),
    });
}

/// The PVWA sessions of `roles` ([`Sessions`], the watcher's session helper: a 401 logs on again
/// once), their credentials resolved; the Vault session is closed again on every path, also
/// when a credential cannot be resolved.
async fn connect(loaded: &Loaded, roles: &[AccountRole]) -> crate::error::Result<Sessions> {
    let pvwa = Pvwa::new(loaded.pvwa()?)?;
    let resolver = Resolver::new(loaded.config.vault.as_ref())?;
    let creds = async {
        let mut creds = HashMap::new();
        for &role in roles {
            creds.insert(role, loaded.credentials(&resolver, role).await?);
        }
        Ok::<_, crate::error::Error>(creds)
    }
    .await;
    resolver.close().await;
    Ok(Sessions::new(pvwa, creds?))
}

/// Confirm (or, with `dry_run`, look at) each id with the level's account, one session for all.
/// `emit` is called with each result as soon as it is known.
pub async fn approve_batch(
    loaded: &Loaded,
    level: u8,
    ids: &[(usize, String)],
    reason: &str,
    dry_run: bool,
    emit: impl FnMut(&ApproveResult),
) -> crate::error::Result<Exit> {
    act_batch(loaded, level, ids, reason, dry_run, Act::Confirm, emit).await
}

/// [`approve_batch`] for either act: confirm, or reject (`first-level-approve --reject`).
pub async fn act_batch(
    loaded: &Loaded,
    level: u8,
    ids: &[(usize, String)],
    reason: &str,
    dry_run: bool,
    act: Act,
    mut emit: impl FnMut(&ApproveResult),
) -> crate::error::Result<Exit> {
    let role = AccountRole::for_level(level)
        .ok_or_else(|| crate::error::Error::Usage("level must be 1 or 2".into()))?;
    let sessions = connect(loaded, &[role]).await?;
    sessions.open(role).await?;
    let user = sessions.user(role).unwrap_or_default().to_string();
    let now = chrono::Utc::now().timestamp();
    let mut worst = Exit::Ok;
    sessions
        .scoped(async |s: &Sessions| {
            for (_, id) in ids {
                let mut r = ApproveResult {
                    request_id: id.clone(),
                    outcome: act.done(),
                    action: match act {
                        Act::Confirm => "confirm",
                        Act::Reject => "reject",
                    },
                    level,
                    account: user.clone(),
                    reason: reason.to_string(),
                    exit: Exit::Ok,
                    error: None,
                    request: None,
                    recorded: None,
                };
                if let Err(e) = crate::pvwa::encode_id(id) {
                    r.outcome = "invalid";
                    r.exit = e.exit();
                    r.error = Some(ErrorView::of(&e, None));
                } else if dry_run {
                    match s
                        .run(role, async |x: &Session| x.get_request(id).await)
                        .await
                    {
                        Ok(req)
                            if req.status == crate::policy::STATUS_WAITING
                                && req.current_confirmation_level != i64::from(level) =>
                        {
                            wrong_level(&mut r, req.current_confirmation_level, act);
                            r.request = Some(RequestView::new(&req, now));
                        }
                        Ok(req) => {
                            r.outcome = act.would();
                            r.request = Some(RequestView::new(&req, now));
                        }
                        Err(e) => fail(&mut r, &e),
                    }
                } else {
                    // Read it first: PVWA records a confirm at the level the request waits
                    // at, whatever this tool's level is.
                    match s
                        .run(role, async |x: &Session| x.get_request(id).await)
                        .await
                    {
                        Err(e) => fail(&mut r, &e),
                        Ok(req)
                            if req.status == crate::policy::STATUS_WAITING
                                && req.current_confirmation_level != i64::from(level) =>
                        {
                            wrong_level(&mut r, req.current_confirmation_level, act);
                            r.request = Some(RequestView::new(&req, now));
                        }
                        // Not waiting (confirmed, rejected, expired): PVWA refuses the confirm
                        // and says why.
                        Ok(before) => match s
                            .run(role, async |x: &Session| match act {
                                Act::Confirm => x.confirm(id, reason).await,
                                Act::Reject => x.reject(id, reason).await,
                            })
                            .await
                        {
                            Ok(()) => match s
                                .run(role, async |x: &Session| x.get_request(id).await)
                                .await
                            {
                                Ok(req) if act == Act::Reject => {
                                    let mut rec = Recorded::of(&before, level, &req);
                                    // A reject ends the request: it no longer waits.
                                    rec.as_expected = !rec.waiting();
                                    log::info!(
                                        "rejected {id} at level {level} as {user}; PVWA now: \
                                         status {}",
                                        rec.status_title
                                    );
                                    r.recorded = Some(rec);
                                }
                                Ok(req) => {
                                    let rec = Recorded::of(&before, level, &req);
                                    if !rec.as_expected {
                                        log::warn!(
                                            "confirmed {id} at level {level} as {user}, but PVWA \
                                             shows more than that one confirmation changed: \
                                             level {} then, level {} now; look at who confirmed",
                                            before.current_confirmation_level,
                                            rec.level
                                        );
                                    }
                                    log::info!(
                                        "confirmed {id} at level {level} as {user}; PVWA now: \
                                         level {}, status {}, {} confirmation(s) left",
                                        rec.level,
                                        rec.status_title,
                                        rec.confirmations_left
                                    );
                                    r.recorded = Some(rec);
                                }
                                Err(e) => log::warn!(
                                    "{} {id} at level {level} as {user}, but cannot read \
                                     it again to show what PVWA recorded: {e}",
                                    act.done()
                                ),
                            },
                            Err(e) => {
                                fail(&mut r, &e);
                                if let Ok(req) = s
                                    .run(role, async |x: &Session| x.get_request(id).await)
                                    .await
                                {
                                    r.request = Some(RequestView::new(&req, now));
                                }
                            }
                        },
                    }
                }
                worst = worst.worst(r.exit);
                emit(&r);
                // A dead session or an unreachable PVWA fails every later id the same way: stop.
                if matches!(r.exit, Exit::NoPerm | Exit::Unavailable) {
                    break;
                }
            }
        })
        .await;
    Ok(worst)
}

fn fail(r: &mut ApproveResult, e: &PvwaError) {
    r.outcome = "failed";
    r.exit = e.exit();
    r.error = Some(ErrorView::of(e, e.code().map(str::to_string)));
}

/// Look up requests by id with the lookup account; a result per id.
pub async fn lookup(
    loaded: &Loaded,
    ids: &[(usize, String)],
    mut emit: impl FnMut(&str, Result<RequestView, ErrorView>, Exit),
) -> crate::error::Result<Exit> {
    let role = AccountRole::Lookup;
    let sessions = connect(loaded, &[role]).await?;
    sessions.open(role).await?;
    let now = chrono::Utc::now().timestamp();
    let mut worst = Exit::Ok;
    sessions
        .scoped(async |s: &Sessions| {
            for (_, id) in ids {
                match s
                    .run(role, async |x: &Session| x.get_request(id).await)
                    .await
                {
                    Ok(req) => emit(id, Ok(RequestView::new(&req, now)), Exit::Ok),
                    Err(e) => {
                        worst = worst.worst(e.exit());
                        emit(
                            id,
                            Err(ErrorView::of(&e, e.code().map(str::to_string))),
                            e.exit(),
                        );
                        if matches!(e.exit(), Exit::NoPerm | Exit::Unavailable) {
                            break;
                        }
                    }
                }
            }
        })
        .await;
    Ok(worst)
}

/// The requests waiting for confirmation, as PVWA lists them to the accounts that confirm:
/// with `level`, the level's account, only requests waiting at that level; without, the level-1
/// and the level-2 account (those configured; the lookup account when neither is), one list
/// without repeats. PVWA lists a request only to an account that may confirm it, so the lookup
/// account alone can see none. Also returns the accounts asked (for an empty answer).
pub async fn waiting(
    loaded: &Loaded,
    include_expired: bool,
    level: Option<u8>,
) -> crate::error::Result<(Vec<RequestView>, Vec<String>)> {
    let roles: Vec<AccountRole> = match level {
        Some(l) => vec![
            AccountRole::for_level(l)
                .ok_or_else(|| crate::error::Error::Usage("--level must be 1 or 2".into()))?,
        ],
        None => {
            let a = &loaded.config.accounts;
            let mut r = Vec::new();
            if a.level1.is_some() {
                r.push(AccountRole::Level1);
            }
            if a.level2.is_some() {
                r.push(AccountRole::Level2);
            }
            if r.is_empty() {
                r.push(AccountRole::Lookup);
            }
            r
        }
    };
    let now = chrono::Utc::now().timestamp();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut asked = Vec::new();
    for role in roles {
        let sessions = connect(loaded, &[role]).await?;
        let user = sessions.user(role).unwrap_or_default().to_string();
        // A list item is an outline: PVWA leaves its account properties and confirmers empty
        // (pvwa.md §5), so each request is read in full before it is shown or filtered.
        let list = sessions
            .scoped(async |s: &Sessions| -> Result<_, PvwaError> {
                let mut full = Vec::new();
                let items = s
                    .run(role, async |x: &Session| {
                        x.list_incoming(true, include_expired).await
                    })
                    .await?;
                for item in items {
                    let id = &item.request_id;
                    full.push(
                        s.run(role, async |x: &Session| x.get_request(id).await)
                            .await?,
                    );
                }
                Ok(full)
            })
            .await?;
        asked.push(user);
        for r in list {
            if level.is_some_and(|l| r.current_confirmation_level != i64::from(l)) {
                continue;
            }
            if seen.insert(r.request_id.clone()) {
                out.push(RequestView::new(&r, now));
            }
        }
    }
    Ok((out, asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons() {
        assert_eq!(
            reject_reason_text(None, Some("bob@example.com"), "t").expect("ok"),
            "Rejected on behalf of bob@example.com"
        );
        assert_eq!(
            reject_reason_text(Some("no ticket"), Some("b@e.c"), "t").expect("ok"),
            "Rejected on behalf of b@e.c: no ticket"
        );
        assert_eq!(
            reject_reason_text(Some("no ticket"), None, "t").expect("ok"),
            "no ticket"
        );
        assert_eq!(
            reject_reason_text(None, None, "first-level-approve").expect("ok"),
            "Rejected with first-level-approve"
        );
        assert!(reject_reason_text(Some("two\nlines"), None, "t").is_err());
        assert!(reject_reason_text(None, Some("not an address"), "t").is_err());
    }

    #[test]
    fn reasons() {
        assert_eq!(
            reason_text(None, Some("bob@example.com"), "t").expect("ok"),
            "Approved on behalf of bob@example.com"
        );
        assert_eq!(
            reason_text(Some("change 42"), None, "t").expect("ok"),
            "change 42"
        );
        assert_eq!(
            reason_text(Some("x"), Some("b@e.c"), "t").expect("ok"),
            "Approved on behalf of b@e.c: x"
        );
        assert_eq!(
            reason_text(None, None, "first-level-approve").expect("ok"),
            "Approved with first-level-approve"
        );
        assert!(reason_text(None, Some("not an address"), "t").is_err());
        assert!(reason_text(Some("two\nlines"), None, "t").is_err());
        assert!(reason_text(Some(&"x".repeat(2000)), None, "t").is_err());
    }

    #[test]
    fn what_pvwa_recorded_follows_one_confirmation_or_not() {
        use crate::policy::STATUS_WAITING;
        const STATUS_CONFIRMED: i64 = 2;
        let req = |level: i64, left: i64, status: i64| crate::pvwa::model::Request {
            current_confirmation_level: level,
            confirmations_left: left,
            status,
            required_confirmers_count_level2: 1,
            ..Default::default()
        };
        let rec = |b: &crate::pvwa::model::Request, level: u8, a| Recorded::of(b, level, &a);
        // Level 1 done, on to level 2.
        assert!(rec(&req(1, 1, STATUS_WAITING), 1, req(2, 1, STATUS_WAITING)).as_expected);
        // One of two at level 1.
        assert!(rec(&req(1, 2, STATUS_WAITING), 1, req(1, 1, STATUS_WAITING)).as_expected);
        // The last one: Confirmed.
        assert!(rec(&req(2, 1, STATUS_WAITING), 2, req(2, 0, STATUS_CONFIRMED)).as_expected);
        // Someone confirmed level 2 at the same time (or PVWA took ours at level 2).
        let r = rec(&req(1, 1, STATUS_WAITING), 1, req(2, 0, STATUS_CONFIRMED));
        assert!(!r.as_expected);
        assert_eq!((r.level, r.confirmations_left), (2, 0));
        assert!(!rec(&req(1, 2, STATUS_WAITING), 1, req(1, 2, STATUS_WAITING)).as_expected);
        // A single-level request: Confirmed after its level 1.
        let mut single = req(1, 1, STATUS_WAITING);
        single.required_confirmers_count_level2 = 0;
        assert!(rec(&single, 1, req(1, 0, STATUS_CONFIRMED)).as_expected);
    }

    #[test]
    fn ids_from_stdin_skip_blanks_and_comments() {
        let input = "Safe_1\n\n# comment\n  Safe_2  \n";
        let ids = collect_ids(&["-".into()], input.as_bytes()).expect("read");
        assert_eq!(
            ids,
            vec![(1, "Safe_1".to_string()), (4, "Safe_2".to_string())]
        );
        let ids = collect_ids(&["A_1".into(), "B_2".into()], &b""[..]).expect("args");
        assert_eq!(ids.len(), 2);
    }
}
