//! The stdio transport's framing and JSON-RPC parsing: rmcp's
//! `AsyncRwTransport` (what `rmcp::transport::stdio()` serves over) reading
//! newline-delimited messages a client sends to a server, from bytes that
//! arrive in arbitrary chunks, with and without a line-length limit.
//!
//! Invariants: no panic; how the bytes are chunked does not change what is
//! received; a line-length limit only drops messages, never alters or adds
//! them; a received message encodes to one line with the same id and method.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rmcp::service::{RoleServer, RxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{AsyncRwTransport, JsonRpcMessageCodec};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::Encoder;

type Msg = RxJsonRpcMessage<RoleServer>;

/// Hands out `data` at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

fn receive_all(data: &[u8], chunk: usize, max_line: Option<usize>) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut t = AsyncRwTransport::<RoleServer, _, _>::new_server(
            Chunked { data, chunk },
            tokio::io::sink(),
        );
        if let Some(n) = max_line {
            t = t.with_max_line_length(n);
        }
        let mut out = Vec::new();
        // Each message needs at least one byte, so this bounds the loop.
        for _ in 0..=data.len() {
            match t.receive().await {
                Some(m) => out.push(serde_json::to_value(&m).expect("serialises")),
                None => break,
            }
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let [split, limit, body @ ..] = data else {
        return;
    };
    let whole = receive_all(body, usize::MAX, None);
    let chunked = receive_all(body, *split as usize + 1, None);
    assert_eq!(whole, chunked, "chunking changed the received messages");

    // A small line-length limit drops messages but keeps the others intact.
    let limited = receive_all(body, *split as usize + 1, Some(*limit as usize * 4));
    let mut rest = whole.iter();
    for m in &limited {
        assert!(rest.any(|w| w == m), "a line-length limit changed {m}");
    }

    // The server's answers go out through the same codec: one line each, which
    // parses back with the same id and method. (Fields rmcp's model does not
    // know may be dropped on the way; after one round the text is stable.)
    for value in whole {
        let once = reencode(&value);
        for key in ["jsonrpc", "id", "method"] {
            assert_eq!(
                once.get(key),
                value.get(key),
                "{key} changed: {value} -> {once}"
            );
        }
        assert_eq!(reencode(&once), once, "not stable after one round: {value}");
    }
});

/// Parse a received message's JSON into the message type, encode it with the
/// transport's codec, and parse the line back.
fn reencode(value: &serde_json::Value) -> serde_json::Value {
    let msg: Msg = serde_json::from_value(value.clone()).expect("own output parses");
    let mut line = BytesMut::new();
    JsonRpcMessageCodec::<Msg>::new()
        .encode(msg, &mut line)
        .expect("encodes");
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "one line per message"
    );
    assert_eq!(line.last(), Some(&b'\n'));
    let again: Msg = serde_json::from_slice(&line[..line.len() - 1]).expect("re-parses");
    serde_json::to_value(&again).expect("serialises")
}
