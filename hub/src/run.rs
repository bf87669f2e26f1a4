//! Starting a hub: its storage, its certificate (made on first start and kept in
//! the data folder), the one-time setup code, and the TLS accept loop.

use crate::store::{sha256_hex, HubStore, PostgresStore, SqliteStore, StoreError};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot use the data folder {path}: {source}. Check that it exists and this user may write to it.")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("the hub's certificate in {path} is damaged. Restore it from the backup: laptops trust only that one.")]
    Certificate { path: PathBuf },
    #[error("cannot listen on {addr}: {source}. Is another hub running there?")]
    Listen { addr: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The hub's storage: PostgreSQL when a URL is given, else SQLite in the data folder.
pub fn open_store(data: &Path, database: Option<&str>) -> Result<Arc<dyn HubStore>, RunError> {
    prepare_folder(data)?;
    Ok(match database {
        Some(url) => Arc::new(PostgresStore::connect(url)?),
        None => Arc::new(SqliteStore::open(data)?),
    })
}

fn prepare_folder(data: &Path) -> Result<(), RunError> {
    let err = |source| RunError::Folder { path: data.to_path_buf(), source };
    std::fs::create_dir_all(data).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// The certificate and its private key (DER), made on first start.
pub struct Certificate {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

const CERT_FILE: &str = "hub-cert.der";
const KEY_FILE: &str = "hub-key.der";

/// Load the hub's certificate, or make one (self-signed, valid for ten years: the
/// laptops pin its fingerprint rather than trust an authority).
pub fn certificate(data: &Path) -> Result<Certificate, RunError> {
    let (cert_path, key_path) = (data.join(CERT_FILE), data.join(KEY_FILE));
    let folder = |source| RunError::Folder { path: data.to_path_buf(), source };
    if cert_path.exists() || key_path.exists() {
        let cert = std::fs::read(&cert_path).map_err(folder)?;
        let key = std::fs::read(&key_path).map_err(folder)?;
        let ok = rustls::pki_types::PrivateKeyDer::try_from(key.clone()).is_ok() && !cert.is_empty();
        if !ok {
            return Err(RunError::Certificate { path: cert_path });
        }
        return Ok(Certificate { cert, key });
    }
    let mut params = rcgen::CertificateParams::new(vec!["amparo-hub".to_string()])
        .map_err(|_| RunError::Certificate { path: cert_path.clone() })?;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let key = rcgen::KeyPair::generate().map_err(|_| RunError::Certificate { path: cert_path.clone() })?;
    let cert = params.self_signed(&key).map_err(|_| RunError::Certificate { path: cert_path.clone() })?;
    let made = Certificate { cert: cert.der().to_vec(), key: key.serialize_der() };
    write_private(&key_path, &made.key).map_err(folder)?;
    write_private(&cert_path, &made.cert).map_err(folder)?;
    Ok(made)
}

/// Write a file whole or not at all, readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A new one-time setup code, replacing any earlier unused one. Only its hash is
/// stored: the code itself is printed once.
pub fn new_setup_code(store: &dyn HubStore) -> Result<String, StoreError> {
    let mut raw = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    // Groups of four letters and digits without look-alikes, easy to read aloud.
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let letters: String = raw.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    let code = format!("{}-{}-{}", &letters[0..4], &letters[4..8], &letters[8..10]);
    store.set_meta("setup_code", &sha256_hex(code.as_bytes()))?;
    Ok(code)
}

/// The TLS configuration of the hub's certificate (TLS 1.2 and 1.3, ring).
pub fn tls(cert: &Certificate) -> Result<Arc<rustls::ServerConfig>, RunError> {
    let bad = || RunError::Certificate { path: PathBuf::from(CERT_FILE) };
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key.clone()).map_err(|_| bad())?;
    let chain = vec![rustls::pki_types::CertificateDer::from(cert.cert.clone())];
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|_| bad())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|_| bad())?;
    Ok(Arc::new(config))
}

/// Accept connections until the process ends. Each connection is served on its
/// own task; a failed handshake (say a laptop that does not trust this
/// certificate) ends only that connection.
pub async fn serve(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>, app: axum::Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await;
            let Ok(Ok(stream)) = handshake else { return };
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                tower::ServiceExt::oneshot(app.clone(), req)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A hub serving on its own thread: what the command line and the app's tests
/// start on loopback, the same code as `amparo-hub serve`.
pub struct Background {
    pub url: String,
    pub fingerprint: String,
    pub setup_code: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Start on `listen` (say `127.0.0.1:0` for any free port).
    pub fn start(data: &Path, database: Option<&str>, listen: &str) -> Result<Background, RunError> {
        let store = open_store(data, database)?;
        let cert = certificate(data)?;
        let tls = tls(&cert)?;
        let setup_code = if store.stats()?.orgs == 0 { Some(new_setup_code(store.as_ref())?) } else { None };
        let err = |source| RunError::Listen { addr: listen.to_string(), source };
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(err)?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(listen)).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let app = crate::server::router(crate::server::Hub { store });
        let thread = std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    () = serve(listener, tls, app) => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(Background {
            url: format!("https://{addr}"),
            fingerprint: crate::auth::fingerprint(&cert.cert),
            setup_code,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
