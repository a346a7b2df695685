//! The canonical columns a converter reads, named once so that a file's columns can be found
//! for each of them once per file ([`super::mapping::Plan`]) instead of by name for every field
//! of every record (perf: the reads by name were about 17% of the CPU of a 1 M ingest of tickets).

macro_rules! columns {
    ($($id:ident = $name:literal,)*) => {
        /// A canonical column: a column of a table's schema, or an input that is not stored as
        /// such (a ratings row's `scale`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Col {
            $($id,)*
        }

        impl Col {
            pub const ALL: &[Col] = &[$(Col::$id,)*];

            /// The canonical name, as in the schema and in mapping files.
            pub fn name(self) -> &'static str {
                match self {
                    $(Col::$id => $name,)*
                }
            }
        }
    };
}

columns! {
    ActorId = "actor_id",
    ActorRole = "actor_role",
    AdoptionId = "adoption_id",
    AssigneeId = "assignee_id",
    AssignmentGroup = "assignment_group",
    At = "at",
    Body = "body",
    Category = "category",
    Channel = "channel",
    ChannelRaw = "channel_raw",
    ClosedAt = "closed_at",
    Cohort = "cohort",
    CohortKey = "cohort_key",
    Comment = "comment",
    FirstResponseAt = "first_response_at",
    InteractionId = "interaction_id",
    IsPublic = "is_public",
    IssueKey = "issue_key",
    Kind = "kind",
    LaunchedAt = "launched_at",
    MadeSla = "made_sla",
    ModelId = "model_id",
    Name = "name",
    OpenedAt = "opened_at",
    PSatisfied = "p_satisfied",
    PredictedAt = "predicted_at",
    Priority = "priority",
    PriorityRaw = "priority_raw",
    RatedAt = "rated_at",
    RatingId = "rating_id",
    ReassignmentCount = "reassignment_count",
    ReopenCount = "reopen_count",
    RequesterId = "requester_id",
    ResolutionPath = "resolution_path",
    ResolvedAt = "resolved_at",
    Scale = "scale",
    Scope = "scope",
    ScoreRaw = "score_raw",
    SentAt = "sent_at",
    Seq = "seq",
    Service = "service",
    Source = "source",
    Status = "status",
    Subcategory = "subcategory",
    SurveyOffered = "survey_offered",
    TicketId = "ticket_id",
    Tier = "tier",
    UpdatedAt = "updated_at",
    ValidationBias = "validation_bias",
    ValidationTickets = "validation_tickets",
}

#[cfg(test)]
mod tests {
    use super::Col;
    use crate::model::Table;

    #[test]
    fn every_column_but_scale_is_in_a_schema() {
        for c in Col::ALL {
            let stored = Table::ALL
                .iter()
                .any(|t| t.schema().field_with_name(c.name()).is_ok());
            assert!(stored || c.name() == "scale", "{c:?}");
            assert_eq!(Col::ALL[*c as usize], *c);
        }
    }
}
