//! Re-exports the runtime's error envelope under the name the handlers use.

pub(crate) use runtime::ApiError as Error;
