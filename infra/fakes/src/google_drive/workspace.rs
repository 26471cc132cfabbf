//! The data model of the fake Drive: files, shared drives, changes and their builders.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// The text of a Google Doc or a text file; `None` for folders and binary files.
    pub text: Option<String>,
    /// The size of a binary file (text files are as large as their text).
    pub binary_size: u64,
    pub description: Option<String>,
    pub parents: Vec<String>,
    /// The shared drive holding it, if any.
    pub drive_id: Option<String>,
    /// Shared directly with the user: a file of a shared drive is then in the user corpus
    /// (listed with `includeItemsFromAllDrives` only), whether or not the user is a member of
    /// its drive.
    pub shared_with_me: bool,
    pub trashed: bool,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Drive's `version`: bumped at every change.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    File(String),
    Drive(String),
}

/// What the fake serves; a test changes it between syncs.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The largest page any list answers, whatever `pageSize` asks (Drive may answer fewer
    /// than asked); tests lower it to get many pages.
    pub max_page_size: usize,
    /// Drive could not search every corpus it was asked for: `files` answers say
    /// `incompleteSearch: true` (as for users in many shared drives). Off by default.
    pub incomplete_search: bool,
    pub(super) files: BTreeMap<String, File>,
    pub(super) drives: BTreeMap<String, Drive>,
    /// One entry per item, its latest change, by ascending change id.
    pub(super) changes: Vec<(u64, Item)>,
    pub(super) next_change: u64,
    pub(super) next_id: u64,
    /// Advances a minute at every change.
    pub(super) clock: DateTime<Utc>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            max_page_size: FILES_MAX_PAGE,
            incomplete_search: false,
            files: BTreeMap::new(),
            drives: BTreeMap::new(),
            changes: Vec::new(),
            next_change: 1000,
            next_id: 1,
            clock: Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap(),
        }
    }
}

impl Workspace {
    /// A folder, two Google Docs, a text file and an image in My Drive, and a shared drive
    /// holding a design doc.
    pub fn demo() -> Self {
        let mut w = Self::default();
        let projects = w.add_folder("Projects");
        let roadmap = w.add_doc(
            "Roadmap 2026",
            "Roadmap 2026\n\nQ1: ship the connector platform.\nQ2: more sources.",
        );
        w.file_mut(&roadmap).parents = vec![projects];
        w.add_doc(
            "Meeting notes",
            "Weekly sync\n\n- Drive connector reviewed\n- Next: Slack",
        );
        w.add_text_file("todo.txt", "buy milk\nwrite tests\n");
        w.add_binary_file("logo.png", "image/png", 48_213);
        let engineering = w.add_drive("Engineering");
        let design = w.add_doc("Design doc", "Sync design\n\nPages, checkpoints, cursors.");
        w.move_to_drive(&design, &engineering);
        w
    }

    pub(super) fn tick(&mut self) -> DateTime<Utc> {
        self.clock += Duration::minutes(1);
        self.clock
    }

    pub(super) fn new_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{:04}fakeDriveId", self.next_id);
        self.next_id += 1;
        id
    }

    pub(super) fn record(&mut self, item: Item) {
        self.changes.retain(|(_, i)| *i != item);
        self.changes.push((self.next_change, item));
        self.next_change += 1;
    }

    pub(super) fn insert(
        &mut self,
        name: &str,
        mime_type: &str,
        text: Option<&str>,
        size: u64,
    ) -> String {
        let id = self.new_id("1");
        let at = self.tick();
        self.files.insert(
            id.clone(),
            File {
                id: id.clone(),
                name: name.to_owned(),
                mime_type: mime_type.to_owned(),
                text: text.map(str::to_owned),
                binary_size: size,
                description: None,
                parents: vec!["root".into()],
                drive_id: None,
                shared_with_me: false,
                trashed: false,
                created: at,
                modified: at,
                version: 1,
            },
        );
        self.record(Item::File(id.clone()));
        id
    }

    pub fn add_folder(&mut self, name: &str) -> String {
        self.insert(name, FOLDER, None, 0)
    }

    pub fn add_doc(&mut self, name: &str, text: &str) -> String {
        self.insert(name, GOOGLE_DOC, Some(text), 0)
    }

    pub fn add_text_file(&mut self, name: &str, text: &str) -> String {
        self.insert(name, "text/plain", Some(text), 0)
    }

    pub fn add_binary_file(&mut self, name: &str, mime_type: &str, size: u64) -> String {
        self.insert(name, mime_type, None, size)
    }

    pub fn add_drive(&mut self, name: &str) -> String {
        let id = self.new_id("0A");
        let created = self.tick();
        self.drives.insert(
            id.clone(),
            Drive {
                id: id.clone(),
                name: name.to_owned(),
                created,
            },
        );
        self.record(Item::Drive(id.clone()));
        id
    }

    /// A file by id; panics when there is none (a test's mistake).
    pub fn file(&self, id: &str) -> &File {
        &self.files[id]
    }

    pub(super) fn file_mut(&mut self, id: &str) -> &mut File {
        self.files.get_mut(id).expect("a file of the fake")
    }

    /// Changes a file as a user would (its content, name, place …): a new modified time,
    /// version and change.
    pub fn edit(&mut self, id: &str, change: impl FnOnce(&mut File)) {
        let at = self.tick();
        let file = self.file_mut(id);
        change(file);
        file.modified = at;
        file.version += 1;
        self.record(Item::File(id.to_owned()));
    }

    pub fn set_text(&mut self, id: &str, text: &str) {
        self.edit(id, |f| f.text = Some(text.to_owned()));
    }

    pub fn rename(&mut self, id: &str, name: &str) {
        self.edit(id, |f| f.name = name.to_owned());
    }

    /// A Google Doc of someone else's shared drive, shared directly with the user, who is not a
    /// member of that drive: `drives` does not name it, `corpora=drive` cannot list it, and
    /// `corpora=user` answers the doc only with `includeItemsFromAllDrives`; `changes` reports
    /// it like any file.
    pub fn add_doc_shared_from_another_drive(&mut self, name: &str, text: &str) -> String {
        let id = self.add_doc(name, text);
        let drive = self.new_id("0B");
        self.edit(&id, |f| {
            f.parents = vec![drive.clone()];
            f.drive_id = Some(drive);
            f.shared_with_me = true;
        });
        id
    }

    pub fn move_to_drive(&mut self, id: &str, drive_id: &str) {
        let drive = drive_id.to_owned();
        self.edit(id, |f| {
            f.parents = vec![drive.clone()];
            f.drive_id = Some(drive);
        });
    }

    /// Moves a file to the trash: still readable by id, gone from `trashed = false` listings,
    /// reported by the changes API with `file.trashed: true`.
    pub fn trash(&mut self, id: &str) {
        self.edit(id, |f| f.trashed = true);
    }

    /// Deletes a file for good: the changes API reports it `removed: true`.
    pub fn delete(&mut self, id: &str) {
        self.files.remove(id).expect("a file of the fake");
        self.record(Item::File(id.to_owned()));
    }

    pub fn rename_drive(&mut self, id: &str, name: &str) {
        self.drives.get_mut(id).expect("a drive of the fake").name = name.to_owned();
        self.record(Item::Drive(id.to_owned()));
    }

    /// Deletes a shared drive and the files in it.
    pub fn remove_drive(&mut self, id: &str) {
        self.drives.remove(id).expect("a drive of the fake");
        let inside: Vec<String> = self
            .files
            .values()
            .filter(|f| f.drive_id.as_deref() == Some(id))
            .map(|f| f.id.clone())
            .collect();
        for file in inside {
            self.delete(&file);
        }
        self.record(Item::Drive(id.to_owned()));
    }

    /// Every file that is not trashed, by id.
    pub fn live_file_ids(&self) -> Vec<String> {
        self.files
            .values()
            .filter(|f| !f.trashed)
            .map(|f| f.id.clone())
            .collect()
    }

    pub fn drive_ids(&self) -> Vec<String> {
        self.drives.keys().cloned().collect()
    }

    /// What `changes/startPageToken` answers now: the changes listed from it are those made
    /// after this call.
    pub fn start_page_token(&self) -> String {
        self.next_change.to_string()
    }
}
