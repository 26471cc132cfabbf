//! A listed page handed out in slices: a source lists a page of an upstream listing (Notion's
//! search, Drive's files or changes), hands it out over several `next_page` calls so that none
//! runs long, and checkpoints the id of the last item handed out. A resumed stream lists that
//! page again and goes on after that id; if the id is no longer in the page (the upstream's
//! answer changed as items came and went), it hands out the whole page again: a duplicate is
//! harmless, a skipped item would be deleted as absent.
//!
//! Where the listing goes after the page (a cursor, a token, the end) is the source's own `N`,
//! and so is the checkpoint's shape: this type holds only the page in memory.

use serde_json::Value;

/// What names an item of a listing (an id, or a kind and an id); `None` when it has no name.
pub(crate) type ItemKey = fn(&Value) -> Option<String>;

/// One listed page, the items handed out so far, and `N`: what follows the page.
#[derive(Debug)]
pub(crate) struct ListedPage<N> {
    items: Vec<Value>,
    /// How many of `items` were handed out.
    at: usize,
    next: N,
    key: ItemKey,
}

impl<N> ListedPage<N> {
    /// A page just listed, nothing of it handed out yet.
    pub fn new(items: Vec<Value>, next: N, key: ItemKey) -> Self {
        Self {
            items,
            at: 0,
            next,
            key,
        }
    }

    /// The page listed again by a resumed stream: what follows the item named `last` (the last
    /// one handed out before), or the whole page when `last` is `None` or no longer in it.
    pub fn resume_after(mut self, last: Option<&str>) -> Self {
        let key = self.key;
        self.at = last
            .and_then(|last| {
                self.items
                    .iter()
                    .position(|item| key(item).as_deref() == Some(last))
            })
            .map_or(0, |i| i + 1);
        self
    }

    /// The next item to hand out, without handing it out.
    pub fn peek(&self) -> Option<&Value> {
        self.items.get(self.at)
    }

    /// Hands out the next item.
    pub fn take(&mut self) -> Option<&Value> {
        let item = self.items.get(self.at)?;
        self.at += 1;
        Some(item)
    }

    /// Puts back the item handed out last, as if it had not been.
    pub fn untake(&mut self) {
        self.at = self.at.saturating_sub(1);
    }

    /// The name of the last item handed out: what a checkpoint resumes after. `None` when
    /// nothing was handed out, or that item has no name.
    pub fn last_key(&self) -> Option<String> {
        self.at
            .checked_sub(1)
            .and_then(|i| self.items.get(i))
            .and_then(self.key)
    }

    /// Every item was handed out (an empty page is used up at once).
    pub fn is_used_up(&self) -> bool {
        self.at >= self.items.len()
    }

    /// What follows the page.
    pub fn next(&self) -> &N {
        &self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(item: &Value) -> Option<String> {
        item.get("id")?.as_str().map(str::to_owned)
    }

    fn page(ids: &[&str]) -> ListedPage<Option<&'static str>> {
        let items = ids.iter().map(|i| json!({ "id": i })).collect();
        ListedPage::new(items, Some("next"), id)
    }

    fn rest<N>(page: &mut ListedPage<N>) -> Vec<String> {
        std::iter::from_fn(|| page.take().and_then(id)).collect()
    }

    #[test]
    fn a_page_is_handed_out_in_order_and_then_used_up() {
        let mut listed = page(&["a", "b"]);
        assert!(!listed.is_used_up());
        assert_eq!(listed.last_key(), None, "nothing handed out yet");
        assert_eq!(listed.peek().and_then(id).as_deref(), Some("a"));
        assert_eq!(listed.take().and_then(id).as_deref(), Some("a"));
        assert_eq!(listed.last_key().as_deref(), Some("a"));
        assert_eq!(rest(&mut listed), ["b"]);
        assert!(listed.is_used_up());
        assert_eq!(listed.last_key().as_deref(), Some("b"));
        assert!(listed.peek().is_none() && listed.take().is_none());
        assert_eq!(listed.next(), &Some("next"));
        assert!(page(&[]).is_used_up(), "an empty page is used up at once");
    }

    #[test]
    fn an_item_put_back_is_handed_out_again() {
        let mut listed = page(&["a", "b"]);
        listed.take();
        listed.take();
        assert!(listed.is_used_up());
        listed.untake();
        assert!(!listed.is_used_up());
        assert_eq!(listed.last_key().as_deref(), Some("a"));
        assert_eq!(rest(&mut listed), ["b"]);
        let mut fresh = page(&["a"]);
        fresh.untake();
        assert_eq!(rest(&mut fresh), ["a"], "nothing to put back is a no-op");
    }

    #[test]
    fn a_resumed_page_goes_on_after_the_last_item_even_if_items_moved() {
        // An item before the last one handed out left the page: by count, "d" would be skipped.
        let mut listed = page(&["b", "c", "d"]).resume_after(Some("c"));
        assert_eq!(rest(&mut listed), ["d"]);
        let mut at_the_end = page(&["b", "c"]).resume_after(Some("c"));
        assert!(at_the_end.is_used_up());
        assert_eq!(rest(&mut at_the_end), Vec::<String>::new());
    }

    #[test]
    fn a_resumed_page_whose_last_item_left_is_handed_out_again_whole() {
        let mut gone = page(&["a", "c", "d"]).resume_after(Some("b"));
        assert_eq!(rest(&mut gone), ["a", "c", "d"]);
        let mut from_the_start = page(&["a", "b"]).resume_after(None);
        assert_eq!(rest(&mut from_the_start), ["a", "b"]);
    }

    #[test]
    fn an_item_without_a_name_is_never_resumed_after() {
        let items = vec![
            json!({"id": "a"}),
            json!({"no_id": true}),
            json!({"id": "c"}),
        ];
        let mut listed = ListedPage::new(items, (), id);
        listed.take();
        listed.take();
        assert_eq!(listed.last_key(), None);
        let mut resumed = ListedPage::new(vec![json!({"id": "a"})], (), id).resume_after(None);
        assert_eq!(rest(&mut resumed), ["a"]);
    }
}
