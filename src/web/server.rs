//! The HTTP/1.1 accept loop (hyper) shared by the status page and the daemon's `/metrics`:
//! optional TLS with a handshake time limit, one task per connection, until shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Longest TLS handshake before the connection is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Serves `handler` on `listener` (over TLS when `tls` is set) until `shutdown` turns true.
/// `name` labels the log lines.
pub async fn serve<H, F, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (socket, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("{name}: accept failed: {e}");
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = handler(req, peer);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                        _ => return,
                    }
                }
                None => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "{name}: connection ended: {e}");
            }
        });
    }
}
