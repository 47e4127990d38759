//! Customers: the admin manages them (`/customers`); each reads and updates itself
//! (`/customer`), including its webhook settings.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Page, St};
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, resource_id};
use crate::store::customers::{self, Customer};
use crate::store::page::PageQuery;
use crate::store::{accesskeys, accesskeys::Accesskey};
use crate::{AdminCredentials, ApiConfig, AppState};

/// The body of `POST /customers`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCustomer {
    /// The login name; unique.
    pub username: String,
    /// The password, at least 8 characters.
    pub password: String,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// Notes.
    #[serde(default)]
    pub detail: String,
    /// Contact email.
    #[serde(default)]
    pub email: String,
    /// Contact phone number.
    #[serde(default)]
    pub phone_number: String,
    /// Postal address.
    #[serde(default)]
    pub address: String,
    /// POST, PUT, GET or "" (POST).
    #[serde(default)]
    pub webhook_method: String,
    /// Where events are delivered.
    #[serde(default)]
    pub webhook_uri: String,
    /// The HMAC key for webhook signatures.
    #[serde(default)]
    pub webhook_secret: String,
}

/// The body of `PUT /customer`: every field is optional; absent ones are kept.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateCustomer {
    /// A display name.
    pub name: Option<String>,
    /// Notes.
    pub detail: Option<String>,
    /// Contact email.
    pub email: Option<String>,
    /// Contact phone number.
    pub phone_number: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// POST, PUT, GET or "".
    pub webhook_method: Option<String>,
    /// Where events are delivered; "" for none.
    pub webhook_uri: Option<String>,
    /// The HMAC key for webhook signatures; write-only.
    pub webhook_secret: Option<String>,
}

/// Checks a webhook method and URI.
fn check_webhook(state: &AppState, method: &str, uri: &str) -> ApiResult<()> {
    if !matches!(method, "" | "POST" | "PUT" | "GET" | "DELETE") {
        return Err(ApiError::invalid(
            "webhook_method",
            format!("{method:?} is not one of POST, PUT, GET, DELETE"),
        ));
    }
    if !uri.is_empty() {
        let url = reqwest::Url::parse(uri).map_err(|e| ApiError::invalid("webhook_uri", e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::invalid(
                "webhook_uri",
                "must be an http or https URL",
            ));
        }
        // An address inside (loopback, private, link-local, ours) is refused now;
        // a name is checked again at each delivery, after it is resolved.
        state
            .outbound
            .policy()
            .check_url(&url)
            .map_err(|e| ApiError::invalid("webhook_uri", e))?;
    }
    Ok(())
}

/// Writes a new customer and its event; maps a taken username to 409.
async fn insert_customer(state: &AppState, customer: &Customer) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    if customers::get_by_username(&mut *tx, &customer.username)
        .await?
        .is_some()
    {
        return Err(ApiError::AlreadyExists(format!(
            "username {:?} is taken",
            customer.username
        )));
    }
    customers::insert(&mut *tx, customer).await?;
    let event = state
        .events
        .event(&customer.id, "customer", &customer.id, "created", customer);
    state.events.commit(tx, event).await?;
    Ok(())
}

/// Create a customer (admin only).
#[utoipa::path(post, path = "/customers", tag = "customers", request_body = CreateCustomer,
    responses((status = 200, body = Customer), (status = 400), (status = 403), (status = 409)))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<CreateCustomer>,
) -> ApiResult<Json<Customer>> {
    caller.require_admin()?;
    let username = body.username.trim().to_owned();
    if username.is_empty() || username.len() > 255 {
        return Err(ApiError::invalid("username", "must be 1 to 255 characters"));
    }
    if body.password.chars().count() < 8 {
        return Err(ApiError::invalid(
            "password",
            "must be at least 8 characters",
        ));
    }
    check_webhook(&state, &body.webhook_method, &body.webhook_uri)?;
    let customer = Customer {
        id: uuid::Uuid::now_v7().to_string(),
        username,
        password_hash: auth::hash_password(body.password).await?,
        name: body.name,
        detail: body.detail,
        email: body.email,
        phone_number: body.phone_number,
        address: body.address,
        webhook_method: body.webhook_method,
        webhook_uri: body.webhook_uri,
        webhook_secret: body.webhook_secret,
        is_admin: false,
        status: "active".to_owned(),
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    insert_customer(&state, &customer).await?;
    Ok(Json(customer))
}

/// List customers (admin only).
#[utoipa::path(get, path = "/customers", tag = "customers",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Customer>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Customer>>> {
    caller.require_admin()?;
    let items = customers::list(state.store.pool(), &page.token(), page.size()).await?;
    Ok(Json(Page::new(items, |c| &c.tm_create)))
}

/// Get a customer (admin only).
#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    responses((status = 200, body = Customer), (status = 404)))]
pub async fn get_one(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Customer>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    customers::get(state.store.pool(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("customer"))
}

/// Delete a customer (admin only): its keys and tokens stop working at once.
#[utoipa::path(delete, path = "/customers/{id}", tag = "customers",
    responses((status = 200, body = Customer), (status = 404)))]
pub async fn delete(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Customer>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    if id == caller.customer_id {
        return Err(ApiError::invalid("id", "the admin cannot delete itself"));
    }
    let mut tx = state.store.begin().await?;
    let mut customer = customers::get(&mut *tx, id)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    let now = state.stamps.now();
    customer.status = "deleted".to_owned();
    customer.tm_delete = Some(now.clone());
    customer.tm_update = Some(now.clone());
    // Recorded while the customer still has its webhook, so the event reaches it.
    let event = state.events.event(id, "customer", id, "deleted", &customer);
    state.events.record(&mut tx, &event).await?;
    customers::delete(&mut *tx, id, &now).await?;
    tx.commit().await?;
    state.auth.forget_all();
    state.events.announce(event);
    Ok(Json(customer))
}

/// Get the calling customer.
#[utoipa::path(get, path = "/customer", tag = "customers", responses((status = 200, body = Customer)))]
pub async fn get_self(state: St, caller: Caller) -> ApiResult<Json<Customer>> {
    customers::get(state.store.pool(), &caller.customer_id)
        .await?
        .map(Json)
        .ok_or(ApiError::InvalidCredentials)
}

/// Update the calling customer, its webhook settings included.
#[utoipa::path(put, path = "/customer", tag = "customers", request_body = UpdateCustomer,
    responses((status = 200, body = Customer), (status = 400)))]
pub async fn update_self(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<UpdateCustomer>,
) -> ApiResult<Json<Customer>> {
    let mut tx = state.store.begin().await?;
    let mut c = customers::get(&mut *tx, &caller.customer_id)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    let fields = [
        (&mut c.name, body.name),
        (&mut c.detail, body.detail),
        (&mut c.email, body.email),
        (&mut c.phone_number, body.phone_number),
        (&mut c.address, body.address),
        (&mut c.webhook_method, body.webhook_method),
        (&mut c.webhook_uri, body.webhook_uri),
        (&mut c.webhook_secret, body.webhook_secret),
    ];
    for (field, value) in fields {
        if let Some(v) = value {
            *field = v;
        }
    }
    check_webhook(&state, &c.webhook_method, &c.webhook_uri)?;
    c.tm_update = Some(state.stamps.now());
    customers::update(&mut *tx, &c).await?;
    let event = state.events.event(&c.id, "customer", &c.id, "updated", &c);
    state.events.commit(tx, event).await?;
    Ok(Json(c))
}

/// Creates the `admin` customer and its first access key when the database has no
/// customer yet; returns the credentials to print once.
pub async fn bootstrap_admin(
    state: &AppState,
    config: &ApiConfig,
) -> ApiResult<Option<AdminCredentials>> {
    if customers::count(state.store.pool()).await? > 0 {
        return Ok(None);
    }
    let password = config
        .admin_password
        .clone()
        .unwrap_or_else(auth::new_token);
    let accesskey = config
        .admin_accesskey
        .clone()
        .unwrap_or_else(auth::new_token);
    let admin = Customer {
        id: uuid::Uuid::now_v7().to_string(),
        username: "admin".to_owned(),
        password_hash: auth::hash_password(password.clone()).await?,
        name: "admin".to_owned(),
        detail: "the platform operator".to_owned(),
        email: String::new(),
        phone_number: String::new(),
        address: String::new(),
        webhook_method: String::new(),
        webhook_uri: String::new(),
        webhook_secret: String::new(),
        is_admin: true,
        status: "active".to_owned(),
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    let key = Accesskey {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: admin.id.clone(),
        name: "admin".to_owned(),
        detail: "made on first start".to_owned(),
        token: None,
        token_prefix: auth::token_prefix(&accesskey),
        tm_expire: None,
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    let mut tx = state.store.begin().await?;
    // Two nodes starting on one empty Postgres: the loser sees the winner's admin.
    if customers::count(&mut *tx).await? > 0 {
        return Ok(None);
    }
    customers::insert(&mut *tx, &admin).await?;
    accesskeys::insert(&mut *tx, &key, &auth::hash_token(&accesskey)).await?;
    tx.commit().await?;
    Ok(Some(AdminCredentials {
        username: admin.username,
        password,
        accesskey,
    }))
}
