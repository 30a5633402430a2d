//! The fault-injection spec language (`teeheap run --inject SPEC`,
//! `[[inject]]`, `teeheap inject SPEC`; docs/fault-injection.md).
//!
//! A spec is parsed once into a typed [`Spec`]; every bound (counts,
//! probabilities, durations, text length) is checked here, so the
//! injector acts on values only. `Display` prints the canonical text,
//! which parses back to the same spec.
//!
//! ```text
//! alloc:HEAP[:TRIGGER]:ENOMEM | delay=DUR       HEAP: a heap name or *
//! backend:unbind:WHEN | backend:rebind:WHEN
//! heap-rm:HEAP:WHEN
//! ta:UUID:cmd=N[:TRIGGER]:panic | busy | delay=DUR
//! ta:UUID:open[:TRIGGER]:panic | busy | delay=DUR
//! secure-world:panic:WHEN
//! firewall:MASTER:fault[:TRIGGER]
//! supplicant:gone[:WHEN]                       (default: at once)
//! TRIGGER: nth=N | every=N | prob=P        (default every=1)
//! WHEN:    after=DUR | after-allocs=N
//! DUR:     N followed by us, ms or s
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::master::Master;
use crate::use_case::UseCase;

/// Longest spec text accepted.
pub const MAX_SPEC_LEN: usize = 512;
/// Longest delay an injected fault may add to one call.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// Latest time a timed fault may be set for.
pub const MAX_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Why a spec was refused: the spec and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fault spec {spec:?}: {reason}")]
pub struct SpecError {
    /// The text as given (shortened if very long).
    pub spec: String,
    /// What is wrong.
    pub reason: String,
}

/// Which events of a point fire the fault, counted per spec from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Only the `n`-th event.
    Nth(u64),
    /// Events `n`, `2n`, `3n` ...
    Every(u64),
    /// Each event with this probability, in parts per billion (drawn
    /// from the run's seeded generator). In `1..=1e9`.
    Prob(u32),
}

/// When a timed fault happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// This long after the spec is armed (the first program's start, or
    /// the `teeheap inject` request).
    After(Duration),
    /// Right before the allocation that follows the `n`-th allocation on
    /// a protected heap since the spec was armed.
    AfterAllocs(u64),
}

/// What an allocation fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocAction {
    /// `DMA_HEAP_IOCTL_ALLOC` fails with `ENOMEM`.
    Enomem,
    /// The allocation takes this much longer.
    Delay(Duration),
}

/// Where in a TA's life a TA fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaPoint {
    /// `TEE_IOC_OPEN_SESSION`.
    Open,
    /// `TEE_IOC_INVOKE` of this command id.
    Cmd(u32),
}

/// What a TA fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaAction {
    /// The TA panics: `TEEC_ERROR_TARGET_DEAD` (origin TEE), the session
    /// is dead from then on.
    Panic,
    /// `TEEC_ERROR_BUSY` (origin TEE), as a single-instance TA in use.
    Busy,
    /// The TA takes this much longer.
    Delay(Duration),
}

/// Lifecycle events the injector makes happen at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendEvent {
    /// The TEE backend is unbound (as `teeheap backend unbind`).
    Unbind,
    /// The backend is bound again (unbound first if it is bound).
    Rebind,
}

/// A typed fault spec. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// Allocations on a heap (`None`: every heap).
    Alloc {
        /// The heap, `None` for `*`.
        heap: Option<String>,
        /// Which allocations.
        trigger: Trigger,
        /// What happens to them.
        action: AllocAction,
    },
    /// The backend is unbound or bound again.
    Backend {
        /// Unbind or rebind.
        event: BackendEvent,
        /// When.
        when: When,
    },
    /// A heap node is removed (as `teeheap heap rm`).
    HeapRm {
        /// The heap.
        heap: String,
        /// When.
        when: When,
    },
    /// A TA misbehaves.
    Ta {
        /// The TA.
        uuid: [u8; 16],
        /// On open or on a command.
        point: TaPoint,
        /// Which of those calls.
        trigger: Trigger,
        /// What happens.
        action: TaAction,
    },
    /// The secure world panics: every session dead, the TEE devices and
    /// the backend's heaps gone as when the backend dies.
    SecureWorldPanic {
        /// When.
        when: When,
    },
    /// A bus master's accesses are refused as if the firewall refused them.
    Firewall {
        /// The master.
        master: Master,
        /// Which of its accesses.
        trigger: Trigger,
    },
    /// tee-supplicant goes away for good, as when its process closed the
    /// supplicant's node: its requests fail with
    /// `TEEC_ERROR_COMMUNICATION`, its `TEE_IOC_SUPPL_RECV` ends.
    SupplicantGone {
        /// When (`After(0)`: at once).
        when: When,
    },
}

/// The heaps a spec may name.
fn heap_names() -> Vec<&'static str> {
    UseCase::ALL.iter().map(|u| u.heap_name()).chain(["system"]).collect()
}

fn count(key: &str, v: &str) -> Result<u64, String> {
    match v.replace('_', "").parse::<u64>() {
        Ok(n) if (1..=u64::from(u32::MAX)).contains(&n) => Ok(n),
        _ => Err(format!("{key}={v}: expected a count from 1 to {}", u32::MAX)),
    }
}

/// Parses `50ms`, `2s`, `100us`.
fn duration(key: &str, v: &str, max: Duration) -> Result<Duration, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{key}={v}: expected a duration such as 50ms or 2s"))?;
    let d = match unit {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return Err(format!("{key}={v}: the unit must be us, ms or s")),
    };
    if d > max {
        return Err(format!("{key}={v}: at most {}s", max.as_secs()));
    }
    Ok(d)
}

fn trigger(key: &str, v: &str) -> Result<Option<Trigger>, String> {
    Ok(Some(match key {
        "nth" => Trigger::Nth(count(key, v)?),
        "every" => Trigger::Every(count(key, v)?),
        "prob" => match v.parse::<f64>().map(|p| (p * 1e9).round()) {
            Ok(ppb) if (1.0..=1e9).contains(&ppb) => Trigger::Prob(ppb as u32),
            _ => return Err(format!("prob={v}: expected a probability from 0.000000001 to 1")),
        },
        _ => return Ok(None),
    }))
}

fn when(fields: &[&str]) -> Result<When, String> {
    match fields {
        [f] => match f.split_once('=') {
            Some(("after", v)) => Ok(When::After(duration("after", v, MAX_AFTER)?)),
            Some(("after-allocs", v)) => Ok(When::AfterAllocs(count("after-allocs", v)?)),
            _ => Err(format!("{f:?}: expected after=DURATION or after-allocs=N")),
        },
        [] => Err("missing after=DURATION or after-allocs=N".into()),
        _ => Err(format!("one after=DURATION or after-allocs=N expected, got {}", fields.join(":"))),
    }
}

fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashes: Vec<usize> = s.char_indices().filter(|(_, c)| *c == '-').map(|(i, _)| i).collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || dashes != [8, 13, 18, 23] {
        return Err(format!("{s:?}: expected a UUID such as 12345678-5b69-11e4-9dbb-101f74f00099"));
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The fields after the positional ones: at most one trigger and exactly
/// one action, in any order.
fn trigger_and_action<A>(
    fields: &[&str],
    action: impl Fn(&str) -> Result<Option<A>, String>,
    what: &str,
) -> Result<(Trigger, A), String> {
    let (mut t, mut a) = (None, None);
    for f in fields {
        let (key, v) = f.split_once('=').unwrap_or((f, ""));
        if let Some(found) = trigger(key, v)? {
            if t.replace(found).is_some() {
                return Err(format!("{f:?}: only one of nth=, every=, prob= may be given"));
            }
        } else if let Some(found) = action(f)? {
            if a.replace(found).is_some() {
                return Err(format!("{f:?}: only one action may be given"));
            }
        } else {
            return Err(format!("{f:?}: expected nth=N, every=N, prob=P or {what}"));
        }
    }
    Ok((t.unwrap_or(Trigger::Every(1)), a.ok_or_else(|| format!("missing the action ({what})"))?))
}

fn alloc_action(f: &str) -> Result<Option<AllocAction>, String> {
    Ok(match f.split_once('=') {
        None if f == "ENOMEM" => Some(AllocAction::Enomem),
        Some(("delay", v)) => Some(AllocAction::Delay(duration("delay", v, MAX_DELAY)?)),
        _ => None,
    })
}

fn ta_action(f: &str) -> Result<Option<TaAction>, String> {
    Ok(match f.split_once('=') {
        None if f == "panic" => Some(TaAction::Panic),
        None if f == "busy" => Some(TaAction::Busy),
        Some(("delay", v)) => Some(TaAction::Delay(duration("delay", v, MAX_DELAY)?)),
        _ => None,
    })
}

fn heap(name: &str) -> Result<String, String> {
    let names = heap_names();
    if names.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!("no heap {name:?}; the heaps are {}", names.join(", ")))
    }
}

fn parse(text: &str) -> Result<Spec, String> {
    let fields: Vec<&str> = text.split(':').collect();
    match fields.as_slice() {
        ["alloc", h, rest @ ..] => {
            let heap = if *h == "*" { None } else { Some(heap(h)?) };
            let (trigger, action) = trigger_and_action(rest, alloc_action, "ENOMEM or delay=DURATION")?;
            Ok(Spec::Alloc { heap, trigger, action })
        }
        ["backend", "unbind", rest @ ..] => Ok(Spec::Backend { event: BackendEvent::Unbind, when: when(rest)? }),
        ["backend", "rebind", rest @ ..] => Ok(Spec::Backend { event: BackendEvent::Rebind, when: when(rest)? }),
        ["backend", other, ..] => Err(format!("backend:{other}: expected backend:unbind or backend:rebind")),
        ["heap-rm", h, rest @ ..] => Ok(Spec::HeapRm { heap: heap(h)?, when: when(rest)? }),
        ["ta", uuid, point, rest @ ..] => {
            let uuid = parse_uuid(uuid)?;
            let point = match point.split_once('=') {
                None if *point == "open" => TaPoint::Open,
                Some(("cmd", v)) => TaPoint::Cmd(v.parse().map_err(|_| format!("cmd={v}: expected a command id"))?),
                _ => return Err(format!("{point:?}: expected open or cmd=N")),
            };
            let (trigger, action) = trigger_and_action(rest, ta_action, "panic, busy or delay=DURATION")?;
            Ok(Spec::Ta { uuid, point, trigger, action })
        }
        ["secure-world", "panic", rest @ ..] => Ok(Spec::SecureWorldPanic { when: when(rest)? }),
        ["secure-world", ..] => Err("expected secure-world:panic:WHEN".into()),
        ["firewall", m, "fault", rest @ ..] => {
            let master = m.parse::<Master>().map_err(|e| e.to_string())?;
            Ok(Spec::Firewall { master, trigger: firewall_trigger(rest)? })
        }
        ["firewall", ..] => Err("expected firewall:MASTER:fault[:nth=N|every=N|prob=P]".into()),
        ["supplicant", "gone"] => Ok(Spec::SupplicantGone { when: When::After(Duration::ZERO) }),
        ["supplicant", "gone", rest @ ..] => Ok(Spec::SupplicantGone { when: when(rest)? }),
        ["supplicant", ..] => Err("expected supplicant:gone[:after=DURATION|after-allocs=N]".into()),
        [kind, ..] => Err(format!(
            "unknown fault kind {kind:?}; the kinds are alloc, backend, heap-rm, ta, secure-world, firewall, supplicant"
        )),
        [] => Err("empty".into()),
    }
}

/// A firewall spec's trigger: at most one, every access by default.
fn firewall_trigger(fields: &[&str]) -> Result<Trigger, String> {
    let mut t = None;
    for f in fields {
        let (key, v) = f.split_once('=').unwrap_or((f, ""));
        match trigger(key, v)? {
            Some(found) if t.is_none() => t = Some(found),
            Some(_) => return Err(format!("{f:?}: only one of nth=, every=, prob= may be given")),
            None => return Err(format!("{f:?}: expected nth=N, every=N or prob=P")),
        }
    }
    Ok(t.unwrap_or(Trigger::Every(1)))
}

impl FromStr for Spec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Spec, SpecError> {
        let err = |reason: String| {
            let spec: String = text.chars().take(80).collect();
            SpecError { spec, reason }
        };
        if text.len() > MAX_SPEC_LEN {
            return Err(err(format!("longer than {MAX_SPEC_LEN} bytes")));
        }
        parse(text.trim()).map_err(err)
    }
}

struct Dur(Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        if us % 1_000_000 == 0 {
            write!(f, "{}s", us / 1_000_000)
        } else if us % 1000 == 0 {
            write!(f, "{}ms", us / 1000)
        } else {
            write!(f, "{us}us")
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Nth(n) => write!(f, "nth={n}"),
            Trigger::Every(n) => write!(f, "every={n}"),
            Trigger::Prob(ppb) => write!(f, "prob={}", f64::from(*ppb) / 1e9),
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::After(d) => write!(f, "after={}", Dur(*d)),
            When::AfterAllocs(n) => write!(f, "after-allocs={n}"),
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Alloc { heap, trigger, action } => {
                write!(f, "alloc:{}:{trigger}:", heap.as_deref().unwrap_or("*"))?;
                match action {
                    AllocAction::Enomem => f.write_str("ENOMEM"),
                    AllocAction::Delay(d) => write!(f, "delay={}", Dur(*d)),
                }
            }
            Spec::Backend { event: BackendEvent::Unbind, when } => write!(f, "backend:unbind:{when}"),
            Spec::Backend { event: BackendEvent::Rebind, when } => write!(f, "backend:rebind:{when}"),
            Spec::HeapRm { heap, when } => write!(f, "heap-rm:{heap}:{when}"),
            Spec::Ta { uuid, point, trigger, action } => {
                f.write_str("ta:")?;
                for (i, b) in uuid.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                match point {
                    TaPoint::Open => f.write_str(":open")?,
                    TaPoint::Cmd(c) => write!(f, ":cmd={c}")?,
                }
                write!(f, ":{trigger}:")?;
                match action {
                    TaAction::Panic => f.write_str("panic"),
                    TaAction::Busy => f.write_str("busy"),
                    TaAction::Delay(d) => write!(f, "delay={}", Dur(*d)),
                }
            }
            Spec::SecureWorldPanic { when } => write!(f, "secure-world:panic:{when}"),
            Spec::Firewall { master, trigger } => write!(f, "firewall:{master}:fault:{trigger}"),
            Spec::SupplicantGone { when: When::After(Duration::ZERO) } => f.write_str("supplicant:gone"),
            Spec::SupplicantGone { when } => write!(f, "supplicant:gone:{when}"),
        }
    }
}

impl serde::Serialize for Spec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Spec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "12345678-5b69-11e4-9dbb-101f74f00099";

    fn ok(text: &str, want: Spec) {
        let got: Spec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, want, "{text}");
        let again: Spec = got.to_string().parse().unwrap();
        assert_eq!(again, got, "{text} -> {got}");
    }

    fn bad(text: &str, needle: &str) {
        let e = text.parse::<Spec>().expect_err(text).to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }

    #[test]
    fn one_example_per_kind_parses_and_round_trips() {
        let sv = Some("protected,secure-video".to_owned());
        ok(
            "alloc:protected,secure-video:nth=3:ENOMEM",
            Spec::Alloc { heap: sv.clone(), trigger: Trigger::Nth(3), action: AllocAction::Enomem },
        );
        ok("alloc:*:ENOMEM", Spec::Alloc { heap: None, trigger: Trigger::Every(1), action: AllocAction::Enomem });
        ok(
            "alloc:system:prob=0.25:ENOMEM",
            Spec::Alloc {
                heap: Some("system".into()),
                trigger: Trigger::Prob(250_000_000),
                action: AllocAction::Enomem,
            },
        );
        ok(
            "alloc:protected,secure-video:delay=50ms:every=2",
            Spec::Alloc { heap: sv, trigger: Trigger::Every(2), action: AllocAction::Delay(Duration::from_millis(50)) },
        );
        ok(
            "backend:unbind:after=2s",
            Spec::Backend { event: BackendEvent::Unbind, when: When::After(Duration::from_secs(2)) },
        );
        ok(
            "backend:unbind:after-allocs=100",
            Spec::Backend { event: BackendEvent::Unbind, when: When::AfterAllocs(100) },
        );
        ok(
            "backend:rebind:after=5s",
            Spec::Backend { event: BackendEvent::Rebind, when: When::After(Duration::from_secs(5)) },
        );
        ok(
            "heap-rm:protected,trusted-ui:after=1500ms",
            Spec::HeapRm { heap: "protected,trusted-ui".into(), when: When::After(Duration::from_millis(1500)) },
        );
        let uuid = parse_uuid(SDP).unwrap();
        assert_eq!(uuid[..4], [0x12, 0x34, 0x56, 0x78]);
        ok(
            &format!("ta:{SDP}:cmd=2:panic"),
            Spec::Ta { uuid, point: TaPoint::Cmd(2), trigger: Trigger::Every(1), action: TaAction::Panic },
        );
        ok(
            &format!("ta:{SDP}:cmd=0:nth=2:delay=200ms"),
            Spec::Ta {
                uuid,
                point: TaPoint::Cmd(0),
                trigger: Trigger::Nth(2),
                action: TaAction::Delay(Duration::from_millis(200)),
            },
        );
        ok(
            &format!("ta:{SDP}:open:busy"),
            Spec::Ta { uuid, point: TaPoint::Open, trigger: Trigger::Every(1), action: TaAction::Busy },
        );
        ok("secure-world:panic:after=3s", Spec::SecureWorldPanic { when: When::After(Duration::from_secs(3)) });
        ok(
            "firewall:video-decoder:fault:nth=4",
            Spec::Firewall { master: Master::VideoDecoder, trigger: Trigger::Nth(4) },
        );
        ok("firewall:secure-cpu:fault", Spec::Firewall { master: Master::SecureCpu, trigger: Trigger::Every(1) });
        ok("supplicant:gone", Spec::SupplicantGone { when: When::After(Duration::ZERO) });
        ok("supplicant:gone:after=500ms", Spec::SupplicantGone { when: When::After(Duration::from_millis(500)) });
        ok("supplicant:gone:after-allocs=2", Spec::SupplicantGone { when: When::AfterAllocs(2) });
    }

    #[test]
    fn mistakes_are_named() {
        bad("alloc:gpu:ENOMEM", "no heap \"gpu\"");
        bad("alloc:system:nth=0:ENOMEM", "nth=0");
        bad("alloc:system:nth=1:every=2:ENOMEM", "only one of");
        bad("alloc:system:nth=1", "missing the action");
        bad("alloc:system:EPERM", "expected nth=N");
        bad("alloc:system:prob=1.5:ENOMEM", "probability");
        bad("alloc:system:prob=NaN:ENOMEM", "probability");
        bad("alloc:system:prob=0:ENOMEM", "probability");
        bad("alloc:system:delay=5parsecs", "unit");
        bad("alloc:system:delay=61s", "at most 60s");
        bad("backend:unbind", "missing after=");
        bad("backend:unbind:after=2s:after=3s", "one after=");
        bad("backend:explode:after=1s", "backend:unbind or backend:rebind");
        bad("heap-rm:system:when=1s", "expected after=");
        bad("ta:1234:cmd=1:panic", "expected a UUID");
        bad(&format!("ta:{SDP}:cmd=x:panic"), "command id");
        bad(&format!("ta:{SDP}:close:panic"), "open or cmd=N");
        bad("secure-world:reboot:after=1s", "secure-world:panic");
        bad("firewall:gpu:fault", "unknown bus master");
        bad("firewall:display:fault:ENOMEM", "expected nth=N");
        bad("supplicant:leave", "expected supplicant:gone");
        bad("supplicant:gone:after=1s:after=2s", "one after=");
        bad("meteor:strike", "unknown fault kind");
        bad(&"x".repeat(MAX_SPEC_LEN + 1), "longer than");
    }
}
