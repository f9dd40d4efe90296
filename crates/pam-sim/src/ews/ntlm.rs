//! NTLM on the server side (NTLMv2 only, MS-NLMP): answer a NEGOTIATE with a CHALLENGE bound
//! to the TCP connection, verify the AUTHENTICATE that must come on the same connection, and
//! remember the connection as logged on (as IIS does). NTLMv1 answers are refused.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md4::{Digest, Md4};

use super::EwsUser;

type HmacMd5 = Hmac<md5::Md5>;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;

/// The domain and server names the stand-in announces.
const DOMAIN: &str = "PAMSIM";
const SERVER: &str = "EXCHANGE";

/// What to answer to one `Authorization: NTLM …` header.
pub enum Step {
    Challenge(String),
    Authenticated(String),
    Refused,
}

#[derive(Debug, Default)]
pub struct NtlmState {
    pending: Mutex<HashMap<String, [u8; 8]>>,
    authenticated: Mutex<HashMap<String, String>>,
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn from_utf16(b: &[u8]) -> Option<String> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = b
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// NTOWFv2(password, user, domain) = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)).
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16(password));
    let mut mac = HmacMd5::new_from_slice(&nt_hash).expect("HMAC takes any key length");
    mac.update(&utf16(&(user.to_uppercase() + domain)));
    mac.finalize().into_bytes().into()
}

/// NTProofStr = HMAC-MD5(NTOWFv2, server challenge || blob).
pub fn nt_proof(key: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    let mut mac = HmacMd5::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(server_challenge);
    mac.update(blob);
    mac.finalize().into_bytes().into()
}

fn field(msg: &[u8], at: usize) -> Option<&[u8]> {
    let len = u16::from_le_bytes(msg.get(at..at + 2)?.try_into().ok()?) as usize;
    let off = u32::from_le_bytes(msg.get(at + 4..at + 8)?.try_into().ok()?) as usize;
    msg.get(off..off.checked_add(len)?)
}

fn av_pair(id: u16, value: &[u8]) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    v.extend_from_slice(value);
    v
}

fn challenge_message(challenge: &[u8; 8], now_filetime: u64) -> Vec<u8> {
    let target = utf16(DOMAIN);
    let mut info = av_pair(2, &utf16(DOMAIN));
    info.extend(av_pair(1, &utf16(SERVER)));
    info.extend(av_pair(4, &utf16("pamsim.invalid")));
    info.extend(av_pair(3, &utf16("exchange.pamsim.invalid")));
    info.extend(av_pair(7, &now_filetime.to_le_bytes()));
    info.extend(av_pair(0, &[]));
    let flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_128
        | NEGOTIATE_56;
    let header_len = 48u32;
    let mut m = SIGNATURE.to_vec();
    m.extend(2u32.to_le_bytes());
    m.extend((target.len() as u16).to_le_bytes());
    m.extend((target.len() as u16).to_le_bytes());
    m.extend(header_len.to_le_bytes());
    m.extend(flags.to_le_bytes());
    m.extend(challenge);
    m.extend([0u8; 8]);
    m.extend((info.len() as u16).to_le_bytes());
    m.extend((info.len() as u16).to_le_bytes());
    m.extend((header_len + target.len() as u32).to_le_bytes());
    m.extend(target);
    m.extend(info);
    m
}

impl NtlmState {
    /// The user a connection logged on as, if it completed a handshake.
    pub fn connection_user(&self, conn: &str) -> Option<String> {
        if conn.is_empty() {
            return None;
        }
        self.authenticated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(conn)
            .cloned()
    }

    pub fn step(&self, conn: &str, token: &str, users: &[EwsUser]) -> Step {
        if conn.is_empty() {
            return Step::Refused;
        }
        let Ok(msg) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return Step::Refused;
        };
        if msg.len() < 12 || &msg[..8] != SIGNATURE {
            return Step::Refused;
        }
        match u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]) {
            1 => {
                let challenge: [u8; 8] = rand::random();
                // FILETIME: 100 ns ticks since 1601.
                let ft = (chrono::Utc::now().timestamp_millis().max(0) as u64 + 11_644_473_600_000)
                    * 10_000;
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(conn.to_string(), challenge);
                Step::Challenge(
                    base64::engine::general_purpose::STANDARD
                        .encode(challenge_message(&challenge, ft)),
                )
            }
            3 => {
                // The challenge must have been issued on this very connection.
                let Some(challenge) = self
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(conn)
                else {
                    return Step::Refused;
                };
                match verify(&msg, &challenge, users) {
                    Some(user) => {
                        self.authenticated
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(conn.to_string(), user.clone());
                        Step::Authenticated(user)
                    }
                    None => Step::Refused,
                }
            }
            _ => Step::Refused,
        }
    }
}

/// Check an AUTHENTICATE message; the matching account's user name.
fn verify(msg: &[u8], challenge: &[u8; 8], users: &[EwsUser]) -> Option<String> {
    let nt = field(msg, 20)?;
    let domain = from_utf16(field(msg, 28)?)?;
    let user = from_utf16(field(msg, 36)?)?;
    if nt.len() <= 24 {
        return None; // NTLMv1: refused
    }
    let (proof, blob) = nt.split_at(16);
    let account = users.iter().find(|u| {
        let name = &u.username;
        match name.split_once('\\') {
            Some((d, n)) => d.eq_ignore_ascii_case(&domain) && n.eq_ignore_ascii_case(&user),
            None => {
                name.eq_ignore_ascii_case(&user)
                    || (!domain.is_empty()
                        && name.eq_ignore_ascii_case(&format!("{user}@{domain}")))
            }
        }
    })?;
    let key = ntowf_v2(&account.password, &user, &domain);
    let expected = nt_proof(&key, challenge, blob);
    let same = expected
        .iter()
        .zip(proof)
        .fold(0u8, |a, (x, y)| a | (x ^ y))
        == 0;
    same.then(|| account.username.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// MS-NLMP 4.2.4 (NTLMv2 authentication) test vectors.
    #[test]
    fn ms_nlmp_ntlmv2_vectors() {
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let mut blob = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
        blob.extend([0u8; 8]); // time
        blob.extend([0xaa; 8]); // client challenge
        blob.extend([0u8; 4]);
        blob.extend(av_pair(2, &utf16("Domain")));
        blob.extend(av_pair(1, &utf16("Server")));
        blob.extend(av_pair(0, &[]));
        blob.extend([0u8; 4]);
        let proof = nt_proof(&key, &hex("0123456789abcdef").try_into().expect("8"), &blob);
        assert_eq!(proof.to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
    }
}
