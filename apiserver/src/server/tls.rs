//! The TLS listener: rustls, optional client certificates, HTTP/1.1 and HTTP/2.
//!
//! [`serve`] accepts TCP connections itself so that every request can see the TLS state:
//! each connection is handshaken with [`tokio_rustls::TlsAcceptor`] (ALPN `h2`, `http/1.1`) and
//! served by `hyper_util`'s auto builder; every request carries an `Arc<`[`ConnectionInfo`]`>`
//! extension with the peer address, the negotiated ALPN protocol and the client certificate
//! chain, which [`crate::server::auth`] turns into an identity.
//!
//! The rustls configuration from [`server_config`] *requests* a client certificate but never
//! requires one (health probes have none) and accepts any certificate whose owner proves
//! possession of its key: whether it is trusted is decided per request by
//! [`crate::server::auth`], so that an untrusted certificate gets a Kubernetes `401` Status
//! rather than a TLS alert, as with kube-apiserver.
//!
//! Shutdown: when the token is cancelled the listener is closed, watch responses end at once
//! (clients re-watch elsewhere or later), other in-flight requests get
//! [`ServeOptions::shutdown_grace`] to finish, and connections still open after that are cut.
//! Handshake failures are logged at debug level and affect only their connection.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::server::auth::{self, AuthenticationMemo};
use crate::server::pki::{CertAndKey, Pki};

/// A TLS handshake not finished within this time is abandoned.
pub const HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// How long in-flight requests may run after shutdown is requested before their connections
/// are cut.
pub const SHUTDOWN_GRACE_SECS: u64 = 10;
/// An HTTP/1.1 request whose headers take longer than this to arrive is dropped.
pub const HEADER_READ_TIMEOUT_SECS: u64 = 30;
/// Pause after an accept error that is not about a single connection (e.g. too many open
/// files), so the loop does not spin.
pub const ACCEPT_ERROR_BACKOFF_MILLIS: u64 = 100;

/// What the TLS layer knows about a request's connection; every request carries it as an
/// `Arc<ConnectionInfo>` extension.
#[derive(Debug)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The ALPN protocol negotiated (`h2` or `http/1.1`), if any.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The client's certificate chain, leaf first; empty when it sent none. Possession of the
    /// leaf's key is proven; trust is not (see [`crate::server::auth`]).
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The authentication result, computed on the connection's first request.
    pub(crate) authentication: OnceLock<AuthenticationMemo>,
}

impl ConnectionInfo {
    /// Connection details for a connection from `remote_addr` presenting `peer_certificates`.
    pub fn new(
        remote_addr: SocketAddr,
        alpn_protocol: Option<Vec<u8>>,
        peer_certificates: Vec<CertificateDer<'static>>,
    ) -> Self {
        ConnectionInfo {
            remote_addr,
            alpn_protocol,
            peer_certificates,
            authentication: OnceLock::new(),
        }
    }
}

/// A failure to build the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The serving certificate or key cannot be read.
    #[error("serving {what}: {reason}")]
    ServingMaterial {
        /// `certificate` or `key`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A client CA certificate cannot be used.
    #[error("client CA certificate: {0}")]
    ClientCa(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls configuration for the embedded server: the PKI's serving certificate, client
/// certificates requested and checked against the PKI's CA by [`crate::server::auth`].
pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with(pki.serving(), std::slice::from_ref(pki.ca_cert_der()))
}

/// The rustls configuration for a given serving certificate and client CA bundle (whose
/// names are sent to clients as acceptable issuers). TLS 1.2 and 1.3, ALPN `h2`, `http/1.1`,
/// the `ring` provider.
pub fn server_config_with(
    serving: &CertAndKey,
    client_cas: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::ServingMaterial {
            what: "certificate",
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::ServingMaterial {
            what: "certificate",
            reason: "no PEM certificate found".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).map_err(|e| {
        TlsError::ServingMaterial {
            what: "key",
            reason: e.to_string(),
        }
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in client_cas {
        roots
            .add(ca.clone())
            .map_err(|e| TlsError::ClientCa(e.to_string()))?;
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(RequestAnyClientCert { webpki }))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Requests a client certificate, never requires one, and accepts any chain at the TLS layer
/// while still verifying the handshake signature (proof of key possession). Chain trust is
/// checked per request by [`crate::server::auth`].
#[derive(Debug)]
struct RequestAnyClientCert {
    webpki: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestAnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Timeouts for [`serve_with_options`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// How long in-flight requests may run after shutdown before their connections are cut.
    pub shutdown_grace: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            shutdown_grace: Duration::from_secs(SHUTDOWN_GRACE_SECS),
            handshake_timeout: Duration::from_secs(HANDSHAKE_TIMEOUT_SECS),
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` is cancelled, with the default
/// [`ServeOptions`]. Returns once every connection has finished or been cut.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: CancellationToken,
) -> io::Result<()> {
    serve_with_options(listener, tls, app, shutdown, ServeOptions::default()).await
}

/// [`serve`] with explicit timeouts.
pub async fn serve_with_options(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> io::Result<()> {
    let local_addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(tls);
    let tracker = TaskTracker::new();
    let cut = CancellationToken::new();
    tracing::debug!(%local_addr, "serving HTTPS");

    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, remote_addr)) => {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(%remote_addr, "cannot set TCP_NODELAY: {e}");
                }
                tracker.spawn(serve_connection(
                    tcp,
                    remote_addr,
                    acceptor.clone(),
                    app.clone(),
                    shutdown.clone(),
                    cut.clone(),
                    options.handshake_timeout,
                ));
            }
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(%local_addr, "accept: {e}");
            }
            Err(e) => {
                tracing::warn!(%local_addr, "accept failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MILLIS)).await;
            }
        }
    }

    drop(listener);
    tracker.close();
    if tokio::time::timeout(options.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            %local_addr,
            connections = tracker.len(),
            grace_secs = options.shutdown_grace.as_secs_f64(),
            "cutting connections still busy after the shutdown grace period"
        );
        cut.cancel();
        tracker.wait().await;
    }
    tracing::debug!(%local_addr, "stopped serving HTTPS");
    Ok(())
}

/// Errors of `accept` that concern only the one connection.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Handshakes and serves one connection until it closes, shutdown completes, or `cut` fires.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    remote_addr: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: CancellationToken,
    cut: CancellationToken,
    handshake_timeout: Duration,
) {
    let stream = tokio::select! {
        () = shutdown.cancelled() => return,
        handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)) => match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote_addr, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote_addr, "TLS handshake timed out");
                return;
            }
        },
    };

    let (_, session) = stream.get_ref();
    let info = Arc::new(ConnectionInfo::new(
        remote_addr,
        session.alpn_protocol().map(<[u8]>::to_vec),
        session
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    ));

    let request_shutdown = shutdown.clone();
    let service = tower::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        let app = app.clone();
        let shutdown = request_shutdown.clone();
        async move {
            let long_running = auth::request_attributes(
                request.method(),
                request.uri().path(),
                request.uri().query(),
            )
            .is_long_running();
            let response = app.oneshot(request).await?;
            Ok::<_, Infallible>(if long_running {
                end_body_at_shutdown(response, shutdown)
            } else {
                response
            })
        }
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(HEADER_READ_TIMEOUT_SECS));
    builder.http2().timer(TokioTimer::new());
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(connection);

    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote_addr, "connection ended: {e}");
            }
            return;
        }
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote_addr, "connection ended during shutdown: {e}");
            }
        }
        () = cut.cancelled() => {
            tracing::debug!(%remote_addr, "connection cut at the end of the shutdown grace period");
        }
    }
}

/// Ends a streaming (watch) response's body when shutdown starts, between two chunks.
fn end_body_at_shutdown(response: Response, shutdown: CancellationToken) -> Response {
    response.map(|body| {
        Body::from_stream(
            body.into_data_stream()
                .take_until(shutdown.cancelled_owned()),
        )
    })
}
