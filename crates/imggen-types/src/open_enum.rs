//! Open enums: string values a provider documents today, plus an escape hatch for the ones it
//! adds tomorrow.
//!
//! Every enum made by `open_enum!` behaves the same way:
//! - **Reading the wire is lenient.** Deserializing a value this version does not know gives
//!   `Other(value)`, so a response never fails to parse because a provider added a status,
//!   a model or an error code.
//! - **Parsing user input is strict.** [`std::str::FromStr`] accepts only known values and its
//!   error lists them, so a typo in a command line or a config file is caught before anything
//!   is sent (and charged).
//! - **Sending a new value is deliberate.** Writing `Other("…".into())` sends the value as is and
//!   skips the client-side check of known values; nothing else produces `Other` from user input.

use std::fmt;

/// A string that is not one of an open enum's known values, from [`std::str::FromStr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {value:?} is not a known value; known values: {known}")]
pub struct UnknownValue {
    /// What was being parsed, e.g. `aspect ratio`.
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// The known values, comma separated.
    pub known: String,
}

/// Joins values for an error message: `1:1, 4:3, 3:4`.
pub(crate) fn join<T: fmt::Display>(values: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&value.to_string());
    }
    out
}

/// Declares an open string enum. See the [module docs](self).
///
/// ```text
/// open_enum! {
///     /// Doc of the enum.
///     pub enum Status("task status") {
///         /// Doc of the variant.
///         Pending = "pending",
///     }
/// }
/// ```
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($kind:literal) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
            /// A value this version of imggen does not know: received from a provider that added
            /// it later, or set on purpose to send a value the client does not check.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in the provider's documented order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The value exactly as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $value,)+
                    Self::Other(value) => value,
                }
            }

            /// Reads a wire value leniently: an unknown value becomes `Other`.
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $($value => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }

            /// Whether this is one of the values this version knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::open_enum::UnknownValue;

            /// Strict: only known values parse; use `Other` to send anything else on purpose.
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match Self::from_wire(value) {
                    Self::Other(value) => Err($crate::open_enum::UnknownValue {
                        kind: $kind,
                        value,
                        known: $crate::open_enum::join(Self::KNOWN),
                    }),
                    known => Ok(known),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from_wire(&value))
            }
        }

        #[cfg(feature = "json-schema")]
        impl ::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_id() -> ::std::borrow::Cow<'static, str> {
                concat!(module_path!(), "::", stringify!($name)).into()
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                // Open: any string is valid on the wire; the known values are listed for readers
                // and tools, not enforced.
                ::schemars::json_schema!({
                    "description": concat!("Open set (", $kind, "): the known values, or any other string a provider may add."),
                    "anyOf": [
                        { "enum": [$($value),+] },
                        { "type": "string" }
                    ]
                })
            }
        }
    };
}

pub(crate) use open_enum;
