//! Paging as Airweave's API does it (`skip`, `limit`), plus an opaque cursor for efficient paging.

/// What the caller asked for. `cursor` resumes after the last item of a previous page; `skip`
/// then skips further items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub skip: usize,
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: usize = 100;
    pub const MAX_LIMIT: usize = 1000;
    pub const MAX_SKIP: usize = 10_000;
    /// Most bytes of stored items one page of a listing of large items (entities) holds: its
    /// answer stays under 5 MB, well inside Lambda's 6 MB. A page holds one item at least.
    pub const MAX_BYTES: usize = 4 * 1024 * 1024;
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            skip: 0,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// One page of results and, when more may follow, the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }

    /// `map` with a conversion that can fail: the first error wins.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next_cursor: self.next_cursor,
        })
    }
}
