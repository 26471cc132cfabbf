//! A small HTTP/1 server that turns each request into a `lambda_http::Request`, runs the shared
//! handler, and writes its `lambda_http` response back: API Gateway's job, done locally.

use bytes::Bytes;
use http_api::{App, Function};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use std::convert::Infallible;
use std::future::Future;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Serves until `shutdown` resolves; connections in flight finish on their own.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "accept failed");
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                info!(error = %e, "connection closed with an error");
            }
        });
    }
}

async fn answer(app: &App, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return hyper::Response::builder()
                .status(413)
                .header("content-type", "application/problem+json")
                .body(Full::new(Bytes::from_static(
                    br#"{"type":"about:blank","title":"Payload Too Large","status":413,"detail":"request body too large"}"#,
                )))
                .expect("static response");
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let request = http::Request::from_parts(parts, body);
    let response = http_api::handle(app, Function::All, request).await;
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}
