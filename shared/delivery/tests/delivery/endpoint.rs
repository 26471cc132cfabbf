//! A customer's webhook endpoint on a random loopback port: it records what it was sent and
//! answers as the test configured it. HTTP/1.1 over a plain TcpListener, one request per
//! connection, so a test controls exactly when and how much of an answer is written.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the endpoint answers every request.
#[derive(Clone)]
pub enum Reply {
    /// A whole answer at once.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// A 500 announcing `total` bytes of body, of which `first` are written at once and the
    /// rest 1 KiB every 100 ms (about ten seconds for 100 KB).
    Trickle { total: usize, first: usize },
    /// Reads the request and never answers.
    Silence,
    /// Writes a plain-text HTTP answer as soon as a connection opens, without reading: what a
    /// TLS client sees from a server that does not speak TLS.
    Plaintext,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }

    pub fn with_body(mut self, text: &str) -> Self {
        if let Reply::Answer { body, .. } = &mut self {
            *body = text.as_bytes().to_vec();
        }
        self
    }
}

/// One request as the endpoint read it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The value of the only header of that name; panics when it is missing or repeated.
    pub fn header(&self, name: &str) -> &str {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(values.len(), 1, "header {name}: {values:?}");
        values[0]
    }
}

#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<Received>>,
    /// Set when a trickled body was written to its end (the client waited for all of it).
    trickle_finished: AtomicBool,
}

pub struct Endpoint {
    addr: SocketAddr,
    seen: Arc<Seen>,
    server: JoinHandle<()>,
}

impl Endpoint {
    pub async fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let server = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    seen.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, reply.clone(), seen.clone()));
                }
            }
        });
        Endpoint { addr, seen, server }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.seen.requests.lock().unwrap().clone()
    }

    pub fn trickle_finished(&self) -> bool {
        self.seen.trickle_finished.load(Ordering::SeqCst)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(mut stream: TcpStream, reply: Reply, seen: Arc<Seen>) {
    if let Reply::Plaintext = reply {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        let _ = stream.shutdown().await;
        return;
    }
    let Some(received) = read_request(&mut stream).await else {
        return;
    };
    seen.requests.lock().unwrap().push(received);
    match reply {
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
        Reply::Trickle { total, first } => {
            let head = format!("HTTP/1.1 500 X\r\ncontent-length: {total}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            if stream.write_all(&vec![b'x'; first]).await.is_err() {
                return;
            }
            let mut written = first;
            while written < total {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let piece = (total - written).min(1024);
                if stream.write_all(&vec![b'x'; piece]).await.is_err() {
                    return;
                }
                written += piece;
            }
            seen.trickle_finished.store(true, Ordering::SeqCst);
        }
        Reply::Plaintext => {}
        Reply::Silence => {
            // Hold the connection open, answering nothing, until the client gives up.
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte).await;
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}
