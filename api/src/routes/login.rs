//! `POST /auth/login` (and `/v1.0/auth/login`): username and password for a JWT.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::St;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientAddr};
use crate::store::customers;
use crate::throttle::Subject;

/// A login request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The customer's username.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// A login answer: a JWT usable as `?token=` or `Authorization: Bearer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The username.
    pub username: String,
    /// The JWT, valid for 7 days.
    pub token: String,
}

/// A hash of a password nobody has, checked when the username is unknown so the
/// answer takes the same time either way.
async fn dummy_hash() -> ApiResult<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| crate::auth::hash_password(crate::auth::new_token()))
        .await
        .cloned()
}

/// Log in.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "wrong username or password"),
        (status = 429, description = "too many failed logins: wait as Retry-After says")))]
pub async fn login(
    state: St,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let mut subjects = vec![Subject::Username(body.username.to_lowercase())];
    subjects.extend(client.map(Subject::Address));
    let now = tokio::time::Instant::now();
    if let Some(wait) = state.logins.wait(now, &subjects) {
        let secs = wait.as_secs().max(1);
        return Err(ApiError::Exhausted {
            message: format!("too many failed logins: try again in {secs} s"),
            retry_after: Some(secs),
        });
    }
    let customer = customers::get_by_username(state.store.pool(), &body.username).await?;
    let hash = match &customer {
        Some(c) => c.password_hash.clone(),
        None => dummy_hash().await?,
    };
    let ok = crate::auth::verify_password(body.password, hash).await;
    let Some(customer) = customer.filter(|_| ok) else {
        state.logins.failed(tokio::time::Instant::now(), &subjects);
        return Err(ApiError::InvalidCredentials);
    };
    state.logins.succeeded(&subjects);
    let token = state.auth.issue(&customer.id, state.stamps.now_secs())?;
    Ok(Json(LoginResponse {
        username: customer.username,
        token,
    }))
}
