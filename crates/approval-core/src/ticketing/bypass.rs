//! Failsafe bypass codes: stored hashed, compared in constant time, never logged.
//!
//! Scheme: Argon2id (RFC 9106) in the PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`)
//! with a random 16-byte salt per code, made by the well-kept RustCrypto `argon2` crate. Why:
//! bypass codes are short human-typed secrets that sit in a config file; if the file leaks, a
//! memory-hard, salted hash makes guessing them offline expensive, and the per-code salt stops one
//! guess from testing every code. The parameters travel inside each string, so stronger ones can
//! be introduced later; weaker ones than OWASP's recommendation (m = 19 MiB, t = 2) are refused.
//!
//! A candidate is hashed with every configured code's salt and parameters, and each result is
//! compared with `subtle::ConstantTimeEq`; all codes are always tried, so the time taken does
//! not tell whether, or which, code matched. The candidate is never logged or echoed.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use subtle::{Choice, ConstantTimeEq};

/// Least memory cost accepted, in KiB (OWASP: 19 MiB with t = 2).
pub const MIN_M_COST: u32 = 19 * 1024;
/// Least number of passes accepted.
pub const MIN_T_COST: u32 = 2;
/// Shortest code accepted by the hash command.
pub const MIN_CODE_LEN: usize = 12;
/// Longest code accepted.
pub const MAX_CODE_LEN: usize = 128;

/// One stored code: parameters, salt and expected output.
#[derive(Clone)]
pub struct BypassHash {
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl std::fmt::Debug for BypassHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BypassHash(argon2id)")
    }
}

impl BypassHash {
    /// Read a PHC string as printed by [`hash_code`]. The message never repeats the input (a
    /// pasted clear-text code must not land in an error text).
    pub fn parse(phc: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{why}; store the Argon2id hash printed by `validate-ticket --hash-bypass-code`, never the code itself"
            )
        };
        let h = PasswordHash::new(phc.trim()).map_err(|_| bad("not an Argon2id PHC string"))?;
        if h.algorithm.as_str() != "argon2id" {
            return Err(bad("only argon2id hashes are accepted"));
        }
        if h.version.is_some_and(|v| v != 0x13) {
            return Err(bad("only Argon2 version 19 is accepted"));
        }
        let params = Params::try_from(&h).map_err(|_| bad("its parameters are not readable"))?;
        if params.m_cost() < MIN_M_COST || params.t_cost() < MIN_T_COST {
            return Err(bad(&format!(
                "its cost (m={}, t={}) is below the minimum m={MIN_M_COST}, t={MIN_T_COST}",
                params.m_cost(),
                params.t_cost()
            )));
        }
        let salt_b64 = h.salt.ok_or_else(|| bad("it carries no salt"))?;
        let mut buf = [0u8; 64];
        let salt = salt_b64
            .decode_b64(&mut buf)
            .map_err(|_| bad("its salt is not readable"))?
            .to_vec();
        if salt.len() < 8 {
            return Err(bad("its salt is shorter than 8 bytes"));
        }
        let expected = h
            .hash
            .ok_or_else(|| bad("it carries no hash"))?
            .as_bytes()
            .to_vec();
        if expected.len() < 16 {
            return Err(bad("its hash is shorter than 16 bytes"));
        }
        Ok(BypassHash {
            params,
            salt,
            expected,
        })
    }

    /// Whether `candidate` hashes to this code, in constant time for the comparison.
    fn matches(&self, candidate: &[u8]) -> Choice {
        let mut out = vec![0u8; self.expected.len()];
        let params = Params::new(
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost(),
            Some(self.expected.len()),
        );
        let ok = params.ok().and_then(|p| {
            Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
                .hash_password_into(candidate, &self.salt, &mut out)
                .ok()
        });
        let equal = out.ct_eq(&self.expected);
        equal & Choice::from(u8::from(ok.is_some()))
    }
}

/// Whether the candidate equals any configured code. Every code is tried, whatever the outcome.
pub fn matches_any(candidate: &str, codes: &[BypassHash]) -> bool {
    let c = candidate.trim().as_bytes();
    if c.is_empty() || c.len() > MAX_CODE_LEN {
        return false;
    }
    let mut any = Choice::from(0u8);
    for h in codes {
        any |= h.matches(c);
    }
    bool::from(any)
}

/// Check a new code and return its Argon2id PHC string (default parameters: m = 19 MiB, t = 2,
/// p = 1, random 16-byte salt). The error never repeats the code.
pub fn hash_code(code: &str) -> Result<String, String> {
    let code = code.trim();
    let n = code.chars().count();
    if n < MIN_CODE_LEN {
        return Err(format!(
            "a bypass code needs at least {MIN_CODE_LEN} characters (this one has {n})"
        ));
    }
    if code.len() > MAX_CODE_LEN {
        return Err(format!(
            "a bypass code may have at most {MAX_CODE_LEN} bytes"
        ));
    }
    if code.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("a bypass code must be one word without spaces or control characters".into());
    }
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    let params = Params::new(MIN_M_COST, MIN_T_COST, 1, Some(32)).map_err(|e| e.to_string())?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let h = argon2::PasswordHasher::hash_password(&argon, code.as_bytes(), &salt)
        .map_err(|e| e.to_string())?;
    Ok(h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_match_right_and_wrong() {
        let code = "Break-Glass-2026-xyz";
        let phc = hash_code(code).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains(code));
        let h = BypassHash::parse(&phc).expect("parse");
        let other = BypassHash::parse(&hash_code("another-code-123").expect("hash")).expect("p");
        let both = vec![other, h];
        assert!(matches_any(code, &both));
        assert!(matches_any(&format!("  {code}\n"), &both));
        assert!(
            !matches_any("break-glass-2026-xyz", &both),
            "case-sensitive"
        );
        assert!(!matches_any("Break-Glass-2026-xy", &both));
        assert!(!matches_any("", &both));
        assert!(!matches_any(code, &[]));
        // Same code, new salt: a different string.
        assert_ne!(hash_code(code).expect("hash"), phc);
    }

    #[test]
    fn weak_or_foreign_hashes_and_clear_codes_are_refused_without_echo() {
        for bad in [
            "Break-Glass-2026-xyz",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
        ] {
            let e = BypassHash::parse(bad).expect_err(bad);
            assert!(!e.contains("Break-Glass"), "{e}");
        }
    }

    #[test]
    fn short_or_spaced_codes_are_refused() {
        assert!(hash_code("short").is_err());
        assert!(hash_code("has a space in it").is_err());
        let e = hash_code("tiny-secret").expect_err("short");
        assert!(!e.contains("tiny-secret"));
    }
}
