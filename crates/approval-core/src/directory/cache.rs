//! A small time-limited cache for directory answers. Only successful answers are stored; a TTL
//! of zero turns it off. Keys are compared as given (callers normalise them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this are evicted (oldest first) so a flood of distinct senders cannot grow it.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn get(&self, key: &str) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: String, value: V) {
        if !self.enabled() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_ttl_stores_nothing() {
        let c = TtlCache::new(Duration::ZERO);
        c.put("k".into(), 1);
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn entries_expire() {
        let c = TtlCache::new(Duration::from_millis(50));
        c.put("k".into(), 1);
        assert_eq!(c.get("k"), Some(1));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn size_is_bounded() {
        let c = TtlCache::new(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES + 10) {
            c.put(format!("k{i}"), i);
        }
        let n = c.map.lock().expect("lock").len();
        assert!(n <= MAX_ENTRIES, "{n}");
        assert_eq!(
            c.get(&format!("k{}", MAX_ENTRIES + 9)),
            Some(MAX_ENTRIES + 9)
        );
    }
}
