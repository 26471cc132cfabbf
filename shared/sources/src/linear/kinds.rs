//! The kinds of items a run lists, in order, with each one's GraphQL query and entity type.

use serde::{Deserialize, Serialize};

/// The kinds of a run, in the order a run lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Teams,
    Users,
    Projects,
    Issues,
    Comments,
}

impl Kind {
    pub const ORDER: [Kind; 5] = [
        Kind::Teams,
        Kind::Users,
        Kind::Projects,
        Kind::Issues,
        Kind::Comments,
    ];

    pub(super) fn next(self) -> Option<Kind> {
        let at = Self::ORDER.iter().position(|k| *k == self)?;
        Self::ORDER.get(at + 1).copied()
    }

    /// The root field of the kind's query.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Teams => "teams",
            Kind::Users => "users",
            Kind::Projects => "projects",
            Kind::Issues => "issues",
            Kind::Comments => "comments",
        }
    }

    pub fn entity_type(self) -> &'static str {
        match self {
            Kind::Teams => "linear_team",
            Kind::Users => "linear_user",
            Kind::Projects => "linear_project",
            Kind::Issues => "linear_issue",
            Kind::Comments => "linear_comment",
        }
    }

    /// Whether an incremental run asks this kind only for what changed.
    pub(super) fn filtered_by_update(self) -> bool {
        matches!(self, Kind::Projects | Kind::Issues | Kind::Comments)
    }

    /// Only stable fields are asked for: nothing like `lastSeen`, `sortOrder` or `progress`
    /// that changes without the item changing, so an unchanged item hashes the same every run.
    pub(super) fn query(self) -> &'static str {
        match self {
            Kind::Teams => {
                "query Teams($first: Int!, $after: String) { \
                 teams(first: $first, after: $after) { \
                 nodes { id key name description private createdAt updatedAt archivedAt } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Users => {
                "query Users($first: Int!, $after: String) { \
                 users(first: $first, after: $after) { \
                 nodes { id name displayName email active admin url createdAt updatedAt archivedAt } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Projects => {
                "query Projects($first: Int!, $after: String, $filter: ProjectFilter, $includeArchived: Boolean) { \
                 projects(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id name description content url status { name type } lead { id name } \
                 startDate targetDate createdAt updatedAt archivedAt completedAt canceledAt \
                 teams { nodes { id key } } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Issues => {
                "query Issues($first: Int!, $after: String, $filter: IssueFilter, $includeArchived: Boolean) { \
                 issues(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id identifier title description url priority priorityLabel estimate dueDate \
                 createdAt updatedAt archivedAt completedAt canceledAt \
                 state { id name type } assignee { id name email } creator { id name } \
                 team { id key name } project { id name } labels(first: 50) { nodes { id name } } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Comments => {
                "query Comments($first: Int!, $after: String, $filter: CommentFilter, $includeArchived: Boolean) { \
                 comments(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id body url createdAt updatedAt editedAt archivedAt user { id name } \
                 issue { id identifier } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
        }
    }
}
