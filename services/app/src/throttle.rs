//! Guessing credentials at speed: failed sign-ins (desk tokens, adapter tokens and
//! signatures) are counted per source address, and an address that failed too often lately
//! is refused outright — with the right credential too — until its window ends. Every
//! front-end that checks a credential asks the same [`Throttle`]; follow-up codes, typed by
//! anyone on the citizens' space, have a [`Throttle`] of their own (a guesser there must not
//! lock the agents out), counted before the code is checked ([`Throttle::reserve`]). And
//! flooding: [`Rate`] counts every request of a source address per minute (the adapter
//! endpoints).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts an address may make in one window.
pub const MAX_FAILURES: u32 = 10;
/// How long an address's failures count.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses followed at once, at most (the oldest windows go first when full).
const MAX_TRACKED: usize = 100_000;

/// Failed attempts per source address.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

/// Who an address stands for: itself, or for IPv6 its /64 (one host holds a whole /64 and
/// could rotate through it).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        other => other,
    }
}

/// Makes room for one more address in a full `map`: windows that ended go, then the oldest.
fn make_room(map: &mut HashMap<IpAddr, (u32, Instant)>, window: Duration) {
    if map.len() < MAX_TRACKED {
        return;
    }
    map.retain(|_, (_, since)| since.elapsed() < window);
    if map.len() >= MAX_TRACKED {
        if let Some(oldest) = map.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k) {
            map.remove(&oldest);
        }
    }
}

/// The failures of `source` in its current window (a new window when the last one ended).
fn current(map: &mut HashMap<IpAddr, (u32, Instant)>, source: IpAddr) -> &mut (u32, Instant) {
    if !map.contains_key(&source) {
        make_room(map, WINDOW);
    }
    let slot = map.entry(source).or_insert((0, Instant::now()));
    if slot.1.elapsed() >= WINDOW {
        *slot = (0, Instant::now());
    }
    slot
}

impl Throttle {
    /// `Err(retry_after)` while `source` is refused.
    pub fn check(&self, source: IpAddr) -> Result<(), Duration> {
        let source = source_of(source);
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&source) {
            Some(&(n, since)) if n >= MAX_FAILURES && since.elapsed() < WINDOW => Err(WINDOW
                .saturating_sub(since.elapsed())
                .max(Duration::from_secs(1))),
            _ => Ok(()),
        }
    }

    /// Counts an attempt of `source` before it is checked, refusing it when the address is
    /// at its limit: parallel attempts cannot all pass before their failures are counted. A
    /// right attempt is [`Throttle::forgive`]n.
    pub fn reserve(&self, source: IpAddr) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let slot = current(&mut map, source_of(source));
        if slot.0 >= MAX_FAILURES {
            return Err(WINDOW
                .saturating_sub(slot.1.elapsed())
                .max(Duration::from_secs(1)));
        }
        slot.0 += 1;
        Ok(())
    }

    /// Takes back an attempt of `source` [`Throttle::reserve`]d that turned out right.
    pub fn forgive(&self, source: IpAddr) {
        let source = source_of(source);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = map.get_mut(&source) {
            slot.0 = slot.0.saturating_sub(1);
        }
    }

    /// Counts a failed attempt from `source`.
    pub fn failed(&self, source: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        current(&mut map, source_of(source)).0 += 1;
    }
}

/// Requests per source address and minute, refused beyond a limit until the minute ends.
pub struct Rate {
    per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Rate {
    /// At most `per_minute` requests per address and minute (no limit when 0).
    pub fn new(per_minute: u32) -> Rate {
        Rate {
            per_minute,
            seen: Mutex::default(),
        }
    }

    /// Counts a request of `source`: `Err(retry_after)` beyond the limit.
    pub fn admit(&self, source: IpAddr) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let source = source_of(source);
        let minute = Duration::from_secs(60);
        let mut map = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&source) {
            make_room(&mut map, minute);
        }
        let slot = map.entry(source).or_insert((0, Instant::now()));
        if slot.1.elapsed() >= minute {
            *slot = (0, Instant::now());
        }
        if slot.0 >= self.per_minute {
            return Err(minute
                .saturating_sub(slot.1.elapsed())
                .max(Duration::from_secs(1)));
        }
        slot.0 += 1;
        Ok(())
    }
}

impl std::fmt::Debug for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rate")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_too_many_failures_and_others_are_not() {
        let t = Throttle::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(t.check(a).is_ok());
            t.failed(a);
        }
        let wait = t.check(a).unwrap_err();
        assert!(wait <= WINDOW && wait >= Duration::from_secs(1), "{wait:?}");
        assert!(t.check(b).is_ok());
    }

    #[test]
    fn a_source_is_limited_per_minute_and_others_are_not() {
        let r = Rate::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(r.admit(a).is_ok());
        }
        let wait = r.admit(a).unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1));
        assert!(r.admit(b).is_ok());
        assert!(Rate::new(0).admit(a).is_ok());
        // The addresses of one IPv6 /64 are one source.
        let r = Rate::new(2);
        for last in [
            "2001:db8:1:2::1",
            "2001:db8:1:2::ff",
            "2001:db8:1:2:abcd::9",
        ] {
            let _ = r.admit(last.parse().unwrap());
        }
        assert!(r.admit("2001:db8:1:2::7".parse().unwrap()).is_err());
        assert!(r.admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
    }
}
