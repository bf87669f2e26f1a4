//! The hub's HTTPS API (`docs/hub.md`): axum on tokio, behind rustls with the
//! hub's own certificate. Every handler checks who signed the request before it
//! reads anything, and calls the store (blocking, one transaction a call) off the
//! async threads. An answer is sent only after the store committed.

use crate::auth::{self, now_ms};
use crate::store::{sha256_hex, BatchInfo, Device, HubStore, Put, StoreError, Vector};
use crate::wire::{self, Enrol, Invite, Listed, Refusal, Register};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::Arc;

/// The largest batch the hub takes: a laptop splits its changes into batches far
/// below this, so anything near it is not one of ours.
pub const MAX_BATCH: usize = 32 << 20;
/// The largest page of a listing.
pub const MAX_PAGE: usize = 1000;
/// Most bytes of batches in one answer to a fetch of several (at least one
/// batch is always sent, whatever its size).
pub const MAX_BULK: usize = 16 << 20;
/// An invitation lives at most this long, whatever the laptop asks.
const MAX_INVITATION_S: i64 = 30 * 24 * 3600;

#[derive(Clone)]
pub struct Hub {
    pub store: Arc<dyn HubStore>,
}

/// Why a request was refused: what the laptop is told (a code it translates, never
/// a name) and the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("refused: {0:?}")]
    Refused(StatusCode, Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refuse(status: StatusCode, code: Refusal) -> ApiError {
    ApiError::Refused(status, code)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            ApiError::Refused(s, c) => (s, c),
            ApiError::Store(e) => match e {
                StoreError::SetupCode => (StatusCode::FORBIDDEN, Refusal::SetupCode),
                StoreError::TokenUnknown => (StatusCode::FORBIDDEN, Refusal::TokenUnknown),
                StoreError::TokenExpired => (StatusCode::FORBIDDEN, Refusal::TokenExpired),
                StoreError::TokenUsed => (StatusCode::FORBIDDEN, Refusal::TokenUsed),
                StoreError::DeviceCodeTaken { .. } => (StatusCode::CONFLICT, Refusal::DeviceCodeTaken),
                StoreError::DeviceTaken => (StatusCode::CONFLICT, Refusal::DeviceTaken),
                StoreError::BatchConflict { .. } => (StatusCode::CONFLICT, Refusal::BatchConflict),
                StoreError::OutOfOrder { .. } => (StatusCode::CONFLICT, Refusal::OutOfOrder),
                // The reason stays in the hub's log; the laptop is told to try later.
                StoreError::Backend(_) | StoreError::Damaged { .. } => {
                    eprintln!("amparo-hub: storage failed: {e}");
                    (StatusCode::SERVICE_UNAVAILABLE, Refusal::Unavailable)
                }
            },
        };
        (status, Json(wire::Refused { refused: code })).into_response()
    }
}

type Answer<T> = Result<T, ApiError>;

/// Run a store call off the async threads.
async fn blocking<T: Send + 'static>(
    hub: &Hub,
    f: impl FnOnce(&dyn HubStore) -> Result<T, StoreError> + Send + 'static,
) -> Answer<T> {
    let store = hub.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, Refusal::Unavailable)),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Answer<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).ok_or(refuse(StatusCode::UNAUTHORIZED, Refusal::Unsigned))
}

/// How often a device's "last seen" is written, at most.
const SEEN_EVERY_S: i64 = 60;

/// The signature, timestamp and nonce of a request, checked against `sign_key`.
/// The nonce is spent last, so a forged request cannot use up a real one.
async fn check_signed(
    hub: &Hub,
    device: &str,
    sign_key: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer<()> {
    let time: i64 =
        header(headers, auth::TIME)?.parse().map_err(|_| refuse(StatusCode::UNAUTHORIZED, Refusal::Unsigned))?;
    let nonce = header(headers, auth::NONCE)?.to_string();
    let signature = hex::decode(header(headers, auth::SIGNATURE)?)
        .map_err(|_| refuse(StatusCode::UNAUTHORIZED, Refusal::Unsigned))?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse(StatusCode::UNAUTHORIZED, Refusal::Unsigned));
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let message = auth::message(method.as_str(), path, body, time, &nonce);
    if !amparo::sync::identity::verify(sign_key, &message, &signature) {
        return Err(refuse(StatusCode::UNAUTHORIZED, Refusal::BadSignature));
    }
    let now = now_ms();
    if (now - time).abs() > auth::MAX_SKEW_MS {
        return Err(refuse(StatusCode::UNAUTHORIZED, Refusal::Clock));
    }
    let device = device.to_string();
    let fresh = blocking(hub, move |s| s.use_nonce(&device, &nonce, now, now - auth::NONCE_MEMORY_MS)).await?;
    if !fresh {
        return Err(refuse(StatusCode::UNAUTHORIZED, Refusal::Replayed));
    }
    Ok(())
}

/// The enrolled, unrevoked device that signed this request.
async fn signed_by(hub: &Hub, request: &Whole) -> Answer<Device> {
    let id = header(&request.headers, auth::DEVICE)?.to_string();
    let lookup = id.clone();
    let device = blocking(hub, move |s| s.device(&lookup))
        .await?
        .ok_or(refuse(StatusCode::UNAUTHORIZED, Refusal::UnknownDevice))?;
    request.signed_with(hub, &id, &device.sign_key).await?;
    if device.revoked_at.is_some() {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::Revoked));
    }
    // "Last seen" is for people, to the minute: not a write for every request.
    let now = now_ms() / 1000;
    if device.last_seen.is_none_or(|t| now - t >= SEEN_EVERY_S) {
        blocking(hub, move |s| s.seen(&id, now)).await?;
    }
    Ok(device)
}

/// A request as it came, its body read (bounded by the router's limit): what
/// registering and enrolling check against the key they bring.
pub struct Whole {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<Hub> for Whole {
    type Rejection = ApiError;

    async fn from_request(req: Request, hub: &Hub) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let (method, uri, headers) = (parts.method.clone(), parts.uri.clone(), parts.headers.clone());
        let body = Bytes::from_request(Request::from_parts(parts, body), hub)
            .await
            .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, Refusal::Malformed))?;
        Ok(Whole { method, uri, headers, body })
    }
}

impl Whole {
    /// Signed by `sign_key`, for device `id`, now, and not seen before.
    async fn signed_with(&self, hub: &Hub, id: &str, sign_key: &str) -> Answer<()> {
        check_signed(hub, id, sign_key, &self.method, &self.uri, &self.headers, &self.body).await
    }
}

/// A request signed by an enrolled, unrevoked device, with its body: what every
/// handler after enrolment takes, so that none can forget the check.
pub struct Signed {
    pub device: Device,
    pub body: Bytes,
}

impl FromRequest<Hub> for Signed {
    type Rejection = ApiError;

    async fn from_request(req: Request, hub: &Hub) -> Result<Self, Self::Rejection> {
        let whole = Whole::from_request(req, hub).await?;
        let device = signed_by(hub, &whole).await?;
        Ok(Signed { device, body: whole.body })
    }
}

/// A new device's own keys and code, checked before they are stored.
fn checked_device(d: &wire::NewDevice, org: &str, admin: bool) -> Answer<Device> {
    let bad = || refuse(StatusCode::BAD_REQUEST, Refusal::Malformed);
    let id_ok = |s: &str| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let key_ok = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !id_ok(&d.id) || !id_ok(&d.code) || !key_ok(&d.sign_key) || !key_ok(&d.kx_key) {
        return Err(bad());
    }
    if amparo::sync::identity::verifying_key(&d.sign_key).is_none() {
        return Err(bad());
    }
    Ok(Device {
        id: d.id.clone(),
        org: org.to_string(),
        code: d.code.clone(),
        sign_key: d.sign_key.clone(),
        kx_key: d.kx_key.clone(),
        admin,
        enrolled_at: now_ms() / 1000,
        last_seen: None,
        revoked_at: None,
    })
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Answer<T> {
    serde_json::from_slice(body).map_err(|_| refuse(StatusCode::BAD_REQUEST, Refusal::Malformed))
}

/// `POST /v1/orgs`: the setup code, the organisation and its first device, signed
/// by that device's new key (so the key is its own).
async fn register(State(hub): State<Hub>, request: Whole) -> Answer<StatusCode> {
    let r: Register = json(&request.body)?;
    if r.org.is_empty() || r.org.len() > 64 || r.setup_code.len() > 128 {
        return Err(refuse(StatusCode::BAD_REQUEST, Refusal::Malformed));
    }
    let device = checked_device(&r.device, &r.org, true)?;
    request.signed_with(&hub, &device.id, &device.sign_key).await?;
    let setup_hash = sha256_hex(r.setup_code.trim().as_bytes());
    blocking(&hub, move |s| s.register_org(&setup_hash, &r.org, &device)).await?;
    Ok(StatusCode::CREATED)
}

/// `POST /v1/invitations` (administrators): remember a token's hash for a while.
async fn invite(State(hub): State<Hub>, Signed { device: me, body }: Signed) -> Answer<StatusCode> {
    if !me.admin {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::NotAdmin));
    }
    let i: Invite = json(&body)?;
    if i.token_hash.len() != 64 || !(1..=MAX_INVITATION_S).contains(&i.lifetime_s) {
        return Err(refuse(StatusCode::BAD_REQUEST, Refusal::Malformed));
    }
    let expires = now_ms() / 1000 + i.lifetime_s;
    blocking(&hub, move |s| s.add_invitation(&me.org, &i.token_hash, &me.id, expires)).await?;
    Ok(StatusCode::CREATED)
}

/// `POST /v1/devices`: enrol with a token, signed by the new device's key.
async fn enrol(State(hub): State<Hub>, request: Whole) -> Answer<StatusCode> {
    let e: Enrol = json(&request.body)?;
    let device = checked_device(&e.device, "", false)?;
    request.signed_with(&hub, &device.id, &device.sign_key).await?;
    let token_hash = sha256_hex(e.token.trim().as_bytes());
    let now = now_ms() / 1000;
    blocking(&hub, move |s| s.enrol(&token_hash, &device, now)).await?;
    Ok(StatusCode::CREATED)
}

/// `GET /v1/devices`: the organisation's devices (codes, dates; no names).
async fn devices(State(hub): State<Hub>, Signed { device: me, .. }: Signed) -> Answer<Json<Vec<Device>>> {
    Ok(Json(blocking(&hub, move |s| s.devices(&me.org)).await?))
}

/// `POST /v1/devices/{id}/revoke` (administrators): refused from now on.
async fn revoke(
    State(hub): State<Hub>,
    Path(id): Path<String>,
    Signed { device: me, .. }: Signed,
) -> Answer<Json<wire::RevokedAnswer>> {
    if !me.admin {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::NotAdmin));
    }
    let now = now_ms() / 1000;
    let org = me.org.clone();
    let (found, vector) = blocking(&hub, move |s| {
        let found = s.revoke(&org, &id, now)?;
        Ok((found, s.vector(&org)?.get(&id).copied().unwrap_or(0)))
    })
    .await?;
    if found {
        Ok(Json(wire::RevokedAnswer { last_batch: vector }))
    } else {
        Err(refuse(StatusCode::NOT_FOUND, Refusal::UnknownDevice))
    }
}

#[derive(serde::Deserialize)]
struct EpochsSince {
    #[serde(default)]
    since: i64,
}

/// `GET /v1/epochs?since=N`: the key epoch records above N, in order.
async fn epochs(
    State(hub): State<Hub>,
    Query(q): Query<EpochsSince>,
    Signed { device: me, .. }: Signed,
) -> Answer<Json<Vec<wire::Epoch>>> {
    let all = blocking(&hub, move |s| s.epochs(&me.org)).await?;
    Ok(Json(
        all.into_iter()
            .filter(|(n, _)| *n > q.since)
            .map(|(number, bytes)| wire::Epoch { number, record: hex::encode(bytes) })
            .collect(),
    ))
}

/// `PUT /v1/epochs/{number}` (administrators): a key epoch record signed by the
/// requesting device for its own organisation, numbered after the last one held.
async fn put_epoch(
    State(hub): State<Hub>,
    Path(number): Path<i64>,
    Signed { device: me, body }: Signed,
) -> Answer<StatusCode> {
    if !me.admin {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::NotAdmin));
    }
    let r = amparo::sync::epoch::read(&body).map_err(|_| refuse(StatusCode::BAD_REQUEST, Refusal::BadBatch))?;
    if r.maker != me.id || r.sign_key != me.sign_key || r.org != me.org || i64::from(r.number) != number {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::BadBatch));
    }
    let now = now_ms() / 1000;
    let put = blocking(&hub, move |s| s.put_epoch(&me.org, number, &body, now)).await?;
    Ok(match put {
        Put::Stored => StatusCode::CREATED,
        Put::AlreadyHeld => StatusCode::OK,
    })
}

/// `GET /v1/vector`: per device of the organisation, its last batch held.
async fn vector(State(hub): State<Hub>, Signed { device: me, .. }: Signed) -> Answer<Json<Vector>> {
    Ok(Json(blocking(&hub, move |s| s.vector(&me.org)).await?))
}

/// `PUT /v1/batches/{device}/{number}`: a batch of the signing device's own, whose
/// signature, organisation, signer key and number agree with the request.
async fn push(
    State(hub): State<Hub>,
    Path((device, number)): Path<(String, i64)>,
    Signed { device: me, body }: Signed,
) -> Answer<StatusCode> {
    if device != me.id {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::NotYours));
    }
    let (h, _) =
        amparo::sync::bundle::read_signed(&body).map_err(|_| refuse(StatusCode::BAD_REQUEST, Refusal::BadBatch))?;
    let own_only = h.changes.keys().chain(h.audit.keys()).all(|d| *d == me.id);
    if h.device != me.id || h.sign_key != me.sign_key || h.org != me.org || h.batch != number || number < 1 || !own_only
    {
        return Err(refuse(StatusCode::FORBIDDEN, Refusal::BadBatch));
    }
    let info = BatchInfo {
        device: me.id.clone(),
        number,
        epoch: i64::from(h.epoch),
        sha256: sha256_hex(&body),
        len: body.len() as i64,
    };
    let now = now_ms() / 1000;
    let put = blocking(&hub, move |s| s.put_batch(&me.org, &info, &body, now)).await?;
    Ok(match put {
        Put::Stored => StatusCode::CREATED,
        Put::AlreadyHeld => StatusCode::OK,
    })
}

#[derive(serde::Deserialize)]
struct Since {
    #[serde(default)]
    since: String,
    limit: Option<usize>,
}

/// `GET /v1/batches?since=<device>:<n>,…&limit=N`: what the laptop lacks.
async fn list(
    State(hub): State<Hub>,
    Query(q): Query<Since>,
    Signed { device: me, .. }: Signed,
) -> Answer<Json<Vec<Listed>>> {
    let since = wire::parse_vector(&q.since).ok_or(refuse(StatusCode::BAD_REQUEST, Refusal::Malformed))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = blocking(&hub, move |s| s.batches_since(&me.org, &since, limit)).await?;
    Ok(Json(page.into_iter().map(Listed::from).collect()))
}

/// `GET /v1/batches/{device}/{number}`: a batch's bytes, of this organisation only.
async fn fetch(
    State(hub): State<Hub>,
    Path((device, number)): Path<(String, i64)>,
    Signed { device: me, .. }: Signed,
) -> Answer<Response> {
    match blocking(&hub, move |s| s.batch(&me.org, &device, number)).await? {
        Some(bytes) => Ok(([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()),
        None => Err(refuse(StatusCode::NOT_FOUND, Refusal::NoSuchBatch)),
    }
}

/// `POST /v1/batches/fetch` with `[{device, number}, …]`: several batches of this
/// organisation in one answer, in the order asked, each as its length (u32, little
/// endian) and its bytes, up to [`MAX_BULK`]; the laptop asks again for the rest.
/// A batch not held ends the answer there.
async fn fetch_many(State(hub): State<Hub>, Signed { device: me, body }: Signed) -> Answer<Response> {
    let wanted: Vec<wire::Wanted> =
        serde_json::from_slice(&body).map_err(|_| refuse(StatusCode::BAD_REQUEST, Refusal::Malformed))?;
    if wanted.is_empty() || wanted.len() > MAX_PAGE {
        return Err(refuse(StatusCode::BAD_REQUEST, Refusal::Malformed));
    }
    let out = blocking(&hub, move |s| {
        let mut out = Vec::new();
        for w in &wanted {
            let Some(bytes) = s.batch(&me.org, &w.device, w.number)? else { break };
            if !out.is_empty() && out.len() + 4 + bytes.len() > MAX_BULK {
                break;
            }
            // A batch is at most MAX_BATCH (32 MiB): its length fits in a u32.
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    })
    .await?;
    if out.is_empty() {
        return Err(refuse(StatusCode::NOT_FOUND, Refusal::NoSuchBatch));
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], out).into_response())
}

pub fn router(hub: Hub) -> Router {
    Router::new()
        .route("/v1/orgs", post(register))
        .route("/v1/invitations", post(invite))
        .route("/v1/devices", post(enrol).get(devices))
        .route("/v1/devices/{id}/revoke", post(revoke))
        .route("/v1/vector", get(vector))
        .route("/v1/epochs", get(epochs))
        .route("/v1/epochs/{number}", put(put_epoch))
        .route("/v1/batches", get(list))
        .route("/v1/batches/fetch", post(fetch_many))
        .route("/v1/batches/{device}/{number}", put(push).get(fetch))
        .layer(DefaultBodyLimit::max(MAX_BATCH))
        .with_state(hub)
}
