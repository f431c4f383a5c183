//! The accepted socket with its [`Conn`] attached: tonic hands the `Conn`
//! to every request on the connection (`Request::extensions`), so the
//! caller is classified once per connection, not once per request. It also
//! holds the connection's place in the connection table (`conns`), freed
//! when the stream is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tonic::transport::server::Connected;

use super::Conn;
use crate::conns::{Admission, Slot};

/// A connection and who is at its other end.
pub struct PeerStream {
    // Declared first, so dropped first: the place is freed before the
    // descriptor is closed (see `conns`).
    admission: Option<Admission>,
    inner: UnixStream,
    conn: Arc<Conn>,
}

impl PeerStream {
    pub fn new(inner: UnixStream, conn: Conn, admission: Option<Admission>) -> PeerStream {
        PeerStream {
            admission,
            inner,
            conn: Arc::new(conn),
        }
    }
}

/// What each request of a connection carries in its extensions: who is
/// calling, and the connection's activity (requests in flight).
#[derive(Clone)]
pub struct ConnInfo(pub Arc<Conn>, pub Option<Arc<Slot>>);

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConnInfo")
            .field(&self.0)
            .finish_non_exhaustive()
    }
}

impl Connected for PeerStream {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo(
            self.conn.clone(),
            self.admission.as_ref().map(Admission::slot),
        )
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
