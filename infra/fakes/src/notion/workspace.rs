//! The data model of the fake Notion workspace: its pages, databases and stored blocks.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Object {
    Page,
    Database,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Parent {
    Workspace,
    Database(String),
    /// A child page's page, or the block it sits in.
    Page(String),
    Block(String),
}

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) id: String,
    pub(super) object: Object,
    pub(super) title: String,
    pub(super) parent: Parent,
    /// Minutes on the fake's clock.
    pub(super) created: i64,
    pub(super) edited: i64,
    /// A row's `Status`.
    pub(super) status: Option<String>,
    /// A row's attached file name, served with a signed URL.
    pub(super) attachment: Option<String>,
    /// Moved to the trash: still listed, with `archived` and `in_trash` true.
    pub(super) trashed: bool,
}

#[derive(Debug, Clone)]
pub(super) struct StoredBlock {
    pub(super) id: String,
    pub(super) kind: &'static str,
    pub(super) text: String,
    pub(super) checked: bool,
    pub(super) has_children: bool,
}

#[derive(Debug, Default)]
pub(super) struct Workspace {
    pub(super) clock: i64,
    pub(super) next_id: u64,
    /// In creation order.
    pub(super) items: Vec<Item>,
    /// The blocks under each page or block, by its id.
    pub(super) blocks: BTreeMap<String, Vec<StoredBlock>>,
}

impl Workspace {
    pub(super) fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    pub(super) fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("5e1f0a7c-0000-4000-8000-{:012x}", self.next_id)
    }

    pub(super) fn item_mut(&mut self, id: &str) -> &mut Item {
        self.items
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("the fake Notion has no item {id}"))
    }

    pub(super) fn add(&mut self, object: Object, title: &str, parent: Parent) -> String {
        let id = self.new_id();
        let now = self.tick();
        self.items.push(Item {
            id: id.clone(),
            object,
            title: title.to_owned(),
            parent,
            created: now,
            edited: now,
            status: None,
            attachment: None,
            trashed: false,
        });
        id
    }

    pub(super) fn set_blocks(&mut self, parent: &str, blocks: &[Block]) {
        self.drop_blocks(parent);
        let mut stored = Vec::new();
        for block in blocks {
            let id = if block.kind == "child_page" {
                let home = if self.items.iter().any(|i| i.id == parent) {
                    Parent::Page(parent.to_owned())
                } else {
                    Parent::Block(parent.to_owned())
                };
                self.add(Object::Page, &block.text, home)
            } else {
                self.new_id()
            };
            self.set_blocks(&id, &block.children);
            stored.push(StoredBlock {
                id,
                kind: block.kind,
                text: block.text.clone(),
                checked: block.checked,
                has_children: !block.children.is_empty(),
            });
        }
        self.blocks.insert(parent.to_owned(), stored);
    }

    pub(super) fn drop_blocks(&mut self, parent: &str) {
        for block in self.blocks.remove(parent).unwrap_or_default() {
            if block.kind == "child_page" {
                self.items.retain(|i| i.id != block.id);
            }
            self.drop_blocks(&block.id);
        }
    }
}
