//! The screen: a refused source gets one stateless answer (no 100 Trying, no
//! retransmission, nothing kept), a dropped one nothing, an admitted one its call.

use super::*;
use crate::ua::screen::{Admission, Screen};

/// Refuses every INVITE with `verdict`, counting what it was asked.
struct Fixed(Admission, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Screen for Fixed {
    fn screen(&mut self, _: Instant, _: SocketAddr, _: &Message) -> Admission {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.clone()
    }
}

fn screened(verdict: Admission) -> (Pair, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut pair = Pair::new();
    pair.bob = UserAgent::new(UaConfig::new(bob_addr()))
        .with_screen(Box::new(Fixed(verdict, asked.clone())));
    (pair, asked)
}

#[test]
fn a_refused_source_gets_one_403_and_no_100_nor_retransmission() {
    let (mut pair, asked) = screened(Admission::Refuse {
        status: 403,
        retry_after: None,
        why: Some("not a provider's address".into()),
    });
    pair.place(Some(OFFER));
    pair.advance(40_000);
    let from_bob: Vec<_> = pair
        .take_trace()
        .into_iter()
        .filter(|l| l.starts_with("B->A"))
        .collect();
    assert_eq!(from_bob, vec!["B->A 403 (INVITE)".to_owned()]);
    assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(pair.bob_events.is_empty(), "{:?}", pair.bob_events);
    assert_eq!(pair.bob.transactions(), 0);
    assert_eq!(
        ended(&pair.alice_events),
        vec![(Side::Remote, EndCause::Rejected(403))]
    );
}

#[test]
fn a_dropped_source_gets_nothing_and_costs_nothing() {
    let (mut pair, _) = screened(Admission::Drop);
    pair.place(Some(OFFER));
    pair.advance(1_000);
    assert!(
        pair.take_trace().iter().all(|l| !l.starts_with("B->A")),
        "Bob answered a dropped source"
    );
    assert_eq!(pair.bob.transactions(), 0);
    assert_eq!(pair.bob.calls(), 0);
}

#[test]
fn an_over_rate_source_gets_503_with_retry_after() {
    let (mut pair, _) = screened(Admission::Refuse {
        status: 503,
        retry_after: Some(2),
        why: None,
    });
    pair.place(Some(OFFER));
    let trace = pair.take_trace();
    assert!(trace.contains(&"B->A 503 (INVITE)".to_owned()), "{trace:?}");
}
