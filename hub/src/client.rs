//! The laptop's side of the hub: HTTPS to the pinned certificate, every request
//! signed by the device. Blocking (the core's store is), with timeouts, and
//! bounded answers: nothing the hub sends is trusted before it is checked.

use crate::auth::{self, now_ms};
use crate::wire::{self, Enrol, Invite, NewDevice, Refusal, Register};
use amparo::store::{Store, StoreError};
use amparo::sync::bundle::Vector;
use amparo::sync::hub::{Listed, Transport};
use amparo::sync::identity::Identity;
use amparo::sync::SyncError;
use rand::RngCore;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

/// The largest answer read: a batch, with room to spare.
const MAX_ANSWER: u64 = crate::server::MAX_BATCH as u64 + 1024;

/// Trusts exactly one certificate, by its fingerprint: no authority is needed on
/// a shelter's network, and no other certificate is ever accepted.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// Set when the hub showed another certificate, to tell that from a dead link.
    mismatch: AtomicBool,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if auth::fingerprint(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            self.mismatch.store(true, Ordering::SeqCst);
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    // The handshake is still checked against the pinned certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// What signs one request.
#[derive(Debug, Clone)]
pub struct Signed {
    pub time: i64,
    pub nonce: String,
    pub signature: String,
}

/// A connection to one hub as one device.
pub struct HubClient {
    url: String,
    device: String,
    identity: Identity,
    agent: ureq::Agent,
    pinned: Arc<Pinned>,
    /// An https address, and the pinned certificate in force.
    secure: bool,
}

impl HubClient {
    /// `url` is `https://host:port`; `fingerprint` as printed by the hub.
    pub fn new(url: &str, fingerprint: &str, device: &str, identity: Identity) -> HubClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pinned = Arc::new(Pinned {
            fingerprint: auth::normalise_fingerprint(fingerprint),
            provider: provider.clone(),
            mismatch: AtomicBool::new(false),
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions();
        // Only fails for a provider without TLS 1.2 and 1.3, which ring is not.
        let tls = builder
            .map(|b| b.dangerous().with_custom_certificate_verifier(pinned.clone()).with_no_client_auth())
            .map(Arc::new);
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(60))
            .timeout_write(Duration::from_secs(60));
        // Fail closed: without the pinned configuration (or over plain http) the
        // client would trust any server, so it sends nothing at all.
        let secure = tls.is_ok() && url.trim().to_ascii_lowercase().starts_with("https://");
        if let Ok(tls) = tls {
            agent = agent.tls_config(tls);
        }
        HubClient {
            url: url.trim_end_matches('/').to_string(),
            device: device.to_string(),
            identity,
            agent: agent.build(),
            pinned,
            secure,
        }
    }

    /// The client for this laptop's hub, signing as this laptop.
    pub fn for_store(store: &Store) -> Result<HubClient, StoreError> {
        let settings = store.hub_settings()?.ok_or(SyncError::NoHub)?;
        Ok(HubClient::new(&settings.url, &settings.fingerprint, &store.session().device_id, store.hub_signer()?))
    }

    /// A laptop that joined with a hub invitation enrols at its first chance.
    /// Returns whether it enrolled now.
    pub fn enrol_pending(&self, store: &mut Store) -> Result<bool, StoreError> {
        let Some(token) = store.hub_enrolment()? else { return Ok(false) };
        self.enrol(&token, &store.session().device_code)?;
        store.hub_enrolled()?;
        Ok(true)
    }

    /// Sign a request as this device, now, with a fresh nonce.
    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> Signed {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        self.sign_at(method, path, body, now_ms(), &hex::encode(raw))
    }

    /// Sign a request with the time and nonce given (a test's replays and stale clocks).
    pub fn sign_at(&self, method: &str, path: &str, body: &[u8], time: i64, nonce: &str) -> Signed {
        let signature = self.identity.sign(&auth::message(method, path, body, time, nonce));
        Signed { time, nonce: nonce.to_string(), signature: hex::encode(signature) }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, SyncError> {
        let signed = self.sign(method, path, body);
        self.send(method, path, body, &signed)
    }

    /// Send a request with its signature, and read the answer (bounded).
    pub fn send(&self, method: &str, path: &str, body: &[u8], signed: &Signed) -> Result<Vec<u8>, SyncError> {
        if !self.secure {
            return Err(SyncError::HubAddress { url: self.url.clone() });
        }
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.url))
            .set(auth::DEVICE, &self.device)
            .set(auth::TIME, &signed.time.to_string())
            .set(auth::NONCE, &signed.nonce)
            .set(auth::SIGNATURE, &signed.signature);
        let answer = if method == "GET" { request.call() } else { request.send_bytes(body) };
        match answer {
            Ok(r) => {
                let mut out = Vec::new();
                r.into_reader().take(MAX_ANSWER).read_to_end(&mut out).map_err(|_| self.unreachable())?;
                Ok(out)
            }
            Err(ureq::Error::Status(_, r)) => {
                let mut out = Vec::new();
                let _ = r.into_reader().take(4096).read_to_end(&mut out);
                let refusal = serde_json::from_slice::<wire::Refused>(&out).map(|r| r.refused).ok();
                Err(refused(refusal))
            }
            Err(ureq::Error::Transport(_)) if self.pinned.mismatch.load(Ordering::SeqCst) => {
                Err(SyncError::HubCertificate { url: self.url.clone() })
            }
            Err(ureq::Error::Transport(_)) => Err(self.unreachable()),
        }
    }

    fn unreachable(&self) -> SyncError {
        SyncError::HubUnreachable { url: self.url.clone() }
    }

    fn new_device(&self, code: &str) -> NewDevice {
        NewDevice {
            id: self.device.clone(),
            code: code.to_string(),
            sign_key: self.identity.sign_key(),
            kx_key: self.identity.kx_key(),
        }
    }

    /// Register the organisation with the hub's setup code, as its first device.
    pub fn register(&self, setup_code: &str, org: &str, device_code: &str) -> Result<(), SyncError> {
        let body =
            Register { setup_code: setup_code.to_string(), org: org.to_string(), device: self.new_device(device_code) };
        self.call("POST", "/v1/orgs", &to_json(&body)?).map(|_| ())
    }

    /// Enrol this laptop with an invitation's token.
    pub fn enrol(&self, token: &str, device_code: &str) -> Result<(), SyncError> {
        let body = Enrol { token: token.to_string(), device: self.new_device(device_code) };
        match self.call("POST", "/v1/devices", &to_json(&body)?) {
            Err(SyncError::HubRefused { reason }) if reason == "device_code_taken" => {
                Err(SyncError::HubDeviceCode { code: device_code.to_string() })
            }
            other => other.map(|_| ()),
        }
    }

    /// Tell the hub of a new token (only its hash), valid for `lifetime_s` seconds.
    pub fn invite(&self, token: &str, lifetime_s: i64) -> Result<(), SyncError> {
        let body = Invite { token_hash: crate::store::sha256_hex(token.trim().as_bytes()), lifetime_s };
        self.call("POST", "/v1/invitations", &to_json(&body)?).map(|_| ())
    }

    pub fn devices(&self) -> Result<Vec<crate::store::Device>, SyncError> {
        from_json(&self.call("GET", "/v1/devices", &[])?)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, SyncError> {
    serde_json::to_vec(v).map_err(|_| SyncError::Damaged)
}

/// An answer from the hub, checked: anything else than what was asked is damage.
fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SyncError> {
    serde_json::from_slice(bytes).map_err(|_| SyncError::Damaged)
}

fn refused(r: Option<Refusal>) -> SyncError {
    match r {
        Some(Refusal::Revoked) => SyncError::HubRevoked,
        Some(Refusal::SetupCode) => SyncError::HubSetupCode,
        Some(Refusal::TokenUnknown | Refusal::TokenExpired | Refusal::TokenUsed) => SyncError::HubToken,
        Some(other) => SyncError::HubRefused {
            reason: serde_json::to_value(other).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        },
        None => SyncError::HubRefused { reason: "unknown".into() },
    }
}

impl Transport for HubClient {
    fn push(&mut self, number: i64, bytes: &[u8]) -> Result<(), SyncError> {
        self.call("PUT", &format!("/v1/batches/{}/{number}", self.device), bytes).map(|_| ())
    }

    fn list(&mut self, since: &Vector, limit: usize) -> Result<Vec<Listed>, SyncError> {
        let path = format!("/v1/batches?since={}&limit={limit}", wire::format_vector(since));
        let page: Vec<wire::Listed> = from_json(&self.call("GET", &path, &[])?)?;
        if page.len() > limit {
            return Err(SyncError::Damaged);
        }
        Ok(page.into_iter().map(|l| Listed { device: l.device, number: l.number, sha256: l.sha256 }).collect())
    }

    fn fetch(&mut self, device: &str, number: i64) -> Result<Vec<u8>, SyncError> {
        self.call("GET", &format!("/v1/batches/{device}/{number}"), &[])
    }

    fn fetch_many(&mut self, wanted: &[Listed]) -> Result<Vec<Vec<u8>>, SyncError> {
        let asked: Vec<wire::Wanted> = wanted
            .iter()
            .take(crate::server::MAX_PAGE)
            .map(|l| wire::Wanted { device: l.device.clone(), number: l.number })
            .collect();
        let answer = self.call("POST", "/v1/batches/fetch", &to_json(&asked)?)?;
        // Frames of a u32 length and that many bytes, no more than asked, none cut.
        let mut out = Vec::new();
        let mut rest = answer.as_slice();
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<4>().ok_or(SyncError::Damaged)?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > tail.len() || out.len() == asked.len() {
                return Err(SyncError::Damaged);
            }
            out.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        if out.is_empty() {
            return Err(SyncError::Damaged);
        }
        Ok(out)
    }

    fn epochs(&mut self, since: u32) -> Result<Vec<Vec<u8>>, SyncError> {
        let listed: Vec<wire::Epoch> = from_json(&self.call("GET", &format!("/v1/epochs?since={since}"), &[])?)?;
        let mut out = Vec::with_capacity(listed.len());
        // In order, none missing: what the laptop takes in one after another.
        for (i, e) in listed.into_iter().enumerate() {
            if e.number != i64::from(since) + 1 + i as i64 {
                return Err(SyncError::Damaged);
            }
            out.push(hex::decode(e.record).map_err(|_| SyncError::Damaged)?);
        }
        Ok(out)
    }

    fn put_epoch(&mut self, number: u32, bytes: &[u8]) -> Result<(), SyncError> {
        self.call("PUT", &format!("/v1/epochs/{number}"), bytes).map(|_| ())
    }

    fn revoke(&mut self, device: &str) -> Result<i64, SyncError> {
        let answer: wire::RevokedAnswer =
            from_json(&self.call("POST", &format!("/v1/devices/{device}/revoke"), &[])?)?;
        Ok(answer.last_batch)
    }
}
