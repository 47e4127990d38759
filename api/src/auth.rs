//! Authentication: access keys, JWTs from `/auth/login`, and argon2 password hashes.
//!
//! Credentials are looked for in this order, as the original does (reference section
//! 3, "Auth"): the cookie `token=` or `accesskey=`; the query `?token=` or
//! `?accesskey=`; the header `Authorization: Bearer <key or JWT>`. A verified caller
//! is cached for a few seconds so a request costs no extra query; revoking a key or
//! deleting a customer clears the cache.

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
    cache: papaya::HashMap<String, (Caller, Instant)>,
}

impl Authenticator {
    /// An authenticator signing JWTs with `secret` (HS256).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            cache: papaya::HashMap::new(),
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

    /// Forgets every cached caller (after a revocation).
    pub fn forget_all(&self) {
        self.cache.pin().clear();
    }

    /// Resolves a credential (an access key or a JWT) to a caller.
    pub async fn verify(
        &self,
        store: &Store,
        credential: &str,
        now: &str,
    ) -> Result<Caller, ApiError> {
        let is_jwt = credential.bytes().filter(|b| *b == b'.').count() == 2;
        let cache_key = if is_jwt {
            credential.to_owned()
        } else {
            hash_token(credential)
        };
        if let Some((caller, at)) = self.cache.pin().get(&cache_key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(caller.clone());
        }
        let caller = if is_jwt {
            let data = jsonwebtoken::decode::<Claims>(
                credential,
                &self.decoding,
                &Validation::new(Algorithm::HS256),
            )
            .map_err(|_| ApiError::InvalidCredentials)?;
            let row = sqlx::query(
                "SELECT id, is_admin FROM customers WHERE id = $1 AND tm_delete IS NULL",
            )
            .bind(&data.claims.sub)
            .fetch_optional(store.pool())
            .await?;
            row.ok_or(ApiError::InvalidCredentials)?
        } else {
            let row = sqlx::query(
                "SELECT c.id, c.is_admin FROM accesskeys k JOIN customers c ON c.id = k.customer_id \
                 WHERE k.token_hash = $1 AND k.tm_delete IS NULL AND (k.tm_expire IS NULL OR k.tm_expire > $2) \
                 AND c.tm_delete IS NULL",
            )
            .bind(&cache_key)
            .bind(now)
            .fetch_optional(store.pool())
            .await?;
            row.ok_or(ApiError::InvalidCredentials)?
        };
        let caller = Caller {
            customer_id: caller.try_get("id")?,
            is_admin: caller.try_get::<i64, _>("is_admin")? != 0,
        };
        self.cache
            .pin()
            .insert(cache_key, (caller.clone(), Instant::now()));
        Ok(caller)
    }
}

#[derive(Deserialize)]
struct CredentialQuery {
    token: Option<String>,
    accesskey: Option<String>,
}

/// Finds the credential in a request: cookie, then query, then bearer header.
pub fn credential(parts: &Parts) -> Option<String> {
    for cookie in parts.headers.get_all(axum::http::header::COOKIE) {
        let Ok(text) = cookie.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && matches!(name, "token" | "accesskey")
                && !value.is_empty()
            {
                return Some(value.to_owned());
            }
        }
    }
    if let Ok(Query(q)) = Query::<CredentialQuery>::try_from_uri(&parts.uri)
        && let Some(c) = q.token.or(q.accesskey).filter(|c| !c.is_empty())
    {
        return Some(c);
    }
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, value) = header.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !value.trim().is_empty())
        .then(|| value.trim().to_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = credential(parts).ok_or(ApiError::AuthenticationRequired)?;
        state
            .auth
            .verify(&state.store, &credential, &state.stamps.now())
            .await
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

/// Argon2 runs allowed at once: one per core. Each takes 19 MiB (the default
/// parameters, OWASP's minimum), so a burst of logins waits here rather than taking
/// memory without bound.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    &SLOTS
}

/// Hashes a password with argon2id (off the async threads, one per core at a time).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("hashing slots: {e}")))?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
}

/// Checks a password against an argon2 hash (off the async threads, one per core at
/// a time).
pub async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
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
