//! How many connections the daemon keeps, and which it closes.
//!
//! Without limits, ~22,000 idle connections reached the fd limit and every
//! later client hung. The rules:
//!
//! - **A cap** ([`Limits::max_connections`], a quarter of the soft
//!   `RLIMIT_NOFILE`, between 16 and 1024): at the cap, a new connection
//!   closes the connection that has been **idle longest** (no request in
//!   flight); when every connection has a request in flight, the new one
//!   is closed instead (the client reports the daemon closed it). So a
//!   flood of idle connections cannot keep a new client out.
//! - **Idle timeouts**: a connection that has not sent a complete request
//!   within [`FIRST_REQUEST_WITHIN`] of being accepted, or that has been
//!   idle for [`IDLE_TIMEOUT`] after its last request ended, is closed (the
//!   client's channel reconnects on its next call).
//! - **Requests in flight** are counted per connection by [`TrackLayer`]:
//!   a request counts from its first complete gRPC message (or the end of
//!   its body, or the handler's answer, whichever comes first) until its
//!   response has been sent. A stream whose headers arrived but that sends
//!   no complete message (an idle stream) does not count, and is answered
//!   `DEADLINE_EXCEEDED` after [`REQUEST_WITHIN`]; HTTP/2 allows at most
//!   [`MAX_STREAMS`] concurrent streams per connection.
//!
//! Closing is `shutdown(2)` on the socket: the connection's task reads
//! EOF and ends, and the slot is freed when its stream is dropped. A slot
//! is removed from the table (under its lock) before its descriptor is
//! closed, so the table never touches a reused descriptor.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::http;

use crate::caller::conn::ConnInfo;

/// Concurrent HTTP/2 streams per connection.
pub const MAX_STREAMS: u32 = 32;
/// A new connection must complete a request within this.
pub const FIRST_REQUEST_WITHIN: Duration = Duration::from_secs(10);
/// A connection with no request in flight is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A stream must deliver a complete request message within this.
pub const REQUEST_WITHIN: Duration = Duration::from_secs(10);
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The connection limits in force.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub first_request_within: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// The limits for this process: the cap follows its soft fd limit, so
    /// connections never use more than a quarter of the descriptors (runs,
    /// the vault and the audit log need the rest).
    pub fn for_this_process() -> Limits {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        Limits {
            max_connections: max_connections(soft),
            first_request_within: FIRST_REQUEST_WITHIN,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// The connection cap for a soft fd limit.
pub fn max_connections(fd_limit: u64) -> usize {
    (fd_limit / 4).clamp(16, 1024) as usize
}

/// Every live connection.
pub struct Table {
    limits: Limits,
    inner: Mutex<Inner>,
}

struct Inner {
    next_id: u64,
    live: HashMap<u64, Arc<Slot>>,
    /// Connections refused at the cap since the last warning.
    refused: u64,
    warned_at: Option<Instant>,
}

/// One connection's activity.
pub struct Slot {
    id: u64,
    fd: RawFd,
    accepted: Instant,
    state: Mutex<Activity>,
}

struct Activity {
    in_flight: usize,
    /// A request was ever counted on this connection.
    used: bool,
    /// When the last request ended (or the connection was accepted).
    idle_since: Instant,
}

impl Slot {
    fn activity(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.state.lock().expect("slot lock is never poisoned")
    }

    fn begin(&self) {
        let mut a = self.activity();
        a.in_flight += 1;
        a.used = true;
    }

    fn end(&self) {
        let mut a = self.activity();
        a.in_flight = a.in_flight.saturating_sub(1);
        if a.in_flight == 0 {
            a.idle_since = Instant::now();
        }
    }

    /// Since when it has been idle; `None` while a request is in flight.
    fn idle_since(&self) -> Option<Instant> {
        let a = self.activity();
        (a.in_flight == 0).then_some(a.idle_since)
    }

    /// Whether it is past its idle deadline at `now`.
    fn expired(&self, now: Instant, limits: &Limits) -> bool {
        let a = self.activity();
        if a.in_flight > 0 {
            return false;
        }
        if a.used {
            now.duration_since(a.idle_since) >= limits.idle_timeout
        } else {
            now.duration_since(self.accepted) >= limits.first_request_within
        }
    }
}

/// A connection's place in the table, held by its stream: dropping it (the
/// stream is gone) frees the place.
pub struct Admission {
    table: Arc<Table>,
    slot: Arc<Slot>,
}

impl Admission {
    /// The connection's activity, for the requests on it.
    pub fn slot(&self) -> Arc<Slot> {
        self.slot.clone()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.table.lock().live.remove(&self.slot.id);
    }
}

/// Why a connection was closed by the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Evicted,
    Idle,
}

impl Table {
    pub fn new(limits: Limits) -> Arc<Table> {
        Arc::new(Table {
            limits,
            inner: Mutex::new(Inner {
                next_id: 0,
                live: HashMap::new(),
                refused: 0,
                warned_at: None,
            }),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("connection table lock is never poisoned")
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a place for `stream`, closing the longest-idle connection at
    /// the cap; `None` (close `stream`) when every connection is busy.
    pub fn admit(self: &Arc<Self>, stream: &impl AsRawFd) -> Option<Admission> {
        let mut inner = self.lock();
        if inner.live.len() >= self.limits.max_connections {
            let victim = inner
                .live
                .values()
                .filter_map(|s| s.idle_since().map(|t| (t, s.id)))
                .min()
                .map(|(_, id)| id);
            match victim {
                Some(id) => close(&mut inner, id, Why::Evicted),
                None => {
                    inner.refused += 1;
                    let now = Instant::now();
                    if inner
                        .warned_at
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
                    {
                        tracing::warn!(
                            limit = self.limits.max_connections,
                            refused = inner.refused,
                            "connection limit reached and every connection is busy: refusing new connections"
                        );
                        inner.refused = 0;
                        inner.warned_at = Some(now);
                    }
                    return None;
                }
            }
        }
        let now = Instant::now();
        let id = inner.next_id;
        inner.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            fd: stream.as_raw_fd(),
            accepted: now,
            state: Mutex::new(Activity {
                in_flight: 0,
                used: false,
                idle_since: now,
            }),
        });
        inner.live.insert(id, slot.clone());
        Some(Admission {
            table: self.clone(),
            slot,
        })
    }

    /// Closes every connection past its idle deadline at `now`.
    pub fn sweep(&self, now: Instant) {
        let mut inner = self.lock();
        let expired: Vec<u64> = inner
            .live
            .values()
            .filter(|s| s.expired(now, &self.limits))
            .map(|s| s.id)
            .collect();
        for id in expired {
            close(&mut inner, id, Why::Idle);
        }
    }

    /// Sweeps every second until the daemon stops.
    pub async fn sweep_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep(Instant::now());
        }
    }
}

/// Shuts the connection `id` down and forgets it. Called with the table
/// locked: its stream (and descriptor) is still open while it is listed.
fn close(inner: &mut Inner, id: u64, why: Why) {
    if let Some(slot) = inner.live.remove(&id) {
        tracing::debug!(?why, "closing a connection");
        let _ = nix::sys::socket::shutdown(slot.fd, nix::sys::socket::Shutdown::Both);
    }
}

/// Counts the requests in flight on each connection (see the module
/// docs); add with `Server::builder().layer(TrackLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// The service [`TrackLayer`] wraps around the daemon's services.
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<Body>> for Track<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The readied service handles this call; a fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(slot) = req.extensions().get::<ConnInfo>().and_then(|c| c.1.clone()) else {
            return Box::pin(inner.call(req));
        };
        let request = Arc::new(InFlight {
            slot,
            counted: AtomicBool::new(false),
        });
        let (parts, body) = req.into_parts();
        let body = Body::new(Watch {
            inner: body,
            request: Some(request.clone()),
            header: [0; 5],
            header_len: 0,
            left: 0,
        });
        let call = inner.call(http::Request::from_parts(parts, body));
        Box::pin(async move {
            let stalled = async {
                tokio::time::sleep(REQUEST_WITHIN).await;
                if request.counted() {
                    std::future::pending::<()>().await;
                }
            };
            let response = tokio::select! {
                r = call => r?,
                () = stalled => {
                    return Ok(tonic::Status::deadline_exceeded(format!(
                        "no complete request message within {} s",
                        REQUEST_WITHIN.as_secs()
                    ))
                    .into_http());
                }
            };
            request.count();
            Ok(response.map(|b| Body::new(Hold { inner: b, request })))
        })
    }
}

/// One request; counted on its connection from [`InFlight::count`] until
/// the last holder (request body, handler, response body) drops it.
struct InFlight {
    slot: Arc<Slot>,
    counted: AtomicBool,
}

impl InFlight {
    fn count(&self) {
        if !self.counted.swap(true, Ordering::SeqCst) {
            self.slot.begin();
        }
    }

    fn counted(&self) -> bool {
        self.counted.load(Ordering::SeqCst)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if *self.counted.get_mut() {
            self.slot.end();
        }
    }
}

/// A request body that counts its request once a complete gRPC message
/// (5-byte header: flag and big-endian length, then the message) or the
/// end of the body has arrived.
struct Watch {
    inner: Body,
    /// `None` once counted.
    request: Option<Arc<InFlight>>,
    header: [u8; 5],
    header_len: usize,
    left: u64,
}

impl Watch {
    fn complete(&mut self) {
        if let Some(r) = self.request.take() {
            r.count();
        }
    }

    fn on_data(&mut self, mut data: &[u8]) {
        while self.request.is_some() && !data.is_empty() {
            if self.header_len < 5 {
                let n = (5 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len < 5 {
                    return;
                }
                let h = self.header;
                self.left = u64::from(u32::from_be_bytes([h[1], h[2], h[3], h[4]]));
            }
            let n = (self.left as usize).min(data.len());
            self.left -= n as u64;
            data = &data[n..];
            if self.left == 0 {
                self.complete();
            }
        }
        // A zero-length message has no bytes after its header.
        if self.header_len == 5 && self.left == 0 {
            self.complete();
        }
    }
}

impl HttpBody for Watch {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    self.on_data(&data);
                }
            }
            Poll::Ready(None) => self.complete(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end && let Some(r) = &self.request {
            r.count();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted until it is dropped
/// (sent, or the stream reset).
struct Hold {
    inner: Body,
    #[allow(dead_code)] // held for its Drop
    request: Arc<InFlight>,
}

impl HttpBody for Hold {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            max_connections: max,
            first_request_within: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }

    fn pair() -> (
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    ) {
        std::os::unix::net::UnixStream::pair().unwrap()
    }

    /// Whether the peer of `ours` was shut down (reads EOF at once).
    fn shut(other: &std::os::unix::net::UnixStream) -> bool {
        use std::io::Read;
        other.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        matches!((&*other).read(&mut b), Ok(0))
    }

    #[test]
    fn the_cap_follows_the_fd_limit() {
        assert_eq!(max_connections(1024), 256);
        assert_eq!(max_connections(20), 16);
        assert_eq!(max_connections(1 << 20), 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_longest_idle_connection_goes() {
        let t = Table::new(limits(2));
        let (a, a_peer) = pair();
        let (b, b_peer) = pair();
        let (c, c_peer) = pair();
        let adm_a = t.admit(&a).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let adm_b = t.admit(&b).unwrap();
        // a is busy: b, idle, goes for c although a is older.
        adm_a.slot().begin();
        let adm_c = t.admit(&c).unwrap();
        assert!(shut(&b_peer), "b evicted");
        assert!(!shut(&a_peer), "a busy, kept");
        assert!(!shut(&c_peer));
        drop(adm_b);
        assert_eq!(t.len(), 2);
        // Both busy: a newcomer is refused, nobody evicted.
        adm_c.slot().begin();
        let (d, _d_peer) = pair();
        assert!(t.admit(&d).is_none());
        assert!(!shut(&a_peer) && !shut(&c_peer));
        // A request ends: its connection is idle again and can go.
        adm_a.slot().end();
        assert!(t.admit(&d).is_some());
        assert!(shut(&a_peer));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_time_out() {
        let t = Table::new(limits(16));
        let (fresh, fresh_peer) = pair();
        let (used, used_peer) = pair();
        let (busy, busy_peer) = pair();
        let _f = t.admit(&fresh).unwrap();
        let u = t.admit(&used).unwrap();
        let b = t.admit(&busy).unwrap();
        u.slot().begin();
        u.slot().end();
        b.slot().begin();
        tokio::time::advance(FIRST_REQUEST_WITHIN).await;
        t.sweep(Instant::now());
        assert!(shut(&fresh_peer), "no request within the first window");
        assert!(!shut(&used_peer) && !shut(&busy_peer));
        tokio::time::advance(IDLE_TIMEOUT).await;
        t.sweep(Instant::now());
        assert!(shut(&used_peer), "idle after its request");
        assert!(!shut(&busy_peer), "a request in flight keeps it");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_request_counts_once_its_first_message_is_complete() {
        let t = Table::new(limits(4));
        let (s, _peer) = pair();
        let adm = t.admit(&s).unwrap();
        let request = Arc::new(InFlight {
            slot: adm.slot(),
            counted: AtomicBool::new(false),
        });
        let mut w = Watch {
            inner: Body::empty(),
            request: Some(request.clone()),
            header: [0; 5],
            header_len: 0,
            left: 0,
        };
        // A 3-byte message arriving in pieces.
        w.on_data(&[0, 0, 0]);
        w.on_data(&[0, 3, b'a']);
        assert!(!request.counted());
        assert!(adm.slot().idle_since().is_some());
        w.on_data(b"bc");
        assert!(request.counted());
        assert!(adm.slot().idle_since().is_none(), "busy while counted");
        drop(w);
        drop(request);
        assert!(adm.slot().idle_since().is_some(), "idle once it ended");
        // An empty message counts at its header.
        let request = Arc::new(InFlight {
            slot: adm.slot(),
            counted: AtomicBool::new(false),
        });
        let mut w = Watch {
            inner: Body::empty(),
            request: Some(request.clone()),
            header: [0; 5],
            header_len: 0,
            left: 0,
        };
        w.on_data(&[0, 0, 0, 0, 0]);
        assert!(request.counted());
    }
}
