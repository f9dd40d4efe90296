//! NTLM client messages (MS-NLMP), NTLMv2 only: NEGOTIATE, reading the server's CHALLENGE,
//! and the AUTHENTICATE answer. No signing or sealing: HTTP authentication needs neither.
//!
//! No well-kept Rust crate fits here (`ntlmclient` 0.2 is unmaintained and drags in DES/RC4;
//! `sspi` is heavy); the math is small and pinned by the MS-NLMP test vectors below.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};

type HmacMd5 = Hmac<md5::Md5>;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;

const FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// MsvAvTimestamp
const AV_TIMESTAMP: u16 = 7;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// `DOMAIN\user` -> (user, DOMAIN); `user@example.com` and `user` -> (as given, "").
pub fn split_user(username: &str) -> (String, String) {
    match username.split_once('\\') {
        Some((d, u)) => (u.to_string(), d.to_string()),
        None => (username.to_string(), String::new()),
    }
}

/// NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)).
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16(password));
    hmac_md5(&nt_hash, &[&utf16(&(user.to_uppercase() + domain))])
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = HmacMd5::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The NEGOTIATE message (type 1).
pub fn negotiate() -> Vec<u8> {
    let mut m = SIGNATURE.to_vec();
    m.extend(1u32.to_le_bytes());
    m.extend(FLAGS.to_le_bytes());
    m.extend([0u8; 16]); // empty domain and workstation fields
    m
}

/// What the CHALLENGE message (type 2) tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub server_challenge: [u8; 8],
    pub target_info: Vec<u8>,
    pub flags: u32,
}

fn field(msg: &[u8], at: usize) -> Option<&[u8]> {
    let len = u16::from_le_bytes(msg.get(at..at + 2)?.try_into().ok()?) as usize;
    let off = u32::from_le_bytes(msg.get(at + 4..at + 8)?.try_into().ok()?) as usize;
    msg.get(off..off.checked_add(len)?)
}

/// Read a CHALLENGE message; None when it is not one.
pub fn parse_challenge(msg: &[u8]) -> Option<Challenge> {
    if msg.len() < 32 || &msg[..8] != SIGNATURE || msg[8..12] != 2u32.to_le_bytes() {
        return None;
    }
    let flags = u32::from_le_bytes(msg[20..24].try_into().ok()?);
    let server_challenge: [u8; 8] = msg[24..32].try_into().ok()?;
    let target_info = if msg.len() >= 48 {
        field(msg, 40).unwrap_or(&[]).to_vec()
    } else {
        Vec::new()
    };
    Some(Challenge {
        server_challenge,
        target_info,
        flags,
    })
}

fn av_timestamp(info: &[u8]) -> Option<[u8; 8]> {
    let mut i = 0;
    while i + 4 <= info.len() {
        let id = u16::from_le_bytes([info[i], info[i + 1]]);
        let len = u16::from_le_bytes([info[i + 2], info[i + 3]]) as usize;
        let v = info.get(i + 4..i + 4 + len)?;
        if id == 0 {
            return None;
        }
        if id == AV_TIMESTAMP && len == 8 {
            return v.try_into().ok();
        }
        i += 4 + len;
    }
    None
}

/// The NTLMv2 blob (`temp` in MS-NLMP 3.3.2).
pub fn blob(timestamp: [u8; 8], client_challenge: [u8; 8], target_info: &[u8]) -> Vec<u8> {
    let mut b = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    b.extend(timestamp);
    b.extend(client_challenge);
    b.extend([0u8; 4]);
    b.extend_from_slice(target_info);
    b.extend([0u8; 4]);
    b
}

/// (NtChallengeResponse, LmChallengeResponse) for NTLMv2.
pub fn responses(
    key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: [u8; 8],
    timestamp: [u8; 8],
    target_info: &[u8],
    lm_zero: bool,
) -> (Vec<u8>, Vec<u8>) {
    let temp = blob(timestamp, client_challenge, target_info);
    let proof = hmac_md5(key, &[server_challenge, &temp]);
    let mut nt = proof.to_vec();
    nt.extend(temp);
    let lm = if lm_zero {
        vec![0u8; 24]
    } else {
        let mut l = hmac_md5(key, &[server_challenge, &client_challenge]).to_vec();
        l.extend(client_challenge);
        l
    };
    (nt, lm)
}

/// The AUTHENTICATE message (type 3) answering a challenge.
pub fn authenticate(c: &Challenge, username: &str, password: &str, workstation: &str) -> Vec<u8> {
    let (user, domain) = split_user(username);
    let key = ntowf_v2(password, &user, &domain);
    let client_challenge: [u8; 8] = rand::random();
    // With a server timestamp, LMv2 is sent as zeros (MS-NLMP 3.1.5.1.2).
    let (timestamp, lm_zero) = match av_timestamp(&c.target_info) {
        Some(t) => (t, true),
        None => {
            let ft =
                (chrono::Utc::now().timestamp_millis().max(0) as u64 + 11_644_473_600_000) * 10_000;
            (ft.to_le_bytes(), false)
        }
    };
    let (nt, lm) = responses(
        &key,
        &c.server_challenge,
        client_challenge,
        timestamp,
        &c.target_info,
        lm_zero,
    );
    let payloads = [
        lm,
        nt,
        utf16(&domain),
        utf16(&user),
        utf16(workstation),
        Vec::new(),
    ];
    let header_len = 64u32;
    let mut m = SIGNATURE.to_vec();
    m.extend(3u32.to_le_bytes());
    let mut offset = header_len;
    for p in &payloads {
        m.extend((p.len() as u16).to_le_bytes());
        m.extend((p.len() as u16).to_le_bytes());
        m.extend(offset.to_le_bytes());
        offset += p.len() as u32;
    }
    m.extend((FLAGS & c.flags | NEGOTIATE_UNICODE).to_le_bytes());
    for p in &payloads {
        m.extend(p);
    }
    m
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

    fn av(id: u16, v: &[u8]) -> Vec<u8> {
        let mut out = id.to_le_bytes().to_vec();
        out.extend((v.len() as u16).to_le_bytes());
        out.extend(v);
        out
    }

    /// MS-NLMP 4.2.4: user "User", domain "Domain", password "Password", server challenge
    /// 0123456789abcdef, client challenge aa…, time 0, target info Domain/Server.
    #[test]
    fn ms_nlmp_ntlmv2_vectors() {
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let mut info = av(2, &utf16("Domain"));
        info.extend(av(1, &utf16("Server")));
        info.extend(av(0, &[]));
        let sc: [u8; 8] = hex("0123456789abcdef").try_into().expect("8 bytes");
        let (nt, lm) = responses(&key, &sc, [0xaa; 8], [0; 8], &info, false);
        assert_eq!(nt[..16].to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
        assert_eq!(lm, hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn authenticate_carries_user_domain_and_a_v2_response() {
        let mut info = av(AV_TIMESTAMP, &[1, 2, 3, 4, 5, 6, 7, 8]);
        info.extend(av(0, &[]));
        let c = Challenge {
            server_challenge: [9; 8],
            target_info: info.clone(),
            flags: FLAGS,
        };
        let m = authenticate(&c, "CORP\\bot", "pw", "HOST");
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(field(&m, 28), Some(&utf16("CORP")[..]));
        assert_eq!(field(&m, 36), Some(&utf16("bot")[..]));
        let nt = field(&m, 20).expect("nt response");
        assert!(nt.len() > 24);
        // the blob echoes the server's timestamp and target info
        assert_eq!(&nt[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let key = ntowf_v2("pw", "bot", "CORP");
        assert_eq!(
            hmac_md5(&key, &[&[9; 8], &nt[16..]]).to_vec(),
            nt[..16].to_vec()
        );
        assert_eq!(field(&m, 12), Some(&[0u8; 24][..]));
        assert!(parse_challenge(&negotiate()).is_none());
    }
}
