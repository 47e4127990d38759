//! Authentication: access keys, JWTs from `/auth/login`, and argon2 password hashes.
//!
//! Credentials are looked for in this order: the header `Authorization: Bearer <key
//! or JWT>`; the query `?token=` or `?accesskey=`; the cookie `token=` or
//! `accesskey=`. (The original reads the cookie first; here an explicit header wins,
//! so a stale cookie cannot override it.) A request authenticated by its cookie
//! alone must say it sends JSON when it changes anything: a cross-site form
//! (`text/plain`, `application/x-www-form-urlencoded`) cannot ride on the cookie.
//! A verified caller is cached for a few seconds so a request costs no extra query,
//! never past the key's or the JWT's expiry; revoking a key or deleting a customer
//! clears the cache and closes its WebSockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::AppState;
use crate::clock::Stamps;
use crate::error::ApiError;
use crate::store::Store;

/// How long a JWT from `/auth/login` is valid (the original's docs: 7 days).
pub const JWT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a verified caller is trusted without asking the database again.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's customer.
    pub customer_id: String,
    /// Whether the caller is the platform's operator.
    pub is_admin: bool,
}

impl Caller {
    /// Fails unless the caller is the admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(
                "only the platform admin may do this".to_owned(),
            ))
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
    #[serde(rename = "type")]
    kind: String,
}

/// Verifies credentials and issues JWTs.
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    cache: papaya::HashMap<String, (Caller, Instant, Expiry)>,
    revocations: tokio::sync::watch::Sender<u64>,
}

/// Until when a verified credential holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expiry {
    /// For ever (a key without `tm_expire`).
    Never,
    /// Until this stored timestamp (a key's `tm_expire`, compared as stored).
    Stamp(String),
    /// Until these Unix seconds (a JWT's `exp`).
    Unix(u64),
}

impl Expiry {
    fn passed(&self, now_stamp: &str, now_secs: u64) -> bool {
        match self {
            Expiry::Never => false,
            Expiry::Stamp(s) => s.as_str() <= now_stamp,
            Expiry::Unix(exp) => *exp <= now_secs,
        }
    }
}

impl Authenticator {
    /// An authenticator signing JWTs with `secret` (HS256).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            cache: papaya::HashMap::new(),
            revocations: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Issues a JWT for `customer_id`, valid for [`JWT_LIFETIME`] from `now_secs`.
    pub fn issue(&self, customer_id: &str, now_secs: u64) -> Result<String, ApiError> {
        let claims = Claims {
            sub: customer_id.to_owned(),
            iat: now_secs,
            exp: now_secs + JWT_LIFETIME.as_secs(),
            kind: "customer".to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("jwt: {e}")))
    }

    /// Forgets every cached caller (after a revocation), and tells the open
    /// WebSockets to check their credentials again.
    pub fn forget_all(&self) {
        self.cache.pin().clear();
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes whenever a credential may have been revoked.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    /// Resolves a credential (an access key or a JWT) to a caller.
    pub async fn verify(
        &self,
        store: &Store,
        credential: &str,
        stamps: &Stamps,
    ) -> Result<Caller, ApiError> {
        let (now, now_secs) = (stamps.now(), stamps.now_secs());
        let now = now.as_str();
        let is_jwt = credential.bytes().filter(|b| *b == b'.').count() == 2;
        let cache_key = if is_jwt {
            credential.to_owned()
        } else {
            hash_token(credential)
        };
        if let Some((caller, at, expiry)) = self.cache.pin().get(&cache_key)
            && at.elapsed() < CACHE_TTL
            && !expiry.passed(now, now_secs)
        {
            return Ok(caller.clone());
        }
        let (caller, expiry) = if is_jwt {
            let mut validation = Validation::new(Algorithm::HS256);
            // No grace past `exp` (the library's default is 60 s).
            validation.leeway = 0;
            let data = jsonwebtoken::decode::<Claims>(credential, &self.decoding, &validation)
                .map_err(|_| ApiError::InvalidCredentials)?;
            if data.claims.exp <= now_secs {
                return Err(ApiError::InvalidCredentials);
            }
            let row = sqlx::query(
                "SELECT id, is_admin FROM customers WHERE id = $1 AND tm_delete IS NULL",
            )
            .bind(&data.claims.sub)
            .fetch_optional(store.pool())
            .await?;
            (
                row.ok_or(ApiError::InvalidCredentials)?,
                Expiry::Unix(data.claims.exp),
            )
        } else {
            let row = sqlx::query(
                "SELECT c.id, c.is_admin, k.tm_expire FROM accesskeys k JOIN customers c ON c.id = k.customer_id \
                 WHERE k.token_hash = $1 AND k.tm_delete IS NULL AND (k.tm_expire IS NULL OR k.tm_expire > $2) \
                 AND c.tm_delete IS NULL",
            )
            .bind(&cache_key)
            .bind(now)
            .fetch_optional(store.pool())
            .await?;
            let row = row.ok_or(ApiError::InvalidCredentials)?;
            let expiry = match row.try_get::<Option<String>, _>("tm_expire")? {
                Some(stamp) => Expiry::Stamp(stamp),
                None => Expiry::Never,
            };
            (row, expiry)
        };
        let caller = Caller {
            customer_id: caller.try_get("id")?,
            is_admin: caller.try_get::<i64, _>("is_admin")? != 0,
        };
        self.cache
            .pin()
            .insert(cache_key, (caller.clone(), Instant::now(), expiry));
        Ok(caller)
    }
}

#[derive(Deserialize)]
struct CredentialQuery {
    token: Option<String>,
    accesskey: Option<String>,
}

/// Where a request's credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer`.
    Header,
    /// `?token=` or `?accesskey=`.
    Query,
    /// The `token` or `accesskey` cookie (sent by a browser on its own).
    Cookie,
}

/// Finds the credential in a request: bearer header, then query, then cookie.
pub fn credential(parts: &Parts) -> Option<(String, CredentialSource)> {
    if let Some(header) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        && let Some((scheme, value)) = header.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && !value.trim().is_empty()
    {
        return Some((value.trim().to_owned(), CredentialSource::Header));
    }
    if let Ok(Query(q)) = Query::<CredentialQuery>::try_from_uri(&parts.uri)
        && let Some(c) = q.token.or(q.accesskey).filter(|c| !c.is_empty())
    {
        return Some((c, CredentialSource::Query));
    }
    for cookie in parts.headers.get_all(axum::http::header::COOKIE) {
        let Ok(text) = cookie.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && matches!(name, "token" | "accesskey")
                && !value.is_empty()
            {
                return Some((value.to_owned(), CredentialSource::Cookie));
            }
        }
    }
    None
}

/// Whether a request riding on a cookie may go ahead: reads always; writes only
/// when they say they send JSON (which a cross-site form cannot without the
/// browser asking the server first).
fn cookie_request_allowed(parts: &Parts) -> bool {
    use axum::http::Method;
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (credential, source) = credential(parts).ok_or(ApiError::AuthenticationRequired)?;
        if source == CredentialSource::Cookie && !cookie_request_allowed(parts) {
            return Err(ApiError::PermissionDenied(
                "a request authenticated by a cookie must send Content-Type: application/json \
                 (or use Authorization: Bearer)"
                    .to_owned(),
            ));
        }
        state
            .auth
            .verify(&state.store, &credential, &state.stamps)
            .await
    }
}

/// The credential a request authenticated with, for connections that must check it
/// again later (a WebSocket outlives its upgrade request).
#[derive(Debug, Clone)]
pub struct RawCredential(pub String);

impl FromRequestParts<AppState> for RawCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        credential(parts)
            .map(|(c, _)| RawCredential(c))
            .ok_or(ApiError::AuthenticationRequired)
    }
}

/// The SHA-256 of an access key, as stored. Keys are long random strings, so a fast
/// hash is safe for them (passwords get argon2).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new access key: `vb_` and 32 random base62 characters (190 bits).
pub fn new_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("vb_{body}")
}

/// The part of a key shown in listings.
pub fn token_prefix(token: &str) -> String {
    token.chars().take(11).collect()
}

/// A job for the hashing threads.
type HashJob = Box<dyn FnOnce() + Send>;

/// Argon2 runs on its own threads, one per core, fed by a queue. Each run takes
/// 19 MiB (the default parameters, OWASP's minimum): a burst of logins waits in
/// the queue instead of taking memory without bound, and since the same few
/// threads always do the work, the allocator keeps at most a block per thread
/// afterwards (on tokio's blocking pool, every new thread kept its own 19 MiB).
fn hashing_queue() -> &'static std::sync::mpsc::SyncSender<HashJob> {
    static QUEUE: std::sync::LazyLock<std::sync::mpsc::SyncSender<HashJob>> =
        std::sync::LazyLock::new(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(4096);
            let rx = Arc::new(std::sync::Mutex::new(rx));
            for i in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("argon2-{i}"))
                    .spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(guard) => guard.recv(),
                                Err(poisoned) => poisoned.into_inner().recv(),
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "starting a password-hashing thread");
                }
            }
            tx
        });
    &QUEUE
}

/// Runs `work` on a hashing thread; `None` when the queue is gone or full.
async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        if tx.send(work()).is_err() {
            tracing::debug!("a password check finished after its request was dropped");
        }
    });
    if hashing_queue().try_send(job).is_err() {
        return None;
    }
    rx.await.ok()
}

/// Hashes a password with argon2id (on the hashing threads).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    on_hashing_thread(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await
    .ok_or_else(|| ApiError::Exhausted {
        message: "too many password checks waiting; try again".to_owned(),
        retry_after: Some(1),
    })?
}

/// Checks a password against an argon2 hash (on the hashing threads); false when
/// it does not match or could not be checked.
pub async fn verify_password(password: String, hash: String) -> bool {
    on_hashing_thread(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A shared authenticator.
pub type SharedAuth = Arc<Authenticator>;
