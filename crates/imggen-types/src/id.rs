//! Task id newtypes, so a runblob `task_uuid` cannot be passed where a runbase run id belongs.

/// Declares an opaque string id newtype.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[cfg_attr(feature = "json-schema", derive(::schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as the provider wrote it.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id as the provider wrote it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the id.
            pub fn into_inner(self) -> String {
                self.0
            }

            /// Checks that the id can be used as one URL path segment as is (not empty, no `/`,
            /// `?`, `#`, `%` or whitespace), so a status call addresses exactly this task.
            pub fn validate(&self) -> Result<(), $crate::ValidationError> {
                $crate::validation::check_opaque_id($field, &self.0)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }
    };
}

pub(crate) use id_newtype;
