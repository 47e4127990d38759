//! Cursor pagination as the original does it: newest first, the cursor is the last
//! item's `tm_create` (reference section 3, "Pagination").

use serde::Deserialize;

/// The largest and default page size.
pub const MAX_PAGE_SIZE: i64 = 100;

/// The query parameters of a list request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    /// Items per page: 1..=100; anything else means 100.
    pub page_size: Option<i64>,
    /// The `tm_create` of the last item of the previous page.
    pub page_token: Option<String>,
}

impl PageQuery {
    /// The page size to use.
    pub fn size(&self) -> i64 {
        match self.page_size {
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => MAX_PAGE_SIZE,
        }
    }

    /// The cursor to use: items created strictly before it.
    pub fn token(&self) -> String {
        match self.page_token.as_deref() {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => "9999-12-31T23:59:59.999999Z".to_owned(),
        }
    }
}
