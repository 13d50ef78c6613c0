//! Sending one request under its function's policy: the `wasi:http` hook. In order: a slot
//! among the function's requests in flight, the target against the allow-list, DNS
//! resolution and every resolved address against the internal ranges, then a connection to
//! exactly the checked address (never resolved again, so a name cannot change its answer
//! between the check and the connection), TLS for `https`, and the response under the
//! timeout and the size cap. Redirects are never followed here: a guest that follows one
//! sends a new request, which passes all of this again.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::state::{Gate, Slot};
use super::{HttpPolicy, HttpRefusal};

/// What the hook's future answers with.
type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for Gate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let outbound = self.outbound.clone();
        // Taken now, in the guest's call, so that a flood is refused before any task runs.
        let slot = outbound.admit();
        Box::new(async move {
            let policy = outbound.policy();
            let Some(slot) = slot else {
                return Err(refuse(HttpRefusal::TooManyRequests {
                    limit: policy.limits.max_in_flight,
                }));
            };
            let response = send(policy, request, slot).await.map_err(|refusal| {
                tracing::debug!(%refusal, "outgoing request refused");
                refuse(refusal)
            })?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// A refusal as `wasi:http` carries it to the guest: `internal-error` with the named message.
fn refuse(refusal: HttpRefusal) -> Error {
    Error::InternalError(Some(refusal.to_string()))
}

async fn send(
    policy: &HttpPolicy,
    mut request: http::Request<WasiBody>,
    slot: Slot,
) -> Result<http::Response<WasiBody>, HttpRefusal> {
    let uri = request.uri().clone();
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let tls = scheme == "https";
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    policy.check_target(&scheme, &host, port)?;
    let shown = match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    };
    let timeout = policy.limits.timeout;
    let timed_out = || HttpRefusal::Timeout {
        host: shown.clone(),
        timeout,
    };
    let started = Instant::now();
    let left = |started: Instant| timeout.saturating_sub(started.elapsed());
    let addresses = tokio::time::timeout(timeout, resolve(&host, port))
        .await
        .map_err(|_| timed_out())??;
    let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
    policy.check_addresses(&host, port, &ips)?;
    let stream = tokio::time::timeout(left(started), connect(&addresses, &shown))
        .await
        .map_err(|_| timed_out())??;
    let stream: Box<dyn Stream> = if tls {
        let secured = tokio::time::timeout(left(started), secure(&host, stream, &shown))
            .await
            .map_err(|_| timed_out())??;
        Box::new(secured)
    } else {
        Box::new(stream)
    };
    let connect_error = |e: hyper::Error| HttpRefusal::Connect {
        host: shown.clone(),
        reason: e.to_string(),
    };
    let (mut sender, connection) = tokio::time::timeout(
        left(started),
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(connect_error)?;
    tokio::spawn(connection);
    // The request line carries the path only (the authority is in the Host header).
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().unwrap_or_default();
    let response = tokio::time::timeout(left(started), sender.send_request(request))
        .await
        .map_err(|_| timed_out())?
        .map_err(connect_error)?;
    let limit = policy.limits.max_response_bytes;
    let too_large = HttpRefusal::ResponseTooLarge {
        host: shown.clone(),
        limit,
    };
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    Ok(response.map(|incoming| {
        Capped {
            incoming,
            read: 0,
            limit,
            too_large,
            idle: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            timed_out: timed_out(),
            _slot: slot,
        }
        .boxed_unsync()
    }))
}

/// The addresses of `host`: itself when it is an IP address, else the resolver's answer.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, HttpRefusal> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let dns = |reason: String| HttpRefusal::Dns {
        host: host.to_string(),
        reason,
    };
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| dns(e.to_string()))?
        .collect();
    if found.is_empty() {
        return Err(dns("no addresses".to_string()));
    }
    Ok(found)
}

/// A connection to the first of `addresses` that accepts one.
async fn connect(addresses: &[SocketAddr], shown: &str) -> Result<TcpStream, HttpRefusal> {
    let mut last = String::from("no address");
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = format!("{address}: {e}"),
        }
    }
    Err(HttpRefusal::Connect {
        host: shown.to_string(),
        reason: last,
    })
}

/// TLS over `stream`, verifying `host`'s certificate against the webpki (Mozilla) roots.
async fn secure(
    host: &str,
    stream: TcpStream,
    shown: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpRefusal> {
    let failed = |reason: String| HttpRefusal::Connect {
        host: shown.to_string(),
        reason,
    };
    let config = tls_config().map_err(|e| failed(e.clone()))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| failed(format!("not a TLS server name: {e}")))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| failed(format!("TLS: {e}")))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, &'static String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(Arc::clone)
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A response body under the size cap and the idle timeout; holds the request's slot until
/// the body is read or dropped.
struct Capped {
    incoming: hyper::body::Incoming,
    read: usize,
    limit: usize,
    too_large: HttpRefusal,
    idle: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    timed_out: HttpRefusal,
    _slot: Slot,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.read += frame.data_ref().map_or(0, Bytes::len);
                if this.read > this.limit {
                    return Poll::Ready(Some(Err(refuse(this.too_large.clone()))));
                }
                let next = tokio::time::Instant::now() + this.timeout;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::Hyper(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(refuse(this.timed_out.clone())))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
