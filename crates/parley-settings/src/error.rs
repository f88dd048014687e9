//! Validation errors that name the field and the rule, for people and programs.

use serde::Serialize;

/// One rule one field broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where, e.g. `servers[5]` or `max_members`.
    pub field: String,
    /// Which rule, e.g. `max_items`, `range`, `scheme`.
    pub rule: &'static str,
    /// What to do about it, for people.
    pub message: String,
}

/// A section that cannot be saved, and every reason why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// A single error.
    pub fn one(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Invalid(vec![FieldError {
            field: field.into(),
            rule,
            message: message.into(),
        }])
    }
}

/// Collects errors while a section is checked.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub(crate) fn add(
        &mut self,
        field: impl Into<String>,
        rule: &'static str,
        message: impl Into<String>,
    ) {
        self.0.push(FieldError {
            field: field.into(),
            rule,
            message: message.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.0))
        }
    }
}
