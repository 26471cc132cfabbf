//! The entity stream: where a run is (its `Checkpoint` and the `Step` in it), the listing page
//! it holds while handing it out in slices (a [`ListedPage`]), the requests it sends, and the
//! pages it yields.

use super::api::{json_of, malformed, refusal, Refusal};
use super::entities::{
    change_target, content_kind, drive_entity, file_entity, text_content, Content, ContentKind,
    Target, CONTENT_LIMIT,
};
use super::API;
use super::NAME;
use crate::base_url::BaseUrl;
use crate::budget::PageBudget;
use crate::listing::ListedPage;
use crate::upstream::PAGE_BODY_LIMIT;
use crate::upstream::{fetch, Answer};
use async_trait::async_trait;
use chrono::Utc;
use domain::entity::{Entity, EntityKey};
use domain::stream::{EntityPage, EntityStream, StreamError};
use reqwest::header::HeaderValue;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// Files per `files.list` page (Drive allows up to 1000; it may answer fewer).
const FILES_PAGE_SIZE: u32 = 100;
/// Drives per `drives.list` page (Drive's maximum).
const DRIVES_PAGE_SIZE: u32 = 100;
/// Changes per `changes.list` page.
const CHANGES_PAGE_SIZE: u32 = 100;
/// The most file contents one `next_page` downloads: keeps a page well inside the worker's
/// time budget whatever the listing holds.
pub(super) const CONTENT_FETCHES_PER_PAGE: usize = 10;
/// What a payload keeps of a file. Volatile fields (`viewedByMeTime`, `thumbnailLink`,
/// `version`, …) are not asked for, so an unchanged file hashes the same on every run.
const FILE_FIELDS: &str = "id,name,mimeType,description,starred,trashed,parents,webViewLink,\
                           createdTime,modifiedTime,size,md5Checksum,fileExtension,driveId,\
                           owners(displayName,emailAddress),\
                           lastModifyingUser(displayName,emailAddress)";
const DRIVE_FIELDS: &str = "id,name,createdTime,hidden";

/// Where a run is; the checkpoint after each page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub step: Step,
    /// The changes token the next run starts from: asked at the start of a full run, or the
    /// `newStartPageToken` that ends an incremental one.
    pub next_start: Option<String>,
    /// The ids of a full run's current page of shared drives, as `drives.list` named them:
    /// their files are listed one drive after the other (after the user's own, for the first
    /// page), then the next page's. At most [`DRIVES_PAGE_SIZE`] ids, so the checkpoint stays
    /// small however many drives the user is in. (A checkpoint of the version that listed every
    /// page of drives first holds them all here, and no `drives_next`: its run lists the drives
    /// left of them and ends.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drives: Option<Vec<String>>,
    /// The `drives.list` token of the page after `drives`; `None` when that is the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drives_next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Step {
    /// A full run that has not asked for its start token yet.
    StartToken,
    /// Read from checkpoints of the version that listed every page of drives before any file
    /// (and kept them all): such a run starts over.
    Drives {
        page_token: Option<String>,
    },
    /// The page `page_token` of `drives.list` (`None`: the first), whose drives' files are
    /// listed before the next page is.
    DrivePage {
        page_token: Option<String>,
    },
    /// Files of `corpora=user` (`drive: None`) or of the shared drive `drives[drive]` of the
    /// current page; `last` is the id of the last file of the listing page `page_token` handed
    /// out (`None`: none).
    Files {
        #[serde(default)]
        drive: Option<usize>,
        page_token: Option<String>,
        #[serde(default)]
        last: Option<String>,
    },
    /// `last` names the last change of the changes page `page_token` handed out.
    Changes {
        page_token: String,
        #[serde(default)]
        last: Option<String>,
    },
    Done,
}

impl Checkpoint {
    pub fn start(since: Option<&str>) -> Self {
        match since {
            Some(token) => Self {
                step: Step::Changes {
                    page_token: token.to_owned(),
                    last: None,
                },
                next_start: None,
                drives: None,
                drives_next: None,
            },
            None => Self {
                step: Step::StartToken,
                next_start: None,
                drives: None,
                drives_next: None,
            },
        }
    }
}

/// What names a listed file.
fn file_key(file: &Value) -> Option<String> {
    file.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// What names a change: its kind and the id of its file or drive.
fn change_key(change: &Value) -> Option<String> {
    let kind = change
        .get("changeType")
        .and_then(Value::as_str)
        .unwrap_or("file");
    let id = change
        .get("fileId")
        .or_else(|| change.get("driveId"))
        .and_then(Value::as_str)?;
    Some(format!("{kind}:{id}"))
}

/// What follows a listed page.
#[derive(Debug)]
pub(super) enum After {
    Page(String),
    /// The last page; a changes listing ends with the next start token.
    End(Option<String>),
}

pub(super) struct DriveStream {
    pub client: reqwest::Client,
    pub base_url: BaseUrl,
    pub authorization: HeaderValue,
    pub incremental: bool,
    pub position: Checkpoint,
    /// The listed page of files or changes being handed out in slices.
    pub listing: Option<ListedPage<After>>,
    /// The time a `next_page` may take ([`StreamRequest::page_budget`]): once it has passed, a
    /// page starts no more content downloads and returns what it has.
    ///
    /// [`StreamRequest::page_budget`]: domain::stream::StreamRequest::page_budget
    pub page_budget: Duration,
}

impl DriveStream {
    async fn start_page_token(&self) -> Result<String, StreamError> {
        let path = "drive/v3/changes/startPageToken";
        let body = self
            .get_json(path, &[("supportsAllDrives", "true")])
            .await?;
        body.get("startPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| malformed(path))
    }

    async fn drives_page(
        &self,
        page_token: Option<&str>,
    ) -> Result<(Vec<Entity>, After), StreamError> {
        let path = "drive/v3/drives";
        let size = DRIVES_PAGE_SIZE.to_string();
        let fields = format!("nextPageToken,drives({DRIVE_FIELDS})");
        let mut query = vec![("pageSize", size.as_str()), ("fields", fields.as_str())];
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        let body = self.get_json(path, &query).await?;
        let drives = body
            .get("drives")
            .map_or(Some(&[][..]), |d| d.as_array().map(Vec::as_slice))
            .ok_or_else(|| malformed(path))?;
        let entities = drives
            .iter()
            .map(|d| drive_entity(d).ok_or_else(|| malformed(path)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entities, next_page(&body, None)))
    }

    /// A page of `corpora=user` (`drive: None`) or of one shared drive; `None` when that shared
    /// drive is gone (404): its files are gone with it.
    async fn files_listing(
        &self,
        drive: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Option<ListedPage<After>>, StreamError> {
        let path = "drive/v3/files";
        let size = FILES_PAGE_SIZE.to_string();
        let fields = format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})");
        let mut query = vec![
            ("pageSize", size.as_str()),
            ("fields", fields.as_str()),
            ("q", "trashed = false"),
        ];
        match drive {
            // Without these, a file of someone else's shared drive shared directly with the
            // user (who is not a member: its drive is not in `drives.list`) is never listed,
            // while `changes` reports it: every full run would delete it again. A file also
            // listed with its drive is counted once.
            None => query.extend([
                ("corpora", "user"),
                ("supportsAllDrives", "true"),
                ("includeItemsFromAllDrives", "true"),
            ]),
            Some(id) => query.extend([
                ("corpora", "drive"),
                ("driveId", id),
                ("supportsAllDrives", "true"),
                ("includeItemsFromAllDrives", "true"),
            ]),
        }
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        let answer = self.get(path, &query, PAGE_BODY_LIMIT).await?;
        if drive.is_some() && answer.status == StatusCode::NOT_FOUND {
            tracing::info!("a shared drive was gone before its files were listed");
            return Ok(None);
        }
        let body = json_of(path, answer)?;
        // A full run deletes what it does not list: a listing Drive says is incomplete must not
        // end one.
        if body.get("incompleteSearch").and_then(Value::as_bool) == Some(true) {
            return Err(StreamError::Upstream(format!(
                "{API} could not list every file (incompleteSearch); nothing was deleted"
            )));
        }
        let items = body
            .get("files")
            .map_or(Some(Vec::new()), |f| f.as_array().cloned())
            .ok_or_else(|| malformed(path))?;
        Ok(Some(ListedPage::new(
            items,
            next_page(&body, None),
            file_key,
        )))
    }

    async fn changes_listing(&self, page_token: &str) -> Result<ListedPage<After>, StreamError> {
        let path = "drive/v3/changes";
        let size = CHANGES_PAGE_SIZE.to_string();
        let fields = format!(
            "nextPageToken,newStartPageToken,\
             changes(changeType,removed,fileId,driveId,file({FILE_FIELDS}),drive({DRIVE_FIELDS}))"
        );
        let query = [
            ("pageToken", page_token),
            ("pageSize", size.as_str()),
            ("fields", fields.as_str()),
            ("includeRemoved", "true"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
        ];
        let body = self.get_json(path, &query).await?;
        let items = body
            .get("changes")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| malformed(path))?;
        let new_start = body
            .get("newStartPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let next = next_page(&body, new_start);
        if matches!(next, After::End(None)) {
            return Err(StreamError::Malformed(format!(
                "{API} ended the changes without a new start token"
            )));
        }
        Ok(ListedPage::new(items, next, change_key))
    }

    /// The text of a Google Doc (exported as plain text) or of a small text file; none for
    /// anything else, or when Drive will not give it (too large to export, gone meanwhile).
    async fn content(&self, file: &Value) -> Result<Content, StreamError> {
        let Some(id) = file.get("id").and_then(Value::as_str) else {
            return Ok(Content::NONE);
        };
        let id = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
        let answer = match content_kind(file) {
            Some(ContentKind::Export) => {
                let path = format!("drive/v3/files/{id}/export");
                let query = [("mimeType", "text/plain")];
                self.get(&path, &query, CONTENT_LIMIT + 1).await?
            }
            Some(ContentKind::Download) => {
                let path = format!("drive/v3/files/{id}");
                let query = [("alt", "media"), ("supportsAllDrives", "true")];
                self.get(&path, &query, CONTENT_LIMIT + 1).await?
            }
            None => return Ok(Content::NONE),
        };
        match refusal(&answer, Utc::now()) {
            None => Ok(text_content(&answer.body)),
            Some(
                r @ (Refusal::Unauthenticated | Refusal::RateLimited(_) | Refusal::Unavailable(_)),
            ) => Err(r.into_stream_error()),
            // This file's content only: the file itself is still synced.
            Some(other) => {
                tracing::info!(status = answer.status.as_u16(), refusal = ?other, "Google Drive gave no content for a file");
                Ok(Content::NONE)
            }
        }
    }

    /// Hands out the next slice of the held listing: entities and removals, fetching at most
    /// [`CONTENT_FETCHES_PER_PAGE`] contents and starting none once the page's budget is spent,
    /// as long as the slice hands out something.
    async fn slice(
        &self,
        listing: &mut ListedPage<After>,
        changes: bool,
        page: &PageBudget,
    ) -> Result<(Vec<Entity>, Vec<EntityKey>), StreamError> {
        let mut entities = Vec::new();
        let mut removed = Vec::new();
        let mut fetches = 0;
        let mut handed_out = 0;
        while let Some(item) = listing.peek() {
            let file = if changes {
                match change_target(item).ok_or_else(|| malformed("drive/v3/changes"))? {
                    Target::Gone(key) => {
                        removed.push(key);
                        listing.take();
                        handed_out += 1;
                        continue;
                    }
                    Target::Drive(drive) => {
                        entities.push(
                            drive_entity(drive).ok_or_else(|| malformed("drive/v3/changes"))?,
                        );
                        listing.take();
                        handed_out += 1;
                        continue;
                    }
                    Target::File(file) => file,
                }
            } else {
                item
            };
            let needs_content = content_kind(file).is_some();
            let out_of_time = handed_out > 0 && page.spent();
            if needs_content && (fetches == CONTENT_FETCHES_PER_PAGE || out_of_time) {
                break;
            }
            let content = if needs_content {
                fetches += 1;
                self.content(file).await?
            } else {
                Content::NONE
            };
            let path = if changes {
                "drive/v3/changes"
            } else {
                "drive/v3/files"
            };
            entities.push(file_entity(file, content).ok_or_else(|| malformed(path))?);
            listing.take();
            handed_out += 1;
        }
        Ok((entities, removed))
    }
}

impl DriveStream {
    /// The id of the run's `i`th shared drive.
    fn drive_id(&self, i: usize) -> Option<String> {
        self.position.drives.as_ref()?.get(i).cloned()
    }

    /// What follows the files of `corpora=user` (`None`) or of the `i`th shared drive of the
    /// current page: the next shared drive's.
    fn after_corpus(&self, drive: Option<usize>) -> Step {
        self.drive_from(drive.map_or(0, |i| i + 1))
    }

    /// The files of the current page's `i`th shared drive; past the page's last drive, the
    /// next page of drives, or the end.
    fn drive_from(&self, i: usize) -> Step {
        match (self.drive_id(i), &self.position.drives_next) {
            (Some(_), _) => Step::Files {
                drive: Some(i),
                page_token: None,
                last: None,
            },
            (None, Some(token)) => Step::DrivePage {
                page_token: Some(token.clone()),
            },
            (None, None) => Step::Done,
        }
    }
}

fn next_page(body: &Value, new_start: Option<&str>) -> After {
    match body
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        Some(token) => After::Page(token.to_owned()),
        None => After::End(new_start.map(str::to_owned)),
    }
}

#[async_trait]
impl EntityStream for DriveStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let page = PageBudget::start(self.page_budget);
        loop {
            let (entities, removed) = match self.position.step.clone() {
                Step::Done => return Ok(None),
                Step::StartToken => {
                    // Asked before listing: whatever changes while this run lists, the next
                    // one sees.
                    self.position.next_start = Some(self.start_page_token().await?);
                    self.position.step = Step::DrivePage { page_token: None };
                    continue;
                }
                // Restarted in `open_stream`; not a step this version takes.
                Step::Drives { .. } => {
                    return Err(StreamError::Malformed(
                        "the Google Drive checkpoint is from an older version".into(),
                    ))
                }
                Step::DrivePage { page_token } => {
                    let (entities, after) = self.drives_page(page_token.as_deref()).await?;
                    // Only this page's drives are kept: the checkpoint stays small.
                    self.position.drives =
                        Some(entities.iter().map(|d| d.entity_id.clone()).collect());
                    self.position.drives_next = match after {
                        After::Page(token) => Some(token),
                        After::End(_) => None,
                    };
                    self.position.step = match page_token {
                        // The user's own files come after the first page of drives.
                        None => Step::Files {
                            drive: None,
                            page_token: None,
                            last: None,
                        },
                        Some(_) => self.drive_from(0),
                    };
                    (entities, Vec::new())
                }
                Step::Files {
                    drive,
                    page_token,
                    last,
                } => {
                    let drive_id = match drive {
                        None => None,
                        Some(i) => match self.drive_id(i) {
                            Some(id) => Some(id),
                            // Past the page's drives: the next page, or the end.
                            None => {
                                self.position.step = self.drive_from(i);
                                continue;
                            }
                        },
                    };
                    let mut listing = match self.listing.take() {
                        Some(listing) => listing,
                        None => match self
                            .files_listing(drive_id.as_deref(), page_token.as_deref())
                            .await?
                        {
                            Some(listing) => listing.resume_after(last.as_deref()),
                            None => {
                                self.position.step = self.after_corpus(drive);
                                continue;
                            }
                        },
                    };
                    let (entities, removed) = self.slice(&mut listing, false, &page).await?;
                    self.position.step = if !listing.is_used_up() {
                        let last = listing.last_key().or(last);
                        self.listing = Some(listing);
                        Step::Files {
                            drive,
                            page_token,
                            last,
                        }
                    } else {
                        match listing.next() {
                            After::Page(token) => Step::Files {
                                drive,
                                page_token: Some(token.clone()),
                                last: None,
                            },
                            After::End(_) => self.after_corpus(drive),
                        }
                    };
                    (entities, removed)
                }
                Step::Changes { page_token, last } => {
                    let mut listing = match self.listing.take() {
                        Some(listing) => listing,
                        None => self
                            .changes_listing(&page_token)
                            .await?
                            .resume_after(last.as_deref()),
                    };
                    let (entities, removed) = self.slice(&mut listing, true, &page).await?;
                    self.position.step = if !listing.is_used_up() {
                        let last = listing.last_key().or(last);
                        self.listing = Some(listing);
                        Step::Changes { page_token, last }
                    } else {
                        match listing.next() {
                            After::Page(token) => Step::Changes {
                                page_token: token.clone(),
                                last: None,
                            },
                            After::End(new_start) => {
                                self.position.next_start = new_start.clone();
                                Step::Done
                            }
                        }
                    };
                    (entities, removed)
                }
            };
            return Ok(Some(EntityPage {
                entities,
                removed,
                checkpoint: serde_json::to_value(&self.position).expect("a position serializes"),
            }));
        }
    }

    fn incremental(&self) -> bool {
        self.incremental
    }

    fn cursor(&self) -> Option<Value> {
        self.position
            .next_start
            .as_ref()
            .map(|token| json!({ "start_page_token": token }))
    }
}

impl DriveStream {
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        limit: usize,
    ) -> Result<Answer, StreamError> {
        let request = self
            .client
            .get(self.base_url.endpoint(path))
            .query(query)
            .header(AUTHORIZATION, self.authorization.clone());
        fetch(NAME, request, limit).await
    }

    /// A JSON answer of the API, or what its refusal means.
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, StreamError> {
        let answer = self.get(path, query, PAGE_BODY_LIMIT).await?;
        json_of(path, answer)
    }
}
