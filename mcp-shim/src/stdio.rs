//! The MCP stdio transport, with a line limit that answers.
//!
//! rmcp's own stdio transport drops a line longer than its limit and
//! answers nothing, so the client waits for ever. Here every line is read
//! with a bound ([`MAX_MCP_LINE`], below the daemon's message limit so
//! whatever is accepted also fits one gRPC request): a longer line is
//! discarded as it streams in (memory stays bounded), its JSON-RPC `id` is
//! picked out on the way, and the client gets a JSON-RPC error for that id
//! (`-32600`, naming the size and the limit). Otherwise this behaves like
//! rmcp's transport: one JSON message per line, unparsable input ignored,
//! well-formed JSON that is no valid message answered with an error.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use secretctl_proto::client::MAX_MCP_LINE;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// JSON-RPC "Invalid Request".
const INVALID_REQUEST: i64 = -32600;

type Writer = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// Line-delimited JSON-RPC over a reader and a writer (stdin, stdout).
pub struct LineTransport<R> {
    read: BufReader<R>,
    max: usize,
    line: Vec<u8>,
    /// The current line went over the limit: its bytes are counted and
    /// scanned for the id, not kept.
    over: Option<Oversized>,
    write: Writer,
}

/// What is known of a line that is being discarded.
struct Oversized {
    len: usize,
    id: IdScanner,
}

/// Reading stdin and writing stdout.
pub fn stdio() -> LineTransport<tokio::io::Stdin> {
    LineTransport::new(tokio::io::stdin(), tokio::io::stdout(), MAX_MCP_LINE)
}

enum Read {
    Line,
    /// A discarded line ended: its length and id (raw JSON), if found.
    Oversized(usize, Option<String>),
    Eof,
}

impl<R: AsyncRead + Unpin + Send> LineTransport<R> {
    pub fn new(read: R, write: impl AsyncWrite + Send + Unpin + 'static, max: usize) -> Self {
        LineTransport {
            read: BufReader::new(read),
            max,
            line: Vec::new(),
            over: None,
            write: Arc::new(Mutex::new(Box::new(write))),
        }
    }

    /// Reads up to the next newline, never holding more than `max` bytes.
    /// Cancel-safe: all state lives in `self`, and bytes are consumed only
    /// after they were copied or counted.
    async fn read_line(&mut self) -> std::io::Result<Read> {
        loop {
            let available = self.read.fill_buf().await?;
            if available.is_empty() {
                if let Some(o) = self.over.take() {
                    return Ok(Read::Oversized(o.len, o.id.found()));
                }
                return Ok(Read::Eof);
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let chunk = &available[..take];
            if self.over.is_none() && self.line.len() + chunk.len() > self.max {
                let mut id = IdScanner::default();
                id.feed(&self.line);
                self.over = Some(Oversized {
                    len: self.line.len(),
                    id,
                });
                self.line.clear();
            }
            match &mut self.over {
                Some(o) => {
                    o.len += chunk.len();
                    o.id.feed(chunk);
                }
                None => self.line.extend_from_slice(chunk),
            }
            self.read.consume(take);
            if newline.is_some() {
                return Ok(match self.over.take() {
                    Some(o) => Read::Oversized(o.len, o.id.found()),
                    None => Read::Line,
                });
            }
        }
    }

    /// Writes an error answer for `id` (raw JSON; `null` when unknown) on
    /// a task of its own, so a cancelled `receive` never leaves half a line.
    fn answer_error(&self, id: Option<String>, message: String) {
        let id: serde_json::Value = id
            .and_then(|raw| serde_json::from_str(&raw).ok())
            .unwrap_or(serde_json::Value::Null);
        let reply = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": INVALID_REQUEST, "message": message},
        });
        let mut line = reply.to_string().into_bytes();
        line.push(b'\n');
        let write = self.write.clone();
        tokio::spawn(async move {
            let mut w = write.lock().await;
            let _ = w.write_all(&line).await;
            let _ = w.flush().await;
        });
    }

    /// Turns the line read into a message; `None` when there is nothing to
    /// deliver (blank, unparsable, answered with an error).
    fn parse(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut line: &[u8] = &self.line;
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
            Ok(msg) => Some(msg),
            Err(e) => {
                // Only well-formed requests (with an id) are answered:
                // replying to noise could start an error storm, and
                // notifications never get answers.
                match serde_json::from_slice::<serde_json::Value>(line) {
                    Ok(v)
                        if v.get("id")
                            .is_some_and(|id| id.is_number() || id.is_string()) =>
                    {
                        self.answer_error(
                            v.get("id").map(|id| id.to_string()),
                            format!("invalid request: {e}"),
                        );
                    }
                    _ => tracing::debug!("ignoring an unusable incoming line: {e}"),
                }
                None
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<R> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            let mut w = write.lock().await;
            w.write_all(&line).await?;
            w.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.read_line().await {
                Ok(Read::Line) => {
                    let msg = self.parse();
                    self.line.clear();
                    if msg.is_some() {
                        return msg;
                    }
                }
                Ok(Read::Oversized(len, id)) => {
                    tracing::warn!(
                        len,
                        max = self.max,
                        "refused an incoming message over the size limit"
                    );
                    self.answer_error(
                        id,
                        format!(
                            "request of {len} bytes is larger than secretctl-mcp's limit of {} bytes",
                            self.max
                        ),
                    );
                }
                Ok(Read::Eof) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stdin");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.write.lock().await.flush().await
    }
}

/// Finds the top-level `"id"` of a JSON object as it streams past, in
/// constant memory: for answering a message too large to keep.
#[derive(Default)]
struct IdScanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a key.
    expect_key: bool,
    /// Bytes of the key being read (`None`: not reading a key).
    key: Option<Vec<u8>>,
    /// The key just read was `id`.
    id_key: bool,
    /// Raw bytes of the id's value while it is read.
    value: Option<Vec<u8>>,
    found: Option<String>,
    /// The value turned out unusable (nested, too long).
    spoiled: bool,
}

/// Longest id kept.
const MAX_ID: usize = 256;

impl IdScanner {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.found.is_some() {
                return;
            }
            self.step(b);
        }
    }

    fn push_value(&mut self, b: u8) {
        if let Some(v) = &mut self.value {
            if v.len() >= MAX_ID {
                self.spoiled = true;
            } else {
                v.push(b);
            }
        }
    }

    fn end_value(&mut self) {
        if let Some(v) = self.value.take()
            && !self.spoiled
        {
            let text = String::from_utf8_lossy(&v).trim().to_string();
            if let Ok(id) = serde_json::from_str::<serde_json::Value>(&text)
                && (id.is_number() || id.is_string())
            {
                self.found = Some(text);
            }
        }
        self.spoiled = false;
        self.id_key = false;
    }

    fn step(&mut self, b: u8) {
        if self.in_string {
            if self.depth == 1 {
                self.push_value(b);
            }
            if self.escaped {
                self.escaped = false;
                if let Some(k) = &mut self.key {
                    k.push(b);
                }
                return;
            }
            match b {
                b'\\' => self.escaped = true,
                b'"' => {
                    self.in_string = false;
                    if let Some(k) = self.key.take() {
                        self.id_key = k == b"id";
                    }
                }
                _ => {
                    if let Some(k) = &mut self.key
                        && k.len() < 8
                    {
                        k.push(b);
                    }
                }
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 {
                    if self.expect_key {
                        self.expect_key = false;
                        self.key = Some(Vec::new());
                    } else {
                        self.push_value(b);
                    }
                }
            }
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth == 1 && b == b'{' {
                    self.expect_key = true;
                } else if self.depth == 2 && self.value.is_some() {
                    self.spoiled = true;
                }
            }
            b'}' | b']' => {
                if self.depth == 1 {
                    self.end_value();
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b':' if self.depth == 1 && self.id_key => {
                self.value = Some(Vec::new());
            }
            b',' if self.depth == 1 => {
                self.end_value();
                self.expect_key = true;
            }
            _ if self.depth == 1 => self.push_value(b),
            _ => {}
        }
    }

    fn found(self) -> Option<String> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(text: &str) -> Option<String> {
        let mut s = IdScanner::default();
        // Byte by byte and in one go must agree.
        for chunk in text.as_bytes().chunks(3) {
            s.feed(chunk);
        }
        s.found()
    }

    #[test]
    fn finds_the_top_level_id_wherever_it_is() {
        assert_eq!(
            id_of(r#"{"jsonrpc":"2.0","id":7,"method":"x"}"#).as_deref(),
            Some("7")
        );
        assert_eq!(
            id_of(r#"{"params":{"id":1,"a":"\"id\":2"},"id" : "abc" }"#).as_deref(),
            Some("\"abc\"")
        );
        assert_eq!(id_of(r#"{"method":"x","params":{"id":3}}"#), None);
        assert_eq!(id_of(r#"{"id":{"nested":1}}"#), None);
        assert_eq!(id_of(r#"{"id":"a\"b"}"#).as_deref(), Some(r#""a\"b""#));
        assert_eq!(id_of("not json"), None);
    }

    #[tokio::test]
    async fn an_oversized_line_is_answered_and_the_next_one_read() {
        let (mut client, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, client_out) = tokio::io::duplex(1 << 16);
        let mut t = LineTransport::new(server_in, server_out, 100);
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{{\"a\":\"{}\"}},\"id\":42}}\n",
            "x".repeat(1000)
        );
        let ping = "{\"jsonrpc\":\"2.0\",\"id\":43,\"method\":\"ping\"}\n";
        let writer = tokio::spawn(async move {
            client.write_all(big.as_bytes()).await.unwrap();
            client.write_all(ping.as_bytes()).await.unwrap();
            client
        });
        let msg = t.receive().await.expect("the ping after the big line");
        let text = serde_json::to_value(&msg).unwrap();
        assert_eq!(text["id"], 43, "{text}");
        let mut lines = BufReader::new(client_out).lines();
        let reply: serde_json::Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(reply["id"], 42, "{reply}");
        assert_eq!(reply["error"]["code"], INVALID_REQUEST);
        let m = reply["error"]["message"].as_str().unwrap();
        assert!(m.contains("limit of 100 bytes"), "{m}");
        drop(writer.await.unwrap());
        assert!(t.receive().await.is_none(), "EOF ends the session");
    }
}
